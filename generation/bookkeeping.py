"""The job store as the generation service sees it, and the service's bookkeeping with it.

:class:`JobStore` is the protocol (``storage.jobstore.SqlJobStore`` implements it on the jobs table);
:class:`Bookkeeper` calls it the way the service needs: transitions that may hit a passing fault are tried
a few times (:meth:`Bookkeeper.retrying`), failures and cancellations until they are recorded or the
service stops (:meth:`Bookkeeper.until_recorded`), and a refusal (the store has the job in another state,
or it is gone) is an answer, not a fault (:func:`recorded_status`).

This module never imports storage/ or bot/.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from generation.jobs import Delivery
from generation.worker import describe_error

__all__ = [
    "GONE",
    "STORE_BACKOFF_MAX_S",
    "STORE_BACKOFF_S",
    "STORE_TRIES",
    "Bookkeeper",
    "JobStore",
    "StoredJob",
    "clean_text",
    "delivery_of",
    "recorded_status",
]

log = logging.getLogger(__name__)

#: ``complete``, ``mark_running`` and ``requeue`` are tried this often before the job is failed.
STORE_TRIES = 3
#: First pause between store retries (doubling, at most :data:`STORE_BACKOFF_MAX_S`).
STORE_BACKOFF_S = 0.05
STORE_BACKOFF_MAX_S = 5.0

GONE = "gone"


class StoredJob(Protocol):
    """An unfinished job as the store hands it back on start-up (plain values)."""

    @property
    def job_id(self) -> int: ...
    @property
    def request(self) -> dict[str, Any]: ...
    @property
    def user_key(self) -> str: ...
    @property
    def status(self) -> str: ...  # "queued" or "running"
    @property
    def attempts(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...  # timezone-aware
    @property
    def deliver(self) -> dict[str, Any] | None: ...  # Delivery.to_json() as it was created


class JobStore(Protocol):
    """Where jobs live. ``storage.jobstore.SqlJobStore`` implements it on the jobs table.

    Every method is one transaction. ``create_many`` writes all the jobs of one request (items are
    ``(request_json, user_key, kind)``, one ``deliver`` for them all) or none, and returns their ids in
    order. ``complete`` stores the avatar and marks the job done together and is idempotent (one job makes
    at most one avatar, however often it is called).

    A transition the store refuses because the job is no longer in a state for it (e.g. ``complete`` of a
    job cancelled meanwhile) raises an exception with a ``current`` attribute naming the status the store
    has (``storage.errors.InvalidTransition`` does); a job that no longer exists raises a ``LookupError``
    (``storage.errors.NotFound``). The service takes both as what the store recorded and does not retry
    them; any other exception is taken as a fault that may pass, and retried.

    A store may also offer ``mark_running_many(job_ids)`` and ``complete_many([(job_id, result), ...])``:
    the same transitions for the jobs of a batch in one transaction, returning one entry per job (None or
    the stored value, or the refusal exception it would have raised for that job alone) and raising only
    for a fault (then nothing was written). The service uses them for batches of two or more jobs
    (:meth:`Bookkeeper.running_all`, :meth:`Bookkeeper.complete_all`).

    With workers shared by several processes (a broker), the service also calls
    ``count_unfinished(user_key) -> (the user's unfinished jobs, all unfinished jobs)`` at admission, so
    the caps hold across processes; a store without it is trusted to be this process's alone.
    """

    async def create_many(
        self, items: Sequence[tuple[dict[str, Any], str, str]], deliver: dict[str, Any] | None
    ) -> list[int]: ...
    async def mark_running(self, job_id: int) -> None: ...
    async def complete(self, job_id: int, result: dict[str, Any]) -> Any: ...
    async def fail(self, job_id: int, error: str) -> None: ...
    async def cancel(self, job_id: int) -> None: ...
    async def requeue(self, job_id: int) -> None: ...
    async def unfinished(self) -> Sequence[StoredJob]: ...


def recorded_status(exc: BaseException) -> str | None:
    """What a store error says the store has: the job's status when it refused a transition (the error's
    ``current``), :data:`GONE` when the job no longer exists (a ``LookupError``), None for a fault that may
    pass."""
    current = getattr(exc, "current", None)
    if isinstance(current, str):
        return current
    if isinstance(exc, LookupError):
        return GONE
    return None


def clean_text(text: str) -> str:
    """An error text any database takes: no NUL, no lone surrogates (from undecodable bytes)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def delivery_of(row: StoredJob) -> Delivery | None:
    """The stored delivery target of a recovered job; None (with a warning) if it cannot be read."""
    if row.deliver is None:
        return None
    try:
        return Delivery.from_json(row.deliver)
    except (AttributeError, TypeError, ValueError) as exc:
        log.warning("job %d: its delivery target could not be read: %s", row.job_id, describe_error(exc))
        return None


