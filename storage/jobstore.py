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

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import NullPool
from sqlalchemy.util import greenlet_spawn

from storage import avatars, jobs, journal, users
from storage.blobs import blob_key_for
from storage.errors import InvalidTransition, NotFound
from storage.facade import Finished, JobResult, Storage, checked_results, finish_answer, new_avatar_fields
from storage.models import Avatar, Job, JobStatus, User, utcnow

__all__ = ["SqlJobStore", "StoredJob", "delivery_of", "parse_user_key"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Pictures up to this many bytes in all are hashed on the event loop (less than a thread hop costs).
INLINE_HASH_BYTES = 256 * 1024

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


# --- one call per transaction ----------------------------------------------------------------------------


class _Lent:
    """The driver's sqlite3 connection, lent to a synchronous engine for one transaction: closing it is a
    no-op (aiosqlite owns it)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def close(self) -> None:
        pass


def _begin_immediate(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")  # as storage.db does: take the write lock up front


class Transactions:
    """Runs a transaction *body* (a plain function of a synchronous Core :class:`sqlalchemy.Connection`,
    committed if it returns, rolled back if it raises) on one of the storage engine's connections.

    SQLite through aiosqlite: the whole body runs in ONE call on the connection's own thread (the thread
    aiosqlite keeps for it), where a synchronous engine borrows the same sqlite3 connection. The async
    path would hop between the event loop and that thread four times per statement (cursor, execute,
    fetch, close); a job's transitions are three such transactions, so this is most of their cost on a
    busy machine. The connection is checked out of the storage engine's pool first, so it is never
    shared with another unit of work (SQLite's ``BEGIN IMMEDIATE``, ``synchronous=FULL`` and the
    ``busy_timeout`` of :mod:`storage.db` all apply: same connection, same pragmas, same commit).

    Any other database (PostgreSQL through asyncpg), or an aiosqlite without ``_execute``: the same body
    through :meth:`AsyncConnection.run_sync <sqlalchemy.ext.asyncio.AsyncConnection.run_sync>`.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sync: sa.Engine | None = None
        self._lent = threading.local()
        if engine.dialect.name == "sqlite" and engine.dialect.driver == "aiosqlite":
            sync = sa.create_engine("sqlite://", creator=self._lend, poolclass=NullPool, hide_parameters=True)
            event.listen(sync, "begin", _begin_immediate)
            self._sync = sync

    @property
    def direct(self) -> bool:
        """Whether bodies run in one call on the driver's thread (SQLite)."""
        return self._sync is not None

    def _lend(self) -> _Lent:
        conn = getattr(self._lent, "conn", None)
        if conn is None:  # pragma: no cover - only ever called inside _in_driver_thread
            raise RuntimeError("no connection lent")
        return _Lent(conn)

    async def run(self, body: Callable[[sa.Connection], _T]) -> _T:
        if self._sync is not None:
            fairy = await self._engine.raw_connection()  # the pool's connection, ours alone until returned
            clean = False
            try:
                driver = fairy.driver_connection
                execute = getattr(driver, "_execute", None)
                if execute is not None and getattr(driver, "_connection", None) is not None:
                    result = cast(_T, await execute(self._in_driver_thread, driver, body))
                    clean = True
                    return result
            finally:
                # The body committed (or rolled back) on the driver's thread: nothing is left for the pool
                # to roll back, so it need not hop there once more to do it. After any fault, it does.
                close_special = getattr(fairy, "_close_special", None)
                if clean and close_special is not None:
                    await greenlet_spawn(close_special, transaction_reset=True)
                else:
                    await greenlet_spawn(fairy.close)
        async with self._engine.connect() as conn:
            return await conn.run_sync(_in_transaction, body)

    def _in_driver_thread(self, driver: Any, body: Callable[[sa.Connection], _T]) -> _T:
        assert self._sync is not None
        self._lent.conn = driver._conn
        try:
            with self._sync.connect() as conn:
                return _in_transaction(conn, body)
        finally:
            self._lent.conn = None


def _in_transaction(conn: sa.Connection, body: Callable[[sa.Connection], _T]) -> _T:
    with conn.begin():
        return body(conn)


# --- transaction bodies (synchronous Core; see Transactions) -------------------------------------------------


