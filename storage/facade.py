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
missing blob. Deleting blobs (``forget_user``, ``gc_blobs``) re-checks under a per-key lock that no
row points at the key; ``finish_job`` holds the same lock from the blob write to the commit, so within
one process the two never interleave. Across processes ``gc_blobs`` only
touches blobs older than a grace period (a repeated write refreshes a blob's age).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import avatars, jobs, migrate, users
from storage.blobs import BlobStore, FileBlobStore, blob_key_for
from storage.db import create_engine, make_sessionmaker, redact_url
from storage.errors import InvalidTransition
from storage.jobs import Message
from storage.models import Avatar, Job, JobStatus
from storage.refs import UserRef, check_json_text, check_text

__all__ = ["DEFAULT_GC_GRACE_SECONDS", "TEMP_FILE_MIN_AGE_SECONDS", "ForgetResult", "GcResult", "Storage"]

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
        at the newest revision raises :class:`~storage.errors.DatabaseBehind`.
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
        return cls(engine, blobs)

    async def close(self) -> None:
        """Close every database connection. The object must not be used afterwards."""
        await self.engine.dispose()

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
        return await asyncio.to_thread(self.blobs.get, avatar.blob_key)

    async def image_path(self, avatar: Avatar) -> Path | None:
        """A local file holding the avatar's image (to send without reading it), or None."""
        return await asyncio.to_thread(self.blobs.local_path, avatar.blob_key)

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
        """Delete blob ``key`` if no row points at it. Call with the key's lock held."""
        async with self.transaction() as s:
            if await avatars.blob_is_referenced(s, key):
                return 0
        return int(await asyncio.to_thread(self.blobs.delete, key))
