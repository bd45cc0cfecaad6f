"""GenerationService: the asyncio queue in the bot's event loop that keeps one worker process busy.

* Durable: every job is written to the job store before it is queued; every transition is recorded there;
  on :meth:`GenerationService.start` unfinished jobs are queued again (or failed with a deliverable reason).
* Fair: one queue per ``user_key``, served round-robin (:mod:`generation.fairqueue`; ETAs from
  :mod:`generation.eta`); a per-user and a global cap make
  :meth:`~GenerationService.submit_many` refuse a whole request at once with :class:`QueueFull` ("busy, try
  again in ~N s"): all its jobs are admitted, or none is written.
* Batched: compatible requests (same :meth:`GenerationRequest.batch_key`) from the head of the rotation go
  together, up to ``max_batch``; a lone request waits at most ``batch_window_s`` for company.
* Supervised: a dead worker is replaced and its batch retried once (each job alone, so one poison request
  cannot take its neighbours down twice); a batch past ``job_timeout_s`` kills the worker, fails the job
  that hung ("took too long") and re-runs its batch-mates at once, each alone.
* Honest: a handle is resolved only with what the job store recorded. A store call that fails is retried
  (``complete`` a few times, then the job is failed; ``fail`` and ``cancel`` until they succeed or the
  service stops, when the handle gets :class:`ServiceStopped` and the job runs again after the restart).

The worker is reached through the small :class:`WorkerClient` protocol (start / run_batch / kill / stop),
implemented for a local spawned process by :class:`generation.worker.ProcessWorker`.

This module never imports storage/ or bot/: the job store is anything that satisfies :class:`JobStore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from generation.engines import engine_spec
from generation.eta import Estimator
from generation.fairqueue import FairQueue
from generation.jobs import (
    BatchDone,
    BatchUpdate,
    Delivery,
    EngineSpec,
    GenerationRequest,
    GenerationResult,
    ItemsStarted,
    ProgressEvent,
    RunBatch,
)
from generation.metrics import ServiceMetrics
from generation.worker import ProcessWorker, WorkerCrashed, describe_error

__all__ = [
    "GenerationError",
    "GenerationService",
    "JobCancelled",
    "JobFailed",
    "JobHandle",
    "JobStore",
    "QueueFull",
    "ServiceStopped",
    "StoredJob",
    "WorkerClient",
]

log = logging.getLogger(__name__)

TOOK_TOO_LONG = "took too long"
SAVE_FAILED = "the result could not be saved"
STAYS_QUEUED = "the generator stopped; your request stays queued and runs when it is back"
#: ``complete``, ``mark_running`` and ``requeue`` are tried this often before the job is failed.
STORE_TRIES = 3
#: First pause between store retries (doubling, at most :data:`STORE_BACKOFF_MAX_S`).
STORE_BACKOFF_S = 0.05
STORE_BACKOFF_MAX_S = 5.0


# --- errors -------------------------------------------------------------------------------------------------


class GenerationError(Exception):
    """Base class of the errors a caller of the service is expected to handle."""


class QueueFull(GenerationError):
    """Too many waiting jobs (for this user, or in total). ``str(exc)`` can be shown to the user."""

    def __init__(self, message: str, *, retry_after_s: int, scope: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.scope = scope


class ServiceStopped(GenerationError):
    """The service is not running (not started yet, or stopping). Queued jobs stay in the database."""


class JobFailed(GenerationError):
    """The job failed; ``reason`` is short and can be shown to the user."""

    def __init__(self, job_id: int, reason: str) -> None:
        super().__init__(f"job {job_id} failed: {reason}")
        self.job_id = job_id
        self.reason = reason


class JobCancelled(GenerationError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id


# --- the seams: job store and worker -------------------------------------------------------------------------


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


class WorkerClient(Protocol):
    """The queue <-> worker boundary. Raise :class:`~generation.worker.WorkerCrashed` when the worker is
    gone; the service enforces deadlines itself and calls ``kill`` on a worker it gives up on."""

    @property
    def pid(self) -> int | None: ...
    async def start(self) -> Any: ...
    async def run_batch(self, batch: RunBatch, on_progress: Callable[[BatchUpdate], None]) -> BatchDone: ...
    async def kill(self) -> None: ...
    async def stop(self, timeout_s: float = 5.0) -> None: ...


WorkerFactory = Callable[[tuple[EngineSpec, ...]], WorkerClient]


GONE = "gone"


def _recorded_status(exc: BaseException) -> str | None:
    """What a store error says the store has: the job's status when it refused a transition (the error's
    ``current``), :data:`GONE` when the job no longer exists (a ``LookupError``), None for a fault that may
    pass."""
    current = getattr(exc, "current", None)
    if isinstance(current, str):
        return current
    if isinstance(exc, LookupError):
        return GONE
    return None


def _clean_text(text: str) -> str:
    """An error text any database takes: no NUL, no lone surrogates (from undecodable bytes)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _delivery_of(row: StoredJob) -> Delivery | None:
    """The stored delivery target of a recovered job; None (with a warning) if it cannot be read."""
    if row.deliver is None:
        return None
    try:
        return Delivery.from_json(row.deliver)
    except (AttributeError, TypeError, ValueError) as exc:
        log.warning("job %d: its delivery target could not be read: %s", row.job_id, describe_error(exc))
        return None