class Bookkeeper:
    """The service's calls to the job store, with the retry rules above. ``stopping`` is the service's
    stop event: :meth:`until_recorded` gives up (returns ``"stopped"``) once it is set."""

    def __init__(self, store: JobStore, stopping: asyncio.Event) -> None:
        self.store = store
        self._stopping = stopping

    async def retrying(self, method: str, job_id: int, *args: Any, done_when: str = "") -> Any:
        """Call the store up to :data:`STORE_TRIES` times; a refusal (see :class:`JobStore`) is raised at
        once, except one that says the job already is ``done_when`` (an earlier try got through)."""
        delay = STORE_BACKOFF_S
        for attempt in range(1, STORE_TRIES + 1):
            try:
                return await getattr(self.store, method)(job_id, *args)
            except Exception as exc:
                recorded = recorded_status(exc)
                if recorded is not None and recorded == done_when:
                    return None
                if recorded is not None or attempt == STORE_TRIES:
                    raise
                log.warning(
                    "job store %s(%d) failed (try %d of %d): %s",
                    method,
                    job_id,
                    attempt,
                    STORE_TRIES,
                    describe_error(exc),
                )
            await asyncio.sleep(delay)  # a short, bounded backoff
            delay = min(delay * 2, STORE_BACKOFF_MAX_S)
        raise AssertionError("unreachable")

    async def running_all(self, job_ids: Sequence[int]) -> list[Any]:
        """``mark_running`` for the jobs of a batch: one entry per job, None once it is running, or the
        exception :meth:`retrying` would have raised for it alone."""
        many = getattr(self.store, "mark_running_many", None)
        ids = list(job_ids)
        return await self._group(
            "mark_running",
            ids,
            (lambda: many(ids)) if many is not None else None,
            lambda job_id: self.retrying("mark_running", job_id, done_when="running"),
            done_when="running",
        )

    async def complete_all(self, items: Sequence[tuple[int, dict[str, Any]]]) -> list[Any]:
        """``complete`` for the results of a batch, with one commit: one entry per job, what the store
        returned for it, or the exception :meth:`retrying` would have raised for it alone."""
        many = getattr(self.store, "complete_many", None)
        results = dict(items)
        listed = list(items)
        return await self._group(
            "complete",
            [job_id for job_id, _ in listed],
            (lambda: many(listed)) if many is not None else None,
            lambda job_id: self.retrying("complete", job_id, results[job_id]),
        )

    async def _group(
        self,
        method: str,
        job_ids: list[int],
        call_many: Callable[[], Awaitable[Sequence[Any]]] | None,
        call_one: Callable[[int], Awaitable[Any]],
        *,
        done_when: str = "",
    ) -> list[Any]:
        """One store call for all ``job_ids`` (tried :data:`STORE_TRIES` times), or, for a single job, a
        store without the group call, or a group call that keeps failing, :meth:`retrying` job by job (one
        job the store cannot take must not sink the others)."""
        if call_many is not None and len(job_ids) > 1:
            delay = STORE_BACKOFF_S
            for attempt in range(1, STORE_TRIES + 1):
                try:
                    answers = list(await call_many())
                    if len(answers) != len(job_ids):
                        raise RuntimeError(f"{len(answers)} answers for {len(job_ids)} jobs")
                    return [
                        None
                        if isinstance(a, Exception) and done_when and recorded_status(a) == done_when
                        else a
                        for a in answers
                    ]
                except Exception as exc:
                    log.warning(
                        "job store %s_many(%s) failed (try %d of %d): %s",
                        method,
                        job_ids,
                        attempt,
                        STORE_TRIES,
                        describe_error(exc),
                    )
                    if attempt == STORE_TRIES:
                        break
                await asyncio.sleep(delay)
                delay = min(delay * 2, STORE_BACKOFF_MAX_S)
        out: list[Any] = []
        for job_id in job_ids:
            try:
                out.append(await call_one(job_id))
            except Exception as exc:
                out.append(exc)
        return out

    async def until_recorded(self, method: str, job_id: int, *args: Any) -> str | None:
        """Call the store until it records the change (None) or refuses it (the status it has, see
        :class:`JobStore`); "stopped" if the service stops first."""
        delay = STORE_BACKOFF_S
        while True:
            try:
                await getattr(self.store, method)(job_id, *args)
                return None
            except Exception as exc:
                recorded = recorded_status(exc)
                if recorded is not None:
                    return recorded
                if self._stopping.is_set():
                    log.error(
                        "job store %s(%d) failed: %s; the service is stopping, so the job stays as it is",
                        method,
                        job_id,
                        describe_error(exc),
                    )
                    return "stopped"
                log.warning(
                    "job store %s(%d) failed: %s; trying again in %.2f s",
                    method,
                    job_id,
                    describe_error(exc),
                    delay,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, STORE_BACKOFF_MAX_S)

    async def quietly(self, method: str, *args: Any) -> None:
        """One call whose failure is only logged (the job stays as the store has it)."""
        try:
            await getattr(self.store, method)(*args)
        except Exception as exc:
            log.error("job store %s%r failed: %s", method, args[:1], describe_error(exc))

    async def count_unfinished(self, user_key: str) -> tuple[int, int] | None:
        """(the user's unfinished jobs, all unfinished jobs) across every process, or None when the store
        cannot count them."""
        count = getattr(self.store, "count_unfinished", None)
        if count is None:
            return None
        user, total = await count(user_key)
        return int(user), int(total)