_USERS = cast(sa.Table, User.__table__)
_JOBS = cast(sa.Table, Job.__table__)
_AVATARS = cast(sa.Table, Avatar.__table__)
# Built once: building a statement costs about as much as running it on SQLite.
_USER_BY: Mapping[str, sa.Select[Any]] = {
    "discord": sa.select(_USERS.c.id).where(_USERS.c.discord_id == sa.bindparam("value")),
    "console": sa.select(_USERS.c.id).where(_USERS.c.console_name == sa.bindparam("value")),
    "user": sa.select(_USERS.c.id).where(_USERS.c.id == sa.bindparam("value")),
}
_LOCK_JOBS = (
    sa.select(_JOBS.c.id, _JOBS.c.status, _JOBS.c.user_id, _JOBS.c.kind, _JOBS.c.guild_id, _JOBS.c.avatar_id)
    .where(_JOBS.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(_JOBS.c.id)
    .with_for_update()
)
_AVATARS_OF_JOBS = sa.select(
    _AVATARS.c.id, _AVATARS.c.public_id, _AVATARS.c.blob_key, _AVATARS.c.job_id
).where(_AVATARS.c.job_id.in_(sa.bindparam("ids", expanding=True)))
_INSERT_AVATARS = sa.insert(_AVATARS).returning(
    _AVATARS.c.id, _AVATARS.c.public_id, _AVATARS.c.blob_key, _AVATARS.c.job_id, sort_by_parameter_order=True
)
_MARK_DONE = (
    sa.update(_JOBS)
    .where(_JOBS.c.id == sa.bindparam("job"), _JOBS.c.status == JobStatus.RUNNING)
    .values(
        status=JobStatus.DONE,
        avatar_id=sa.bindparam("avatar"),
        finished_at=sa.bindparam("now_f"),
        updated_at=sa.bindparam("now_u"),
        error=None,
    )
)


class _NewUser(Exception):
    """The body met a user it has never seen: the caller creates them the slow way."""


def _find_user_id(conn: sa.Connection, user_key: str) -> int:
    scheme, value = parse_user_key(user_key)
    found = conn.execute(_USER_BY[scheme], {"value": value}).first()
    if found is not None:
        return int(found[0])
    if scheme == "user":
        raise ValueError(f"user_key {user_key!r}: no such user")
    raise _NewUser(user_key)


def _create_rows(
    conn: sa.Connection,
    items: Sequence[tuple[dict[str, Any], str, str]],
    columns: dict[str, Any],
    extra: dict[str, Any],
) -> list[int]:
    user_ids: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    for request, user_key, kind in items:
        if user_key not in user_ids:
            user_ids[user_key] = _find_user_id(conn, user_key)
        rows.append(
            jobs.job_values(
                user=user_ids[user_key],
                kind=kind,
                request=_stored_request(request, user_key, extra),
                **columns,
            )
        )
    return jobs.insert_jobs(conn, rows)


def _count_rows(conn: sa.Connection, user_key: str) -> tuple[int, int]:
    scheme, value = parse_user_key(user_key)
    found = conn.execute(_USER_BY[scheme], {"value": value}).first()
    return jobs.count_unfinished_rows(conn, int(found[0]) if found is not None else None)


def _stored_request(request: dict[str, Any], user_key: str, extra: dict[str, Any]) -> dict[str, Any]:
    stored = dict(request)
    stored["user_key"] = user_key
    if extra:
        stored["deliver"] = extra
    return stored


def _parent_id(conn: sa.Connection, parent: int | str, owner_id: int) -> int:
    """:func:`storage.avatars.parent_id_of` on a Core connection."""
    table = _AVATARS
    if isinstance(parent, str):
        from storage.refs import valid_public_id

        match = table.c.public_id == parent if valid_public_id(parent) else sa.false()
    else:
        match = table.c.id == parent
    found = conn.execute(
        sa.select(table.c.id).where(match, table.c.owner_id == owner_id, table.c.deleted_at.is_(None))
    ).first()
    if found is None:
        raise NotFound("parent avatar not found")
    return int(found[0])


def _finish_rows(
    conn: sa.Connection,
    items: Sequence[tuple[JobResult, str]],
    missing: Mapping[str, bytes],
    written: Sequence[str],
) -> tuple[list[Finished | Exception], dict[str, bytes], set[str]]:
    """The rows of a batch's pictures (what ``Storage.finish_jobs`` writes): lock the jobs, insert the new
    avatars in one statement, mark each job done (prepared once), and record as pending the bytes of
    each new avatar whose file is ``missing`` (key -> bytes), so that the commit makes them durable
    with the rows (storage/journal.py). The pending rows of ``written`` (files durable now) go.
    Returns the answers, the pending pictures recorded and the keys of ``written`` whose rows were there."""
    dropped = journal.drop_pending(conn, written)
    ids = [result.job_id for result, _ in items]
    rows = {row.id: row for row in conn.execute(_LOCK_JOBS, {"ids": ids}).all()}
    # A job gets its avatar in the transaction that marks it done: only a done job can have one.
    made: dict[int, Finished] = {}
    done_ids = [row.id for row in rows.values() if row.status == JobStatus.DONE and row.avatar_id]
    if done_ids:
        earlier = conn.execute(_AVATARS_OF_JOBS, {"ids": done_ids})
        made = {r.job_id: Finished(r.id, r.public_id, r.blob_key) for r in earlier.all()}
    answers: list[Finished | Exception | None] = []
    fresh: list[dict[str, Any]] = []
    for result, key in items:
        job = rows.get(result.job_id)
        answer = finish_answer(job, result, made)
        if answer is not None:
            answers.append(answer)
            continue
        assert job is not None  # finish_answer refused a missing job
        try:
            fields = new_avatar_fields(job, result, key)
            if result.parent is not None:
                fields["parent_id"] = _parent_id(conn, result.parent, job.user_id)
            fresh.append(avatars.avatar_values(**fields))
        except (TypeError, ValueError, NotFound) as exc:
            answers.append(exc)
            continue
        answers.append(None)
    finishing: dict[int, Finished] = {}  # job id -> the avatar it is marked done with
    if fresh:
        inserted = conn.execute(_INSERT_AVATARS, fresh)  # one INSERT ... RETURNING for them all
        finishing = {r.job_id: Finished(r.id, r.public_id, r.blob_key) for r in inserted.all()}
        now = utcnow()
        for job_id, avatar in finishing.items():
            marked = conn.execute(
                _MARK_DONE, {"job": job_id, "avatar": avatar.avatar_id, "now_f": now, "now_u": now}
            )
            if marked.rowcount != 1:  # cannot happen with the rows locked; never half-store
                raise RuntimeError("jobs changed while they were being finished")
    pending = {a.blob_key: missing[a.blob_key] for a in finishing.values() if a.blob_key in missing}
    journal.insert_pending(conn, pending)
    return (
        [
            answer if answer is not None else finishing[result.job_id]
            for (result, _key), answer in zip(items, answers, strict=True)
        ],
        pending,
        dropped,
    )


def _keys(images: Sequence[bytes]) -> list[str]:
    return [blob_key_for(image) for image in images]


class SqlJobStore:
    """``JobStore`` on the jobs and avatars tables (SQLite or PostgreSQL) through :class:`Storage`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._tx = Transactions(storage.engine)

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
        their ids in order. The user lookup and the INSERT are one call on the database's thread
        (:class:`Transactions`); a user seen for the first time is created in a transaction of its own
        kind (the ORM's get-or-create, safe against racing processes)."""
        columns, extra = _split_deliver(deliver)
        try:
            return await self._tx.run(partial(_create_rows, items=items, columns=columns, extra=extra))
        except _NewUser:
            pass
        async with self.storage.transaction() as session:
            user_ids: dict[str, int] = {}
            rows: list[dict[str, Any]] = []
            for request, user_key, kind in items:
                if user_key not in user_ids:
                    user_ids[user_key] = await self._user_id(session, user_key)
                rows.append(
                    jobs.job_values(
                        user=user_ids[user_key],
                        kind=kind,
                        request=_stored_request(request, user_key, extra),
                        **columns,
                    )
                )
            return await jobs.create_jobs(session, rows)

    async def mark_running(self, job_id: int) -> None:
        """queued -> running; raises the refusal (:class:`InvalidTransition` or :class:`NotFound`)."""
        (refused,) = await self.mark_running_many([job_id])
        if refused is not None:
            raise refused

    async def mark_running_many(self, job_ids: Sequence[int]) -> list[Exception | None]:
        """:meth:`mark_running` for the jobs of a batch in one transaction: one entry per job, None if it
        is running now, else the refusal :meth:`mark_running` would have raised for it alone."""
        ids = list(job_ids)
        return await self._tx.run(lambda conn: jobs.mark_running_rows(conn, ids))

    async def complete(self, job_id: int, result: dict[str, Any]) -> dict[str, Any]:
        """Store the picture as the job's avatar and mark the job done, in one transaction.

        Idempotent: a job that already made its avatar returns that avatar and stores nothing new.
        ``result["metadata"]["parent"]`` (an avatar row id or public id) links an edit to its parent.
        """
        (answer,) = await self.finish([_job_result(job_id, result)])
        if isinstance(answer, Exception):
            raise answer
        return _stored(answer)

    async def complete_many(
        self, items: Sequence[tuple[int, dict[str, Any]]]
    ) -> list[dict[str, Any] | Exception]:
        """:meth:`complete` for several jobs (a batch's results) with one commit: one entry per job, the
        stored ids or the refusal :meth:`complete` would have raised for it alone. A database fault
        raises, and nothing is stored."""
        answers = await self.finish([_job_result(job_id, result) for job_id, result in items])
        return [answer if isinstance(answer, Exception) else _stored(answer) for answer in answers]

    async def finish(self, results: Sequence[JobResult]) -> list[Finished | Exception]:
        """:meth:`storage.Storage.finish_jobs` with the same answers and guarantees, faster: the rows are
        written in one call on the database's thread (:class:`Transactions`), and a new picture's bytes
        are made durable by the same commit, as a pending blob (storage/journal.py): its file is written
        a moment after the commit, on the journal's thread, off the way to the result.

        Blob safety as in :class:`storage.Storage`: each blob key is held under the storage's per-key
        lock from the check for its file to the commit, and its file write is registered before the lock
        goes (a concurrent ``forget_user`` or ``gc_blobs`` of this process re-checks the rows under the
        same lock, after that write, before it deletes). Nothing is written for a refused job, nor when
        the transaction fails."""
        out, todo = checked_results(results)
        if todo:
            storage = self.storage
            images = [results[i].image for i in todo]
            # Hashing takes ~0.14 ms per 100 KB: a lone picture is hashed here (a thread hop would cost
            # as much), anything bigger off the loop; so are the files' checks below (a stat each).
            inline = sum(len(image) for image in images) <= INLINE_HASH_BYTES
            keys = _keys(images) if inline else await asyncio.to_thread(_keys, images)
            # storage's per-key locks (the same ones its deletions take); storage/ is one package
            locks, pending = storage._locks, storage.journal
            async with AsyncExitStack() as held:
                for key in sorted(set(keys)):  # one order everywhere: no lock cycles
                    await held.enter_async_context(locks.hold(key))
                # Under the locks: a deletion of this process cannot take a file between its check and
                # the commit of the row that relies on it.
                unique = set(keys)
                present = (
                    journal.touch_all(storage.blobs, unique)
                    if inline
                    else await asyncio.to_thread(journal.touch_all, storage.blobs, unique)
                )
                missing = pending.missing(dict(zip(keys, images, strict=True)), present)
                written = pending.take_written()
                items = [(results[i], k) for i, k in zip(todo, keys, strict=True)]
                try:
                    answers, recorded, dropped = await self._tx.run(
                        partial(_finish_rows, items=items, missing=missing, written=written)
                    )
                except BaseException:
                    pending.give_back(written)
                    raise
                pending.write(recorded)  # before the locks go
            # Rows another process dropped meanwhile (it deleted their avatars, or wrote them out itself):
            # keep each file only if a row still wants it.
            await storage._discard_orphans(set(written) - dropped)
            for index, answer in zip(todo, answers, strict=True):
                out[index] = answer
        return [entry if entry is not None else RuntimeError("not stored") for entry in out]

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
        (the service's caps with a broker). A user never seen has none. One call (:class:`Transactions`)."""
        parse_user_key(user_key)  # a bad key raises ValueError here, before any SQL
        return await self._tx.run(partial(_count_rows, user_key=user_key))

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