# --- jobs and handles ----------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Job:
    job_id: int
    request: GenerationRequest
    deliver: Delivery | None
    handle: JobHandle
    submitted_at: float  # monotonic
    enqueued_at: float  # monotonic; when it (re)entered the queue
    state: str = "pending"  # pending | starting (taken into a batch) | running | finishing | finished
    attempts: int = 0
    isolate: bool = False
    cancel_requested: bool = False
    started_at: float | None = None
    last_position: int | None = None

    @property
    def user_key(self) -> str:
        return self.request.user_key

    def batch_key(self) -> tuple[Any, ...]:
        return self.request.batch_key()


class JobHandle:
    """What :meth:`GenerationService.submit` returns: await the result, follow progress, cancel."""

    def __init__(
        self,
        service: GenerationService,
        job_id: int,
        request: GenerationRequest,
        deliver: Delivery | None,
    ) -> None:
        self._service = service
        self.job_id = job_id
        self.request = request
        self.deliver = deliver
        self._future: asyncio.Future[GenerationResult] = asyncio.get_running_loop().create_future()
        # Mark failures as retrieved: nobody has to await a handle they do not care about.
        self._future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._history: list[ProgressEvent] = []
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"<JobHandle job_id={self.job_id} user={self.request.user_key} done={self.done()}>"

    def done(self) -> bool:
        return self._future.done()

    async def result(self) -> GenerationResult:
        """The picture; raises :class:`JobFailed`, :class:`JobCancelled` or :class:`ServiceStopped`."""
        return await asyncio.shield(self._future)

    async def events(self) -> AsyncIterator[ProgressEvent]:
        """Every event of this job from the start (queued, position, started, step...), ending with the
        final one (done, failed or cancelled). Ends quietly if the service stops first."""
        index = 0
        while True:
            while index < len(self._history):
                event = self._history[index]
                index += 1
                yield event
                if event.final:
                    return
            if self._future.done():
                return
            self._changed.clear()
            await self._changed.wait()

    def position(self) -> int | None:
        """How many jobs run before this one (0 while it runs); None once finished."""
        return self._service._position_of(self.job_id)

    def eta_s(self) -> float | None:
        """Estimated seconds until the result; None once finished."""
        return self._service._eta_of(self.job_id)

    async def cancel(self) -> bool:
        """Cancel the job. A queued job is dropped; a running one is thrown away when it finishes.
        Returns False if it had already finished."""
        return await self._service._cancel(self.job_id)

    # internal
    def _emit(self, event: ProgressEvent) -> None:
        if self._history and self._history[-1].final:
            return
        self._history.append(event)
        self._changed.set()

    def _resolve(self, result: GenerationResult | None = None, error: BaseException | None = None) -> None:
        if self._future.done():
            return
        if error is not None:
            self._future.set_exception(error)
        else:
            assert result is not None
            self._future.set_result(result)
        self._changed.set()


# --- the service ----------------------------------------------------------------------------------------------


