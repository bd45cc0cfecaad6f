"""The :class:`Storage` facade: the database and the blob store behind one object.

Build it once in the entry point and close it on shutdown. Each unit of work opens ONE session and
calls the repository functions of :mod:`storage.users`, :mod:`storage.guilds`, :mod:`storage.avatars`
and :mod:`storage.jobs` in it::

    storage = await Storage.open("sqlite+aiosqlite:///data/chibify.db", "data")
    try:
        async with storage.transaction() as s:
            user = await users.get_or_create_user(s, discord_id=1234)
            page = await avatars.history(s, user)
    finally:
        await storage.close()

The facade itself only holds what needs more than a session: opening and closing, and the operations
that touch blobs as well as rows (``finish_job``, ``read_image``, ``image_path``, ``forget_user``,
``gc_blobs``). Blob I/O runs in worker threads (:func:`asyncio.to_thread`), never on the loop.

Returned ORM objects are detached snapshots (``expire_on_commit=False``): read them freely, change
things only through the repository functions.

Blob safety. ``finish_job`` writes the blob first and the row second, so a row never points at a
missing blob. The job store's hot path commits a new picture's bytes with its row instead and writes
the file just after (:mod:`storage.journal`): readers use :meth:`Storage.read_blob`. Deleting blobs
(``forget_user``, ``gc_blobs``) re-checks under a per-key lock that no row points at the key;
``finish_job`` holds the same lock from the blob write to the commit, so within one process the two
never interleave. Across processes ``gc_blobs`` only touches blobs older than a grace period (a repeated
write refreshes a blob's age).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import avatars, jobs, journal, migrate, users
from storage.blobs import BlobStore, FileBlobStore, blob_key_for
from storage.db import create_engine, make_sessionmaker, redact_url
from storage.errors import BlobNotFound, InvalidTransition, NotFound
from storage.jobs import Message
from storage.models import Avatar, Job, JobStatus, new_public_id, utcnow
from storage.refs import UserRef, check_json_text, check_text

__all__ = [
    "DEFAULT_GC_GRACE_SECONDS",
    "TEMP_FILE_MIN_AGE_SECONDS",
    "Finished",
    "ForgetResult",
    "GcResult",
    "JobResult",
    "Storage",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Blobs younger than this are never garbage-collected (protects writes in flight in other processes).
DEFAULT_GC_GRACE_SECONDS = 3600.0

#: Temporary files of interrupted writes are removed only once at least this old, whatever the grace
#: period: a younger one may be a write in progress.
TEMP_FILE_MIN_AGE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What :meth:`Storage.forget_user` removed, and the bot messages that showed the user's results
    (``(channel_id, message_id)`` pairs, read before the rows went) for the bot to delete."""

    users: int
    avatars: int
    jobs: int
    blobs: int
    messages: list[Message] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GcResult:
    """What :meth:`Storage.gc_blobs` removed."""

    blobs: int
    temp_files: int

    @property
    def total(self) -> int:
        return self.blobs + self.temp_files


@dataclass(frozen=True, slots=True)
class JobResult:
    """One running job's picture for :meth:`Storage.finish_jobs` (the arguments of
    :meth:`Storage.finish_job`)."""

    job_id: int
    image: bytes = field(repr=False)
    seed: int
    engine: str
    width: int
    height: int
    spec: Mapping[str, Any] | None = None
    spec_version: int = 1
    prompt: str = ""
    model: str | None = None
    parent: int | str | None = None


def checked_results(results: Sequence[JobResult]) -> tuple[list[Finished | Exception | None], list[int]]:
    """The answers so far (a ValueError or TypeError for each result no database keeps, None for the rest)
    and the indices of the results to store: the checks ``finish_jobs`` and the job store share."""
    out: list[Finished | Exception | None] = [None] * len(results)
    todo: list[int] = []
    seen: set[int] = set()
    for index, result in enumerate(results):
        try:
            if not isinstance(result.image, bytes) or not result.image:
                raise ValueError("image must be non-empty bytes")
            if result.job_id in seen:
                raise ValueError(f"job {result.job_id} appears twice")
            for name, text in (("prompt", result.prompt), ("engine", result.engine), ("model", result.model)):
                check_text(name, text)
            check_json_text("spec", result.spec)
        except (TypeError, ValueError) as exc:
            out[index] = exc
            continue
        seen.add(result.job_id)
        todo.append(index)
    return out, todo


