"""The jobs table as the generation service's job store.

:class:`SqlJobStore` satisfies ``generation.service.JobStore`` structurally: it takes and returns plain
values (dicts, bytes, ints) and does not import generation/ (imports flow one way). Build it from the
:class:`~storage.Storage` facade::

    storage = await Storage.open(url, data_dir)
    service = GenerationService(SqlJobStore(storage), engines=("chibi",))

``user_key`` strings name the owner: ``"discord:<snowflake>"`` and ``"console:<name>"`` find or create
the user, ``"user:<row id>"`` refers to an existing user.

``deliver`` is the plain dict of ``generation.jobs.Delivery.to_json()`` (or None). Its keys ``group``
(-> ``jobs.request_group``), ``user_id`` (-> ``jobs.deliver_user_id``), ``guild_id``, ``channel_id``,
``interaction_token`` and ``token_expires_at`` (aware datetime or ISO string) go into the job's columns;
the other keys (``public``, ``language``, ``application_id``, ...) are kept in the stored request under
``"deliver"``. :meth:`SqlJobStore.unfinished` hands the same dict back (``Delivery.from_json`` reads it),
with ``token_expires_at`` as an ISO string and keys whose column is NULL left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage import jobs, users
from storage.errors import InvalidTransition
from storage.facade import Finished, JobResult, Storage
from storage.models import Job, JobStatus

__all__ = ["SqlJobStore", "StoredJob", "delivery_of", "parse_user_key"]

log = logging.getLogger(__name__)

#: ``deliver`` key -> jobs column.
_DELIVER_COLUMNS: Mapping[str, str] = {
    "group": "request_group",
    "user_id": "deliver_user_id",
    "guild_id": "guild_id",
    "channel_id": "channel_id",
    "interaction_token": "interaction_token",
    "token_expires_at": "token_expires_at",
}


@dataclass(frozen=True, slots=True)
class StoredJob:
    """An unfinished job, in plain values (what ``GenerationService.start`` recovers)."""

    job_id: int
    request: dict[str, Any]
    user_key: str
    status: str
    attempts: int
    created_at: datetime
    deliver: dict[str, Any] | None


def parse_user_key(user_key: str) -> tuple[str, int | str]:
    """``"discord:123"`` -> ("discord", 123); ``"console:alice"`` -> ("console", "alice");
    ``"user:7"`` -> ("user", 7). Raises ValueError for anything else."""
    scheme, sep, rest = user_key.partition(":")
    if not sep or not rest:
        raise ValueError(
            f"user_key {user_key!r} must look like 'discord:<id>', 'console:<name>' or 'user:<id>'"
        )
    if scheme in ("discord", "user"):
        if not rest.isdigit():
            raise ValueError(f"user_key {user_key!r}: {scheme} ids are numbers")
        return scheme, int(rest)
    if scheme == "console":
        return scheme, rest
    raise ValueError(f"user_key {user_key!r}: unknown kind {scheme!r}")


def _split_deliver(deliver: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``deliver`` -> (keyword arguments for :func:`storage.jobs.create_job`, the rest for the request)."""
    columns: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in (deliver or {}).items():
        if key in _DELIVER_COLUMNS:
            columns[_DELIVER_COLUMNS[key]] = value
        else:
            extra[key] = value
    expires = columns.get("token_expires_at")
    if isinstance(expires, str):
        columns["token_expires_at"] = datetime.fromisoformat(expires)
    if columns.get("request_group") == "":
        columns["request_group"] = None
    json.dumps(extra)  # fail at submit time, not at recovery
    return columns, extra


def delivery_of(job: Job) -> dict[str, Any] | None:
    """The ``deliver`` dict the job was created with (keys whose column is NULL left out), or None."""
    deliver: dict[str, Any] = dict(job.request.get("deliver") or {})
    for key, column in _DELIVER_COLUMNS.items():
        value = getattr(job, column)
        if isinstance(value, datetime):
            value = value.isoformat()
        if value is not None:
            deliver[key] = value
    return deliver or None


def _stored(finished: Finished) -> dict[str, Any]:
    return {"avatar_id": finished.avatar_id, "public_id": finished.public_id, "blob_key": finished.blob_key}


def _job_result(job_id: int, result: Mapping[str, Any]) -> JobResult:
    metadata = result.get("metadata") or {}
    parent_ref = metadata.get("parent")
    parent: int | str | None = None
    if parent_ref:
        parent = int(parent_ref) if str(parent_ref).isdigit() else str(parent_ref)
    return JobResult(
        job_id=job_id,
        image=result["png"],
        seed=int(result.get("seed", 0)),
        engine=str(result["engine"]),
        width=int(result["width"]),
        height=int(result["height"]),
        spec=result.get("spec") or {},
        spec_version=int(result.get("spec_version", 1)),
        prompt=str(result.get("prompt", "")),
        model=result.get("model"),
        parent=parent,
    )