class GenerationService:
    def __init__(
        self,
        job_store: JobStore,
        *,
        engines: Sequence[str | EngineSpec] = ("chibi",),
        max_batch: int = 4,
        batch_window_s: float = 0.05,
        max_queued_per_user: int = 5,
        max_queued_total: int = 200,
        job_timeout_s: float = 60.0,
        max_attempts: int = 2,
        stale_after_s: float = 3600.0,
        worker_factory: WorkerFactory | None = None,
        metrics: ServiceMetrics | None = None,
        worker_start_timeout_s: float = 120.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if batch_window_s < 0:
            raise ValueError("batch_window_s must not be negative")
        if max_queued_per_user < 1 or max_queued_total < 1:
            raise ValueError("queue caps must be at least 1")
        if job_timeout_s <= 0:
            raise ValueError("job_timeout_s must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._store = job_store
        self._engine_specs = tuple(engine_spec(e) for e in engines)
        if not self._engine_specs:
            raise ValueError("configure at least one engine")
        self.engine_names = frozenset(s.name for s in self._engine_specs)
        self.max_batch = max_batch
        self.batch_window_s = batch_window_s
        self.max_queued_per_user = max_queued_per_user
        self.max_queued_total = max_queued_total
        self.job_timeout_s = job_timeout_s
        self.max_attempts = max_attempts
        self.stale_after_s = stale_after_s
        self.metrics = metrics if metrics is not None else ServiceMetrics()
        self._worker_factory: WorkerFactory = worker_factory or (
            lambda specs: ProcessWorker(specs, start_timeout_s=worker_start_timeout_s)
        )

        self._worker: WorkerClient | None = None
        self._queue: FairQueue[_Job] = FairQueue()  # jobs waiting for the worker
        self._jobs: dict[int, _Job] = {}  # every job not finished yet (pending or running)
        self._unfinished_by_user: dict[str, int] = {}
        self._reserved: dict[str, int] = {}  # submits between the cap check and the queue
        self._running: list[_Job] = []
        self._batch_started: float | None = None
        self._batch_ids = itertools.count(1)
        self._wake = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._accepting = False
        self._started = False
        self._stopped = False
        self._dispatcher: asyncio.Task[None] | None = None
        self._finishers: set[asyncio.Task[None]] = set()
        self._estimate = Estimator()  # seconds per batch and per item, for ETAs and "try again in ~N s"

    # --- life cycle -------------------------------------------------------------------------------------

    @property
    def worker_pid(self) -> int | None:
        return self._worker.pid if self._worker is not None else None

    @property
    def running(self) -> bool:
        return self._accepting

    async def start(self, *, recover: bool = True) -> list[JobHandle]:
        """Start the worker and recover unfinished jobs from the store.

        Returns a handle for every recovered job, including those failed because they were too old (their
        ``result()`` raises :class:`JobFailed` with a reason to deliver); ``handle.deliver`` says where.
        ``recover=False`` leaves unfinished jobs in the store alone (a console run beside a running bot
        must not take the bot's jobs).
        """
        if self._started:
            raise RuntimeError("the service was already started")
        self._started = True
        self._worker = await self._new_worker()
        try:
            handles = await self._recover() if recover else []
        except BaseException:
            await self._worker.kill()
            raise
        self._accepting = True
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="generation-dispatcher")
        self._wake.set()
        log.info(
            "generation service started: engines=%s max_batch=%d window=%.3fs recovered=%d",
            ",".join(sorted(self.engine_names)),
            self.max_batch,
            self.batch_window_s,
            len(handles),
        )
        return handles

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop intake, let the running batch finish within ``drain_timeout`` seconds, leave every other
        job queued in the store, and stop the worker. Waiting handles get :class:`ServiceStopped`."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        self._accepting = False
        self._stop_event.set()
        self._wake.set()
        dispatcher = self._dispatcher
        if dispatcher is not None:
            try:
                await asyncio.wait_for(asyncio.shield(dispatcher), drain_timeout)
            except TimeoutError:
                log.warning("running batch did not finish within %.1f s; it stays queued", drain_timeout)
                dispatcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dispatcher
            except Exception:
                log.exception("dispatcher failed")
        if self._finishers:
            await asyncio.gather(*self._finishers, return_exceptions=True)
        # The batch that did not finish in time goes back to "queued" so it runs after the restart.
        interrupted = [job for job in self._running if job.state == "running"]
        self._running = []
        if interrupted and self._worker is not None:
            await self._worker.kill()
        for job in interrupted:
            await self._store_call("requeue", job.job_id)
            job.state = "pending"
        left = len(self._jobs)
        stopped = ServiceStopped(STAYS_QUEUED)
        for job in list(self._jobs.values()):
            self._forget(job)
            job.handle._resolve(error=stopped)
        self._queue.clear()
        self._update_queue_gauge()
        if self._worker is not None:
            await self._worker.stop(5.0)
        log.info("generation service stopped (%d jobs left queued)", left)

    async def __aenter__(self) -> GenerationService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- submit -----------------------------------------------------------------------------------------

    async def submit(
        self, request: GenerationRequest, *, deliver: Delivery | None = None, user_limit: int | None = None
    ) -> JobHandle:
        """One job: :meth:`submit_many` with one request."""
        (handle,) = await self.submit_many([request], deliver=deliver, user_limit=user_limit)
        return handle

    async def submit_many(
        self,
        requests: Sequence[GenerationRequest],
        *,
        deliver: Delivery | None = None,
        user_limit: int | None = None,
    ) -> list[JobHandle]:
        """Admit one user's whole request (e.g. the four pictures of ``count:4``) or none of it.

        The caps are checked for all ``requests`` at once: the user's unfinished jobs plus these must stay
        within ``max_queued_per_user`` (and within ``user_limit``, e.g. a guild's per-member queue limit,
        when given), and all unfinished jobs plus these within ``max_queued_total``. Past a cap it raises
        :class:`QueueFull` at once and writes nothing. The admitted jobs are written to the store in one
        call (all or none), then queued; the handles come back in the order of ``requests``.

        Raises :class:`ServiceStopped` when not running, ValueError for an engine that is not configured
        or for requests of different users.
        """
        if not self._accepting:
            raise ServiceStopped("the generator is not running right now; try again in a minute")
        requests = list(requests)
        if not requests:
            return []
        user = requests[0].user_key
        if any(r.user_key != user for r in requests):
            raise ValueError("one request is one user's: every job of it must have the same user_key")
        for request in requests:
            if request.engine not in self.engine_names:
                raise ValueError(
                    f"engine {request.engine!r} is not available "
                    f"(configured: {', '.join(sorted(self.engine_names))})"
                )
        # Check and reserve with no await in between: concurrent requests cannot overcommit.
        self._admit(user, len(requests), user_limit)
        self._reserved[user] = self._reserved.get(user, 0) + len(requests)
        try:
            items = [(r.to_json(), user, r.kind) for r in requests]
            job_ids = await self._store.create_many(items, deliver=deliver.to_json() if deliver else None)
            if len(job_ids) != len(requests):
                raise RuntimeError(f"the job store made {len(job_ids)} jobs for {len(requests)} requests")
        finally:
            self._reserved[user] -= len(requests)
            if not self._reserved[user]:
                del self._reserved[user]
        handles = [JobHandle(self, job_id, r, deliver) for job_id, r in zip(job_ids, requests, strict=True)]
        if self._stop_event.is_set():
            # stop() began while the store wrote them: they stay queued there and run after the restart.
            for handle in handles:
                handle._resolve(error=ServiceStopped(STAYS_QUEUED))
            return handles
        now = time.monotonic()
        jobs = [_Job(h.job_id, h.request, deliver, h, submitted_at=now, enqueued_at=now) for h in handles]
        for job in jobs:
            self._track(job)
            self._enqueue(job)
            self.metrics.submitted.labels(kind=job.request.kind).inc()
        for job in jobs:
            position = self._position_of(job.job_id)
            job.last_position = position
            job.handle._emit(
                ProgressEvent(job.job_id, "queued", position=position, eta_s=self._eta_of(job.job_id))
            )
        log.debug("jobs %s queued for %s", job_ids, user)
        return handles

    def _admit(self, user: str, count: int, user_limit: int | None) -> None:
        """Raise :class:`QueueFull` unless ``count`` more jobs of ``user`` fit under every cap."""
        limit = self.max_queued_per_user if user_limit is None else min(self.max_queued_per_user, user_limit)
        mine = self._unfinished_by_user.get(user, 0) + self._reserved.get(user, 0)
        if mine + count > limit:
            self.metrics.rejected.labels(scope="user").inc()
            if count > limit:
                wait = max(1, math.ceil(self._estimate.item_s))
                raise QueueFull(
                    f"that is too many at once: you asked for {count} pictures, and at most {limit} "
                    "can wait for you",
                    retry_after_s=wait,
                    scope="user",
                )
            wait = self._retry_after_user(user, mine + count - limit)
            asked = f"; this asks for {count} more, and the limit is {limit}" if count > 1 else ""
            raise QueueFull(
                f"busy, try again in ~{wait} s (you already have {mine} pictures waiting{asked})",
                retry_after_s=wait,
                scope="user",
            )
        total = len(self._jobs) + sum(self._reserved.values())
        if total + count > self.max_queued_total:
            wait = self._retry_after_total(total + count)
            self.metrics.rejected.labels(scope="global").inc()
            raise QueueFull(
                f"busy, try again in ~{wait} s (the queue is full)", retry_after_s=wait, scope="global"
            )

    # --- queue bookkeeping (the fair queue itself is generation.fairqueue) ------------------------------------

    def _track(self, job: _Job) -> None:
        self._jobs[job.job_id] = job
        self._unfinished_by_user[job.user_key] = self._unfinished_by_user.get(job.user_key, 0) + 1

    def _forget(self, job: _Job) -> None:
        if self._jobs.pop(job.job_id, None) is None:
            return
        left = self._unfinished_by_user.get(job.user_key, 1) - 1
        if left > 0:
            self._unfinished_by_user[job.user_key] = left
        else:
            self._unfinished_by_user.pop(job.user_key, None)

    def _enqueue(self, job: _Job, *, front: bool = False) -> None:
        job.state = "pending"
        self._queue.add(job, front=front)
        self._update_queue_gauge()
        self._wake.set()

    def _unqueue(self, job: _Job) -> None:
        self._queue.remove(job)
        self._update_queue_gauge()

    def _update_queue_gauge(self) -> None:
        self.metrics.queue_length.set(len(self._queue))

    def _take_batch(self, head: _Job) -> list[_Job]:
        batch = self._queue.take_batch(head, self.max_batch)
        for job in batch:
            job.state = "starting"
        self._update_queue_gauge()
        return batch

    def _position_of(self, job_id: int) -> int | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if job.state != "pending":
            return 0
        return self._queue.positions().get(job_id)

    def _eta_of(self, job_id: int) -> float | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        position = self._queue.positions().get(job_id, 0) if job.state == "pending" else None
        return self._estimate.eta_s(position, self._batch_started, time.monotonic())

    def _retry_after_user(self, user: str, need: int = 1) -> int:
        """Seconds until ``need`` of the user's unfinished jobs are done."""
        etas = [self._eta_of(j.job_id) for j in self._jobs.values() if j.user_key == user]
        return self._estimate.retry_after_user([e for e in etas if e is not None], need)

    def _retry_after_total(self, wanted: int) -> int:
        """Seconds until ``wanted`` unfinished jobs fit under the global cap."""
        return self._estimate.retry_after_total(
            wanted - self.max_queued_total, self._batch_started, time.monotonic()
        )

    def _announce_positions(self) -> None:
        positions = self._queue.positions()
        for job_id, position in positions.items():
            job = self._jobs.get(job_id)
            if job is not None and job.last_position != position:
                job.last_position = position
                job.handle._emit(
                    ProgressEvent(job_id, "position", position=position, eta_s=self._eta_of(job_id))
                )

    # --- recovery ------------------------------------------------------------------------------------------

    async def _recover(self) -> list[JobHandle]:
        rows = sorted(await self._store.unfinished(), key=lambda r: (r.created_at, r.job_id))
        handles: list[JobHandle] = []
        now = datetime.now(UTC)
        for row in rows:
            reason: str | None = None
            parsed: GenerationRequest | None = None
            try:
                parsed = GenerationRequest.from_json(row.request)
            except (KeyError, TypeError, ValueError) as exc:
                reason = f"the stored request could not be read ({describe_error(exc)})"
            else:
                age = (now - row.created_at).total_seconds()
                if age > self.stale_after_s:
                    reason = "the bot was offline and this request got too old; please ask again"
                elif row.request.get("has_init_image") and parsed.kind != "edit":
                    # a selfie's photo is never stored, so it is gone; an edit's picture was its parent's
                    # (still stored): the edit goes on from the parent's spec instead
                    reason = "the bot restarted before your photo was processed; please send it again"
                elif parsed.engine not in self.engine_names:
                    reason = f"the {parsed.engine} engine is no longer available"
            request = parsed or GenerationRequest(user_key=row.user_key or "unknown", spec={})
            deliver = _delivery_of(row)
            handle = JobHandle(self, row.job_id, request, deliver)
            handles.append(handle)
            if reason is not None:
                reason = _clean_text(reason)
                await self._store.fail(row.job_id, reason)
                handle._emit(ProgressEvent(row.job_id, "failed", message=reason))
                handle._resolve(error=JobFailed(row.job_id, reason))
                self.metrics.finished.labels(outcome="failed").inc()
                log.info("job %d user=%s recovered as failed: %s", row.job_id, request.user_key, reason)
                continue
            if row.status == "running":
                await self._store.requeue(row.job_id)
            now_m = time.monotonic()
            job = _Job(row.job_id, request, deliver, handle, submitted_at=now_m, enqueued_at=-math.inf)
            self._track(job)
            self._enqueue(job)
            handle._emit(ProgressEvent(row.job_id, "queued", position=self._position_of(row.job_id)))
            log.info("job %d user=%s recovered and queued again", row.job_id, request.user_key)
        return handles

    # --- dispatching ---------------------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while not self._stop_event.is_set():
            head = self._queue.peek()
            if head is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.max_batch > 1 and not head.isolate:
                remaining = head.enqueued_at + self.batch_window_s - time.monotonic()
                if remaining > 0 and self._queue.compatible(head.batch_key()) < self.max_batch:
                    # Give compatible requests a moment to arrive; never longer than the window.
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), remaining)
                    continue
            batch = self._take_batch(head)
            try:
                await self._run_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("batch of jobs %s failed unexpectedly", [j.job_id for j in batch])
                for job in batch:
                    if job.state in ("starting", "running"):
                        await self._finish_failed(job, "something went wrong in the generator")

    async def _run_batch(self, batch: list[_Job]) -> None:
        batch_id = next(self._batch_ids)
        runnable: list[_Job] = []
        for job in batch:
            try:
                await self._store_retrying("mark_running", job.job_id, done_when="running")
            except Exception as exc:
                # e.g. the user deleted their data or cancelled meanwhile: that job cannot run, the rest can.
                log.warning("job %d could not start: %s", job.job_id, describe_error(exc))
                job.state = "running"
                recorded = _recorded_status(exc)
                if recorded is not None:
                    await self._settle_as_recorded(job, recorded, "it could not be started")
                else:
                    await self._finish_failed(job, "it could not be started")
                continue
            job.state = "running"
            job.attempts += 1
            if job.cancel_requested:
                await self._finish_cancelled(job)
                continue
            runnable.append(job)
        if not runnable:
            return
        now = time.monotonic()
        for job in runnable:
            if job.started_at is None:
                job.started_at = now
                self.metrics.wait_seconds.observe(now - job.submitted_at)
            eta = round(self._estimate.batch_s, 2)
            job.handle._emit(ProgressEvent(job.job_id, "started", position=0, eta_s=eta))
        self._running = runnable
        self._batch_started = now
        self._announce_positions()
        self.metrics.batch_size.observe(len(runnable))
        self.metrics.running.set(len(runnable))
        by_id = {job.job_id: job for job in runnable}
        in_engine: list[tuple[int, ...]] = []  # the jobs of the engine call the worker is in now

        def on_update(message: BatchUpdate) -> None:
            if isinstance(message, ItemsStarted):
                in_engine[:] = [message.job_ids]
                return
            job = by_id.get(message.job_id)
            if job is not None:
                job.handle._emit(
                    ProgressEvent(job.job_id, "step", step=message.step, total_steps=message.total_steps)
                )

        worker = self._worker
        assert worker is not None
        items = tuple((job.job_id, job.request) for job in runnable)
        try:
            done = await asyncio.wait_for(
                worker.run_batch(RunBatch(batch_id, items), on_update), self.job_timeout_s
            )
        except TimeoutError:
            self.metrics.failures.labels(reason="timeout").inc()
            log.warning(
                "batch %d (%d jobs) passed %.1f s; replacing the worker",
                batch_id,
                len(runnable),
                self.job_timeout_s,
            )
            await worker.kill()
            await self._after_timeout(runnable, in_engine[0] if in_engine else None)
            await self._replace_worker()
            return
        except WorkerCrashed as exc:
            self.metrics.failures.labels(reason="worker_crash").inc()
            log.warning("worker crashed during batch %d (%d jobs): %s", batch_id, len(runnable), exc)
            await worker.kill()
            await self._after_crash(runnable)
            await self._replace_worker()
            return
        finally:
            self.metrics.running.set(0)
            self._batch_started = None
        self._running = []
        self._estimate.learn(done.run_s, len(runnable))
        self.metrics.run_seconds.observe(done.run_s)
        task = asyncio.create_task(self._finish_batch(by_id, done), name=f"finish-batch-{batch_id}")
        self._finishers.add(task)
        task.add_done_callback(self._finishers.discard)

    async def _after_timeout(self, batch: list[_Job], hung_call: tuple[int, ...] | None) -> None:
        """The batch passed its deadline. The jobs of the engine call that hung are the suspects (all of
        the batch if the worker did not say): one suspect alone hung, and fails; several (an engine that
        draws a batch in one call) are each run again alone, once. Everyone else of the batch was drawn or
        not reached yet: they run again at once, each alone, ahead of everyone else."""
        self._running = []
        suspects = [job for job in batch if hung_call is None or job.job_id in hung_call] or batch
        too_long = f"{TOOK_TOO_LONG} (over {self.job_timeout_s:g} s)"
        retry: list[_Job] = []
        for job in batch:
            if job.cancel_requested:
                await self._finish_cancelled(job)
            elif len(suspects) == 1 and job is suspects[0]:
                log.warning("job %d hung; it fails", job.job_id)
                await self._finish_failed(job, too_long)
            else:
                retry.append(job)
        await self._retry_alone(retry)

    async def _after_crash(self, batch: list[_Job]) -> None:
        self._running = []
        retry: list[_Job] = []
        for job in batch:
            if job.cancel_requested:
                await self._finish_cancelled(job)
            elif job.attempts >= self.max_attempts:
                await self._finish_failed(job, "the generator crashed while drawing it")
            else:
                retry.append(job)
        await self._retry_alone(retry)

    async def _retry_alone(self, retry: list[_Job]) -> None:
        """Queue each job again alone, ahead of everyone else: one bad request cannot sink its neighbours
        twice."""
        for job in reversed(retry):
            try:
                await self._store_retrying("requeue", job.job_id, done_when="queued")
            except Exception as exc:
                log.warning("job %d could not be requeued: %s", job.job_id, describe_error(exc))
                recorded = _recorded_status(exc)
                if recorded is not None:
                    await self._settle_as_recorded(job, recorded, "it could not be retried")
                else:
                    await self._finish_failed(job, "it could not be retried")
                continue
            job.isolate = True
            job.enqueued_at = -math.inf
            self._enqueue(job, front=True)
            job.handle._emit(ProgressEvent(job.job_id, "queued", position=0, message="retrying"))
        if retry:
            log.info("retrying jobs %s one by one", [j.job_id for j in retry])

    async def _new_worker(self) -> WorkerClient:
        worker = self._worker_factory(self._engine_specs)
        await worker.start()
        return worker

    async def _replace_worker(self) -> None:
        self.metrics.worker_restarts.inc()
        delay = 0.5
        while not self._stop_event.is_set():
            try:
                self._worker = await self._new_worker()
                return
            except Exception as exc:
                log.error(
                    "could not start a new worker: %s; trying again in %.1f s", describe_error(exc), delay
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), delay)
            delay = min(delay * 2, 30.0)

    # --- finishing: the handle learns only what the store recorded -------------------------------------------

    async def _finish_batch(self, by_id: dict[int, _Job], done: BatchDone) -> None:
        for outcome in done.outcomes:
            job = by_id.get(outcome.job_id)
            if job is None or job.state in ("finishing", "finished"):
                continue
            try:
                if job.cancel_requested:
                    await self._finish_cancelled(job)
                elif outcome.result is not None:
                    await self._finish_done(job, outcome.result, done.run_s)
                else:
                    await self._finish_failed(job, outcome.error or "the engine gave no picture", done.run_s)
            except Exception:
                log.exception("could not finish job %d", job.job_id)
                if job.state != "finished":
                    await self._finish_failed(job, "something went wrong in the generator", done.run_s)

    async def _finish_done(self, job: _Job, result: GenerationResult, run_s: float) -> None:
        job.state = "finishing"
        try:
            stored = await self._store_retrying("complete", job.job_id, result.to_store(job.request))
        except Exception as exc:
            recorded = _recorded_status(exc)
            if recorded is not None:
                # e.g. cancelled or failed meanwhile: whatever the store has, it is not this picture
                log.warning("job %d: the store kept it %s instead of done", job.job_id, recorded)
                await self._settle_as_recorded(job, recorded, SAVE_FAILED, run_s)
                return
            log.error(
                "job %d: its result could not be saved after %d tries: %s",
                job.job_id,
                STORE_TRIES,
                describe_error(exc),
            )
            await self._finish_failed(job, SAVE_FAILED, run_s)
            return
        final = dataclasses.replace(result, job_id=job.job_id, stored=stored)
        self._settle(job, "done", result=final, run_s=run_s)

    async def _finish_failed(self, job: _Job, reason: str, run_s: float | None = None) -> None:
        job.state = "finishing"
        reason = _clean_text(reason)
        recorded = await self._store_until_recorded("fail", job.job_id, reason)
        await self._settle_as_recorded(job, recorded or "failed", reason, run_s)

    async def _finish_cancelled(self, job: _Job) -> None:
        job.state = "finishing"
        recorded = await self._store_until_recorded("cancel", job.job_id)
        await self._settle_as_recorded(job, recorded or "cancelled", "")

    async def _settle_as_recorded(
        self, job: _Job, status: str, reason: str, run_s: float | None = None
    ) -> None:
        """Resolve the handle with the status the store has for the job ("stopped": the store could not be
        reached before the service stopped, so the job runs again after the restart)."""
        if status == "failed":
            self._settle(job, "failed", reason=reason or "it failed", run_s=run_s)
        elif status in ("cancelled", GONE):
            self._settle(job, "cancelled")
        elif status == "stopped":
            self._settle(job, "stopped")
        else:
            # The store says done (or still queued/running): never tell the user it failed. The result is
            # delivered from the store after the next start.
            log.error("job %d: the store has it %s; leaving it to the next start", job.job_id, status)
            self._settle(job, "stopped")

    def _settle(
        self,
        job: _Job,
        outcome: str,
        *,
        result: GenerationResult | None = None,
        reason: str = "",
        run_s: float | None = None,
    ) -> None:
        job.state = "finished"
        self._forget(job)
        if outcome == "stopped":
            self._log_outcome(job, "stopped", run_s, "the job store could not be reached")
            job.handle._resolve(error=ServiceStopped(STAYS_QUEUED))
            return
        self.metrics.finished.labels(outcome=outcome).inc()
        self._log_outcome(job, outcome, run_s, reason)
        if outcome == "done":
            assert result is not None
            job.handle._emit(ProgressEvent(job.job_id, "done"))
            job.handle._resolve(result)
        elif outcome == "failed":
            job.handle._emit(ProgressEvent(job.job_id, "failed", message=reason))
            job.handle._resolve(error=JobFailed(job.job_id, reason))
        else:
            job.handle._emit(ProgressEvent(job.job_id, "cancelled"))
            job.handle._resolve(error=JobCancelled(job.job_id))

    async def _store_retrying(self, method: str, job_id: int, *args: Any, done_when: str = "") -> Any:
        """Call the store up to :data:`STORE_TRIES` times; a refusal (see :class:`JobStore`) is raised at
        once, except one that says the job already is ``done_when`` (an earlier try got through)."""
        delay = STORE_BACKOFF_S
        for attempt in range(1, STORE_TRIES + 1):
            try:
                return await getattr(self._store, method)(job_id, *args)
            except Exception as exc:
                recorded = _recorded_status(exc)
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

    async def _store_until_recorded(self, method: str, job_id: int, *args: Any) -> str | None:
        """Call the store until it records the change (None) or refuses it (the status it has, see
        :class:`JobStore`); "stopped" if the service stops first."""
        delay = STORE_BACKOFF_S
        while True:
            try:
                await getattr(self._store, method)(job_id, *args)
                return None
            except Exception as exc:
                recorded = _recorded_status(exc)
                if recorded is not None:
                    return recorded
                if self._stop_event.is_set():
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
                await asyncio.wait_for(self._stop_event.wait(), delay)
            delay = min(delay * 2, STORE_BACKOFF_MAX_S)

    async def _store_call(self, method: str, *args: Any) -> None:
        try:
            await getattr(self._store, method)(*args)
        except Exception as exc:
            log.error("job store %s%r failed: %s", method, args[:1], describe_error(exc))

    def _log_outcome(self, job: _Job, outcome: str, run_s: float | None, reason: str = "") -> None:
        wait = (job.started_at - job.submitted_at) if job.started_at is not None else None
        log.info(
            "job %d user=%s kind=%s engine=%s outcome=%s wait=%s run=%s attempts=%d%s",
            job.job_id,
            job.user_key,
            job.request.kind,
            job.request.engine,
            outcome,
            f"{wait:.3f}s" if wait is not None else "-",
            f"{run_s:.3f}s" if run_s is not None else "-",
            job.attempts,
            f" reason={reason!r}" if reason else "",
        )

    async def _cancel(self, job_id: int) -> bool:
        job = self._jobs.get(job_id)
        if job is None or job.state in ("finishing", "finished"):
            return False
        if job.state == "pending":
            self._unqueue(job)
            await self._finish_cancelled(job)
            self._announce_positions()
            return True
        job.cancel_requested = True
        return True