def finish_answer(job: Any, result: JobResult, made: Mapping[int, Finished]) -> Finished | Exception | None:
    """What finishing ``result`` answers before any row is written, given its locked job row (None when
    there is none) and the avatars the done jobs already made: the earlier answer again, a refusal, or
    None (store it). Shared by ``Storage.finish_jobs`` and the job store's one-call path."""
    if job is None:
        return NotFound("job not found")
    earlier = made.get(job.id)
    if earlier is not None and job.avatar_id == earlier.avatar_id:
        return earlier  # an earlier try got through: the same answer again
    if job.status != JobStatus.RUNNING:
        return InvalidTransition(job.id, str(JobStatus(job.status)), str(JobStatus.DONE))
    return None


def new_avatar_fields(job: Any, result: JobResult, blob_key: str) -> avatars.NewAvatar:
    """The new avatar of a finished job (its parent apart: that lookup is the caller's)."""
    return avatars.NewAvatar(
        owner=job.user_id,
        blob_key=blob_key,
        kind=job.kind,
        seed=result.seed,
        engine=result.engine,
        width=result.width,
        height=result.height,
        spec=result.spec,
        spec_version=result.spec_version,
        prompt=result.prompt,
        model=result.model,
        guild_id=job.guild_id,
        job_id=job.id,
    )


@dataclass(frozen=True, slots=True)
class Finished:
    """The avatar a job made (:meth:`Storage.finish_jobs`)."""

    avatar_id: int
    public_id: str
    blob_key: str


def _row_values(avatar: Avatar) -> dict[str, Any]:
    """The column values of a built, not yet added avatar, for a Core INSERT (defaults filled in)."""
    values = {
        column.key: getattr(avatar, column.key)
        for column in Avatar.__table__.columns
        if getattr(avatar, column.key, None) is not None
    }
    values.setdefault("public_id", new_public_id())
    values.setdefault("created_at", utcnow())
    values.setdefault("favourite", False)
    return values


def _prepare_dir(path: Path) -> Path:
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