class SqlJobStore:
    """``JobStore`` on the jobs and avatars tables (SQLite or PostgreSQL) through :class:`Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def _user_id(self, session: AsyncSession, user_key: str) -> int:
        scheme, value = parse_user_key(user_key)
        if scheme == "discord":
            assert isinstance(value, int)
            found = await users.find_user_id(session, discord_id=value)
            return (
                found if found is not None else (await users.get_or_create_user(session, discord_id=value)).id
            )
        if scheme == "console":
            assert isinstance(value, str)
            found = await users.find_user_id(session, console_name=value)
            return (
                found
                if found is not None
                else (await users.get_or_create_user(session, console_name=value)).id
            )
        assert isinstance(value, int)
        user = await users.get_user_by_id(session, value)
        if user is None:
            raise ValueError(f"user_key {user_key!r}: no such user")
        return user.id

    async def create(
        self, request: dict[str, Any], user_key: str, *, kind: str, deliver: dict[str, Any] | None
    ) -> int:
        """Record a queued job (and its user, on first sight) in one transaction; return its id."""
        (job_id,) = await self.create_many([(request, user_key, kind)], deliver)
        return job_id

    async def create_many(
        self, items: Sequence[tuple[dict[str, Any], str, str]], deliver: dict[str, Any] | None
    ) -> list[int]:
        """Record the jobs of one request (``(request, user_key, kind)`` each, e.g. a ``count:4`` grid),
        all with the same ``deliver``, in ONE transaction: all of them or, on any error, none. Returns
        their ids in order."""
        columns, extra = _split_deliver(deliver)
        async with self.storage.transaction() as session:
            user_ids: dict[str, int] = {}
            rows: list[dict[str, Any]] = []
            for request, user_key, kind in items:
                stored = dict(request)
                stored["user_key"] = user_key
                if extra:
                    stored["deliver"] = extra
                if user_key not in user_ids:
                    user_ids[user_key] = await self._user_id(session, user_key)
                rows.append(jobs.job_values(user=user_ids[user_key], kind=kind, request=stored, **columns))
            return await jobs.create_jobs(session, rows)

    async def mark_running(self, job_id: int) -> None:
        async with self.storage.transaction() as session:
            await jobs.mark_running(session, job_id)

    async def mark_running_many(self, job_ids: Sequence[int]) -> list[Exception | None]:
        """:meth:`mark_running` for the jobs of a batch in one transaction: one entry per job, None if it
        is running now, else the refusal :meth:`mark_running` would have raised for it alone."""
        async with self.storage.transaction() as session:
            return await jobs.mark_running_many(session, job_ids)

    async def complete(self, job_id: int, result: dict[str, Any]) -> dict[str, Any]:
        """Store the picture as the job's avatar and mark the job done, in one transaction.

        Idempotent: a job that already made its avatar returns that avatar and stores nothing new.
        ``result["metadata"]["parent"]`` (an avatar row id or public id) links an edit to its parent.
        """
        (answer,) = await self.storage.finish_jobs([_job_result(job_id, result)])
        if isinstance(answer, Exception):
            raise answer
        return _stored(answer)

    async def complete_many(
        self, items: Sequence[tuple[int, dict[str, Any]]]
    ) -> list[dict[str, Any] | Exception]:
        """:meth:`complete` for several jobs (a batch's results) with one commit: one entry per job, the
        stored ids or the refusal :meth:`complete` would have raised for it alone. A database fault
        raises, and nothing is stored."""
        answers = await self.storage.finish_jobs([_job_result(job_id, result) for job_id, result in items])
        return [answer if isinstance(answer, Exception) else _stored(answer) for answer in answers]

    async def fail(self, job_id: int, error: str) -> None:
        """Mark the job failed. A job already failed or cancelled is left as it is; one already *done*
        raises :class:`InvalidTransition`, so the caller never reports as failed what SQL holds as done."""
        try:
            async with self.storage.transaction() as session:
                await jobs.mark_failed(session, job_id, error)
        except InvalidTransition as exc:
            if exc.current == JobStatus.DONE.value:
                raise
            log.info("job %d not marked failed: already %s", job_id, exc.current)

    async def cancel(self, job_id: int) -> None:
        """Mark the job cancelled. A job already failed or cancelled is left as it is; one already *done*
        raises :class:`InvalidTransition` (it is not cancelled after the fact)."""
        try:
            async with self.storage.transaction() as session:
                await jobs.mark_cancelled(session, job_id)
        except InvalidTransition as exc:
            if exc.current == JobStatus.DONE.value:
                raise
            log.info("job %d not marked cancelled: already %s", job_id, exc.current)

    async def requeue(self, job_id: int) -> None:
        """running -> queued (the attempt is counted); a job already queued stays queued."""
        try:
            async with self.storage.transaction() as session:
                await jobs.requeue(session, job_id)
        except InvalidTransition as exc:
            if exc.current != JobStatus.QUEUED.value:
                raise

    async def count_unfinished(self, user_key: str) -> tuple[int, int]:
        """(the user's unfinished jobs, all unfinished jobs), across every process sharing the database
        (the service's caps with a broker). A user never seen has none."""
        scheme, value = parse_user_key(user_key)
        async with self.storage.transaction() as session:
            if scheme == "discord":
                assert isinstance(value, int)
                found = await users.get_user(session, discord_id=value)
            elif scheme == "console":
                assert isinstance(value, str)
                found = await users.get_user(session, console_name=value)
            else:
                assert isinstance(value, int)
                found = await users.get_user_by_id(session, value)
            return await jobs.count_unfinished(session, found.id if found is not None else None)

    async def unfinished(self) -> list[StoredJob]:
        """Every queued or running job, oldest first."""
        async with self.storage.transaction() as session:
            rows = await jobs.unfinished_jobs(session)
        return [
            StoredJob(
                job_id=job.id,
                request=dict(job.request),
                user_key=str(job.request.get("user_key") or f"user:{job.user_id}"),
                status=str(JobStatus(job.status).value),
                attempts=job.attempts,
                created_at=job.created_at,
                deliver=delivery_of(job),
            )
            for job in rows
        ]