class _KeyLocks:
    """One :class:`asyncio.Lock` per blob key, dropped again when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class Storage:
    """Users, guilds, avatars, jobs and image blobs. See the module docstring."""

    def __init__(self, engine: AsyncEngine, blobs: BlobStore) -> None:
        self.engine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
        self.blobs = blobs
        self._locks = _KeyLocks()
        # Pictures committed before their files (storage/journal.py).
        self.journal = journal.BlobJournal(blobs)

    @classmethod
    async def open(
        cls,
        url: str | URL | None,
        data_dir: str | os.PathLike[str],
        *,
        upgrade: bool = False,
        check_schema: bool = True,
        echo: bool = False,
    ) -> Storage:
        """Open the database at ``url`` and the blob store in ``data_dir/blobs``.

        ``url=None`` means the embedded SQLite database ``data_dir/chibify.db``. With ``upgrade=True``
        pending migrations are applied first; otherwise (``check_schema=True``) a database that is not
        at the newest revision raises :class:`~storage.errors.DatabaseBehind`. Pictures whose files an
        earlier process did not get to write (it stopped right after their commit) are written out first.
        """
        data_path = await asyncio.to_thread(_prepare_dir, Path(data_dir))
        if url is None:
            url = URL.create("sqlite+aiosqlite", database=str(data_path / "chibify.db"))
        if upgrade:
            await migrate.upgrade(url)
        engine = create_engine(url, echo=echo)
        try:
            if check_schema:
                await migrate.check_up_to_date(engine)
            blobs = await asyncio.to_thread(FileBlobStore, data_path / "blobs")
        except BaseException:
            await engine.dispose()
            raise
        log.info("storage open: database %s, blobs in %s", redact_url(engine.url), blobs.root)
        storage = cls(engine, blobs)
        if check_schema or upgrade:
            try:
                await storage.write_pending()
            except BaseException:
                await engine.dispose()
                raise
        return storage

    async def close(self) -> None:
        """Wait for the picture files being written, drop their pending rows, and close every database
        connection. The object must not be used afterwards."""
        try:
            await self.journal.drain()
            written = self.journal.take_written()
            if written:
                await self._run(journal.drop_pending, written)
        except Exception as exc:  # the rows stay; the next open writes them out again (idempotent)
            log.warning("pending pictures are left for the next start: %s", exc)
        await self.engine.dispose()

    async def _run(self, body: Callable[..., _T], *args: Any) -> _T:
        async with self.engine.begin() as conn:
            return await conn.run_sync(body, *args)

    async def write_pending(self) -> int:
        """Write out the pictures whose bytes are only in ``pending_blobs`` (a process stopped between
        their commit and their file), then drop those rows; returns how many were written. Rows no
        avatar points at any more go without a file. A file that cannot be written is logged and its
        row kept (readers use it; the next open tries again). Idempotent."""
        await self._discard_orphans(await self._run(journal.unreferenced_keys))
        keys = await self._run(journal.pending_keys)
        written = 0
        for key in keys:
            async with self._locks.hold(key):
                data = await self._run(journal.read_pending, key)
                if data is None:
                    continue
                try:
                    await asyncio.to_thread(self.blobs.put, data)
                except OSError as exc:
                    log.warning("picture %s stays in the database: its file cannot be written (%s)", key, exc)
                    continue
                await self._run(journal.drop_pending, [key])
                written += 1
        if written:
            log.info("wrote out %d pictures that were committed before their files", written)
        return written

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside a transaction: committed on success, rolled back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    # -- results and images ----------------------------------------------------------------------

    async def finish_job(
        self,
        job_id: int,
        image: bytes,
        *,
        seed: int,
        engine: str,
        width: int,
        height: int,
        spec: Mapping[str, Any] | None = None,
        spec_version: int = 1,
        prompt: str = "",
        model: str | None = None,
        parent: Avatar | int | str | None = None,
    ) -> tuple[Avatar, Job]:
        """Store a running job's result and mark the job done, in one transaction.

        The avatar takes owner, kind and guild from the job. Idempotent: a job that is already done
        returns its avatar. Only a running job becomes done: one that failed or was cancelled meanwhile
        raises :class:`~storage.errors.InvalidTransition` and nothing is stored. Text with a NUL byte or
        that is not valid UTF-8 raises ValueError before anything is written.
        """

        for name, text in (("prompt", prompt), ("engine", engine), ("model", model)):
            check_text(name, text)
        check_json_text("spec", spec)

        async def finish(s: AsyncSession, key: str) -> tuple[Avatar, Job]:
            job = await jobs.get_job_by_id(s, job_id)
            if job.status is JobStatus.DONE and job.avatar_id is not None:
                made = await avatars.get_avatar_by_id(s, job.avatar_id)
                if made is not None:
                    return made, job
            # For a cancelled or failed job mark_done raises and the insert rolls back.
            avatar = await avatars.insert_avatar(
                s,
                owner=job.user_id,
                blob_key=key,
                kind=job.kind,
                seed=seed,
                engine=engine,
                width=width,
                height=height,
                spec=spec,
                spec_version=spec_version,
                prompt=prompt,
                model=model,
                parent=parent,
                guild_id=job.guild_id,
                job_id=job.id,
            )
            try:
                return avatar, await jobs.mark_done(s, job.id, avatar.id)
            except InvalidTransition as exc:
                # A concurrent attempt of the same job finished it first with this very avatar (the
                # insert above found it): that is the idempotent answer, not an error.
                if exc.current == JobStatus.DONE.value:
                    done = await jobs.get_job_by_id(s, job.id)
                    if done.avatar_id == avatar.id:
                        return avatar, done
                raise

        return await self._store_with_blob(image, finish)

    async def finish_jobs(self, results: Sequence[JobResult]) -> list[Finished | Exception]:
        """:meth:`finish_job` for several jobs (a batch's results) in ONE transaction and one commit.

        One entry per result, in order: the :class:`Finished` avatar, or the error :meth:`finish_job` would have
        raised for that job alone (:class:`~storage.errors.InvalidTransition` for a job cancelled or
        failed meanwhile, :class:`~storage.errors.NotFound`, ValueError for text no database keeps); the
        other jobs are stored all the same. A fault of the database raises, and nothing is stored.

        Same guarantees as :meth:`finish_job`: idempotent per job (a job that made its avatar returns
        it), and no row ever points at a missing blob. The blobs are written in a worker thread while the
        rows are inserted, and the transaction commits only once every blob is durable; the job rows are
        locked first (PostgreSQL ``FOR UPDATE``), so a concurrent finish of the same job waits and then
        finds it done.
        """
        out, todo = checked_results(results)
        if todo:
            images = [results[i].image for i in todo]
            keys = await asyncio.to_thread(lambda: [blob_key_for(image) for image in images])
            async with AsyncExitStack() as held:
                for key in sorted(set(keys)):  # one order everywhere: no lock cycles
                    await held.enter_async_context(self._locks.hold(key))
                write = asyncio.ensure_future(asyncio.to_thread(self._put_all, images))
                try:
                    async with self.transaction() as s:
                        answers = await self._finish_rows(
                            s, [(results[i], k) for i, k in zip(todo, keys, strict=True)]
                        )
                        await write  # every blob is durable before the rows that point at them commit
                except BaseException:
                    await asyncio.wait([write])  # a thread cannot be stopped: let it end first
                    for key in set(keys):
                        await self._discard_if_orphan(key)
                    raise
                used = {a.blob_key for a in answers if isinstance(a, Finished)}
                for key in set(keys) - used:  # refused jobs, or jobs that had their avatar already
                    await self._discard_if_orphan(key)
            for index, answer in zip(todo, answers, strict=True):
                out[index] = answer
        return [entry if entry is not None else RuntimeError("not stored") for entry in out]

    def _put_all(self, images: Sequence[bytes]) -> None:
        for image in images:
            self.blobs.put(image)

    @staticmethod
    async def _finish_rows(
        s: AsyncSession, items: Sequence[tuple[JobResult, str]]
    ) -> list[Finished | Exception]:
        """The rows of :meth:`finish_jobs`, in Core statements (this is the hot path of every picture):
        lock the jobs, insert the new avatars in one statement, mark the jobs done in one statement."""
        conn = await s.connection()
        jobs_t, avatars_t = cast(sa.Table, Job.__table__), cast(sa.Table, Avatar.__table__)
        ids = [result.job_id for result, _ in items]
        found = await conn.execute(
            sa.select(jobs_t.c.id, jobs_t.c.status, jobs_t.c.user_id, jobs_t.c.kind, jobs_t.c.guild_id)
            .add_columns(jobs_t.c.avatar_id)
            .where(jobs_t.c.id.in_(ids))
            .order_by(jobs_t.c.id)
            .with_for_update()
        )
        rows = {row.id: row for row in found.all()}
        # A job gets its avatar in the transaction that marks it done: only a done job can have one.
        made: dict[int, Finished] = {}
        done_ids = [row.id for row in rows.values() if row.status == JobStatus.DONE and row.avatar_id]
        if done_ids:
            earlier = await conn.execute(
                sa.select(
                    avatars_t.c.id, avatars_t.c.public_id, avatars_t.c.blob_key, avatars_t.c.job_id
                ).where(avatars_t.c.job_id.in_(done_ids))
            )
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
                avatar = avatars.build_avatar(**new_avatar_fields(job, result, key))
                if result.parent is not None:
                    avatar.parent_id = await avatars.parent_id_of(s, result.parent, job.user_id)
            except (TypeError, ValueError, NotFound) as exc:
                answers.append(exc)
                continue
            fresh.append(_row_values(avatar))
            answers.append(None)
        finishing: dict[int, Finished] = {}  # job id -> the avatar it is marked done with
        if fresh:
            # One INSERT ... RETURNING for them all.
            inserted = await conn.execute(
                sa.insert(avatars_t).returning(
                    avatars_t.c.id,
                    avatars_t.c.public_id,
                    avatars_t.c.blob_key,
                    avatars_t.c.job_id,
                    sort_by_parameter_order=True,
                ),
                fresh,
            )
            finishing = {r.job_id: Finished(r.id, r.public_id, r.blob_key) for r in inserted.all()}
            now = utcnow()
            marked = await conn.execute(
                sa.update(jobs_t)
                .where(jobs_t.c.id.in_(list(finishing)), jobs_t.c.status == JobStatus.RUNNING)
                .values(
                    status=JobStatus.DONE,
                    avatar_id=sa.case({jid: a.avatar_id for jid, a in finishing.items()}, value=jobs_t.c.id),
                    finished_at=now,
                    updated_at=now,
                    error=None,
                )
                .returning(jobs_t.c.id)
            )
            if len(marked.all()) != len(finishing):  # cannot happen with the rows locked; never half-store
                raise RuntimeError("jobs changed while they were being finished")
        return [
            answer if answer is not None else finishing[result.job_id]
            for (result, _key), answer in zip(items, answers, strict=True)
        ]

    async def _store_with_blob(
        self, image: bytes, write: Callable[[AsyncSession, str], Awaitable[tuple[Avatar, _T]]]
    ) -> tuple[Avatar, _T]:
        """Write the blob first (atomically), then let ``write`` insert the row pointing at it, in one
        transaction. The blob is discarded again if the transaction fails, or if an earlier attempt of the
        same job had already stored a different image."""
        if not isinstance(image, bytes) or not image:
            raise ValueError("image must be non-empty bytes")
        key = await asyncio.to_thread(blob_key_for, image)
        async with self._locks.hold(key):
            await asyncio.to_thread(self.blobs.put, image)
            try:
                async with self.transaction() as s:
                    result = await write(s, key)
            except Exception:
                await self._discard_if_orphan(key)
                raise
            if result[0].blob_key != key:
                await self._discard_if_orphan(key)
        return result

    async def read_image(self, avatar: Avatar) -> bytes:
        """The avatar's image bytes (read in a worker thread)."""
        return await self.read_blob(avatar.blob_key)

    async def read_blob(self, key: str) -> bytes:
        """A picture's bytes: its file, or, for a picture committed a moment ago whose file is being
        written (storage/journal.py), its pending row. :class:`BlobNotFound` if neither is there."""
        try:
            return await asyncio.to_thread(self.blobs.get, key)
        except BlobNotFound:
            data = await self._run(journal.read_pending, key)
            if data is not None:
                return data
        # Its row went meanwhile, which happens only once its file is durable.
        return await asyncio.to_thread(self.blobs.get, key)

    async def image_path(self, avatar: Avatar) -> Path | None:
        """A local file holding the avatar's image (to send without reading it), or None."""
        return await self.blob_path(avatar.blob_key)

    async def blob_path(self, key: str) -> Path | None:
        """A local file holding blob ``key``, or None; a picture of this process whose file is due is
        written first (storage/journal.py)."""
        await self.journal.settled(key)
        return await asyncio.to_thread(self.blobs.local_path, key)

    # -- deletion --------------------------------------------------------------------------------

    async def forget_user(self, user: UserRef) -> ForgetResult:
        """Delete the user with all their avatars and jobs, and every blob nobody else's row uses.

        The bot messages that showed the user's results are read in the same transaction, before the
        rows go, and returned in :attr:`ForgetResult.messages` for the bot to delete.
        """
        async with self.transaction() as s:
            messages = await jobs.messages_for_user(s, user)
            counts = await users.delete_user_rows(s, user)
        blobs = await self._discard_orphans(counts.blob_keys)
        log.info(
            "forgot a user: %d avatars, %d jobs, %d blobs removed; %d messages to delete",
            counts.avatars,
            counts.jobs,
            blobs,
            len(messages),
        )
        return ForgetResult(
            users=counts.users, avatars=counts.avatars, jobs=counts.jobs, blobs=blobs, messages=messages
        )

    async def gc_blobs(self, grace_seconds: float = DEFAULT_GC_GRACE_SECONDS) -> GcResult:
        """Remove blobs no avatar row points at, and leftovers of interrupted writes.

        Only blobs older than ``grace_seconds`` are considered, so a blob written a moment ago by a
        ``finish_job`` in another process, whose row is not committed yet, survives. Temporary
        files must also be older than :data:`TEMP_FILE_MIN_AGE_SECONDS`.
        """
        if grace_seconds < 0:
            raise ValueError("grace_seconds must be >= 0")
        candidates = await asyncio.to_thread(lambda: list(self.blobs.keys(older_than=grace_seconds)))
        async with self.transaction() as s:
            referenced = await avatars.referenced_blob_keys(s)
        orphans = [k for k in candidates if k not in referenced]
        removed = await self._discard_orphans(orphans)
        removed += await self._discard_orphans(await self._run(journal.unreferenced_keys))
        temp_age = max(grace_seconds, TEMP_FILE_MIN_AGE_SECONDS)
        temp = await asyncio.to_thread(self.blobs.sweep_temp, older_than=temp_age)
        if removed or temp:
            log.info("blob gc: removed %d unreferenced blobs and %d temporary files", removed, temp)
        return GcResult(blobs=removed, temp_files=temp)

    async def _discard_orphans(self, keys: Iterable[str]) -> int:
        removed = 0
        for key in keys:
            async with self._locks.hold(key):
                removed += await self._discard_if_orphan(key)
        return removed

    async def _discard_if_orphan(self, key: str) -> int:
        """Delete blob ``key``, file and pending row, if no row points at it. Call with the key's lock
        held (a file write of it in flight ends first)."""
        await self.journal.settled(key)
        async with self.transaction() as s:
            if await avatars.blob_is_referenced(s, key):
                return 0
            pending = (await s.execute(journal.DROP, {"keys": [key]})).scalars().all()
        self.journal.forget(key)
        removed = await asyncio.to_thread(self.blobs.delete, key)
        return int(removed or bool(pending))
