"""The :class:`Storage` facade: database + blob store behind one object with async methods.

Build it once in the entry point and close it on shutdown::

    storage = await Storage.open("sqlite+aiosqlite:///data/chibify.db", "data")
    try:
        user = await storage.get_or_create_user(discord_id=1234)
        avatar = await storage.create_avatar(user, png_bytes, kind="prompt", seed=7, engine="chibi",
                                             width=512, height=512, spec=spec_dict, prompt="cat ears")
    finally:
        await storage.close()

Every method is one unit of work with its own session and transaction. For several steps in one
transaction use ``async with storage.transaction() as session:`` and the functions of
:mod:`storage.repo`. Blob I/O runs in worker threads (:func:`asyncio.to_thread`), never on the loop.

Returned ORM objects are detached snapshots (``expire_on_commit=False``): read them freely, change
things only through these methods.

Blob safety. ``create_avatar`` writes the blob first and the row second, so a row never points at a
missing blob. Deleting blobs (``forget_user``, ``gc_blobs``, ``purge_deleted``) re-checks under a
per-key lock that no row points at the key; ``create_avatar`` holds the same lock from the blob write
to the commit, so within one process the two never interleave. Across processes ``gc_blobs`` only
touches blobs older than a grace period (a repeated write refreshes a blob's age).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import migrate, repo
from storage.blobs import BlobStore, FileBlobStore, blob_key_for
from storage.db import create_engine, make_sessionmaker, redact_url
from storage.models import Avatar, AvatarKind, Guild, Job, JobStatus, User, utcnow
from storage.repo import GuildChanges, HistoryPage, UserChanges, UserRef

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
    """What :meth:`Storage.forget_user` removed."""

    users: int
    avatars: int
    jobs: int
    blobs: int


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

    # -- users and guilds ------------------------------------------------------------------------

    async def get_or_create_user(
        self, *, discord_id: int | None = None, console_name: str | None = None
    ) -> User:
        """The Discord user or console user, created on first sight (race-safe)."""
        async with self.transaction() as s:
            return await repo.get_or_create_user(s, discord_id=discord_id, console_name=console_name)

    async def get_user(
        self, *, discord_id: int | None = None, console_name: str | None = None
    ) -> User | None:
        async with self.transaction() as s:
            return await repo.get_user(s, discord_id=discord_id, console_name=console_name)

    async def update_user(self, user: UserRef, **changes: Unpack[UserChanges]) -> User:
        """Change language, default_style, public_results, consent_store_selfies, consent_training."""
        async with self.transaction() as s:
            return await repo.update_user(s, user, **changes)

    async def guild_settings(self, guild_id: int) -> Guild:
        """The guild's settings row (created with defaults on first use)."""
        async with self.transaction() as s:
            return await repo.get_or_create_guild(s, guild_id)

    async def update_guild(self, guild_id: int, **changes: Unpack[GuildChanges]) -> Guild:
        """Change allowed_channels, per_user_daily_limit, max_queued_per_user, prompt_policy, engine, settings."""
        async with self.transaction() as s:
            return await repo.update_guild(s, guild_id, **changes)

    # -- avatars -----------------------------------------------------------------------------------

    async def create_avatar(
        self,
        owner: UserRef,
        image: bytes,
        *,
        kind: AvatarKind | str,
        seed: int,
        engine: str,
        width: int,
        height: int,
        spec: Mapping[str, Any] | None = None,
        spec_version: int = 1,
        prompt: str = "",
        model: str | None = None,
        parent: Avatar | int | str | None = None,
        guild_id: int | None = None,
        job_id: int | None = None,
    ) -> Avatar:
        """Store ``image`` (blob first, atomically) and then its avatar row.

        With ``job_id``, a retry returns the avatar that job already made instead of a second one.
        ``parent`` (Avatar, row id or public id) must be the owner's, else :class:`NotFound`.
        """

        async def insert(s: AsyncSession, key: str) -> tuple[Avatar, None]:
            avatar = await repo.insert_avatar(
                s,
                owner=owner,
                blob_key=key,
                kind=kind,
                seed=seed,
                engine=engine,
                width=width,
                height=height,
                spec=spec,
                spec_version=spec_version,
                prompt=prompt,
                model=model,
                parent=parent,
                guild_id=guild_id,
                job_id=job_id,
            )
            return avatar, None

        avatar, _ = await self._store_with_blob(image, insert)
        return avatar

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
        returns its avatar. A job that was cancelled or failed meanwhile raises
        :class:`~storage.errors.InvalidTransition` and nothing is stored.
        """

        async def finish(s: AsyncSession, key: str) -> tuple[Avatar, Job]:
            job = await repo.get_job_by_id(s, job_id)
            if job.status is JobStatus.DONE and job.avatar_id is not None:
                made = await repo.get_avatar_by_id(s, job.avatar_id)
                if made is not None:
                    return made, job
            # For a cancelled or failed job mark_done raises and the insert rolls back.
            avatar = await repo.insert_avatar(
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
            return avatar, await repo.mark_done(s, job.id, avatar.id)

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

    async def get_avatar(self, public_id: str, owner: UserRef) -> Avatar:
        """The owner's avatar; :class:`NotFound` if missing, deleted or not theirs."""
        async with self.transaction() as s:
            return await repo.get_avatar(s, public_id, owner)

    async def read_image(self, avatar: Avatar) -> bytes:
        """The avatar's image bytes (read in a worker thread)."""
        return await asyncio.to_thread(self.blobs.get, avatar.blob_key)

    async def image_path(self, avatar: Avatar) -> Path | None:
        """A local file holding the avatar's image (to send without reading it), or None."""
        return await asyncio.to_thread(self.blobs.local_path, avatar.blob_key)

    async def history(
        self,
        owner: UserRef,
        *,
        page: int | None = None,
        cursor: int | None = None,
        page_size: int = 10,
        favourites_only: bool = False,
        snapshot: int | None = None,
    ) -> HistoryPage:
        """The owner's avatars, newest first; see :func:`storage.repo.history` for paging."""
        async with self.transaction() as s:
            return await repo.history(
                s,
                owner,
                page=page,
                cursor=cursor,
                page_size=page_size,
                favourites_only=favourites_only,
                snapshot=snapshot,
            )

    async def latest_avatar(self, owner: UserRef) -> Avatar | None:
        async with self.transaction() as s:
            return await repo.latest_avatar(s, owner)

    async def lineage(self, public_id: str, owner: UserRef) -> list[Avatar]:
        """Root ancestor first, ``public_id`` last."""
        async with self.transaction() as s:
            return await repo.lineage(s, public_id, owner)

    async def children(self, public_id: str, owner: UserRef) -> list[Avatar]:
        async with self.transaction() as s:
            return await repo.children(s, public_id, owner)

    async def set_favourite(self, public_id: str, owner: UserRef, favourite: bool = True) -> Avatar:
        async with self.transaction() as s:
            return await repo.set_favourite(s, public_id, owner, favourite)

    async def soft_delete(self, public_id: str, owner: UserRef) -> Avatar:
        """Hide the avatar everywhere; :meth:`purge_deleted` removes it for good later."""
        async with self.transaction() as s:
            return await repo.soft_delete(s, public_id, owner)

    async def search_avatars(self, owner: UserRef, text: str = "", *, limit: int = 25) -> list[Avatar]:
        """Autocomplete: recent avatars whose public id starts with, or prompt contains, ``text``."""
        async with self.transaction() as s:
            return await repo.search_avatars(s, owner, text, limit=limit)

    # -- deletion --------------------------------------------------------------------------------

    async def forget_user(self, user: UserRef) -> ForgetResult:
        """Delete the user with all their avatars and jobs, and every blob nobody else's row uses."""
        async with self.transaction() as s:
            counts = await repo.delete_user_rows(s, user)
        blobs = await self._discard_orphans(counts.blob_keys)
        log.info("forgot a user: %d avatars, %d jobs, %d blobs removed", counts.avatars, counts.jobs, blobs)
        return ForgetResult(users=counts.users, avatars=counts.avatars, jobs=counts.jobs, blobs=blobs)

    async def purge_deleted(self, older_than: timedelta) -> int:
        """Hard-delete avatars soft-deleted more than ``older_than`` ago (and their unused blobs)."""
        async with self.transaction() as s:
            count, keys = await repo.purge_deleted_rows(s, utcnow() - older_than)
        await self._discard_orphans(keys)
        return count

    async def gc_blobs(self, grace_seconds: float = DEFAULT_GC_GRACE_SECONDS) -> GcResult:
        """Remove blobs no avatar row points at, and leftovers of interrupted writes.

        Only blobs older than ``grace_seconds`` are considered, so a blob written a moment ago by a
        ``create_avatar`` in another process, whose row is not committed yet, survives. Temporary
        files must also be older than :data:`TEMP_FILE_MIN_AGE_SECONDS`.
        """
        if grace_seconds < 0:
            raise ValueError("grace_seconds must be >= 0")
        candidates = await asyncio.to_thread(lambda: list(self.blobs.keys(older_than=grace_seconds)))
        async with self.transaction() as s:
            referenced = await repo.referenced_blob_keys(s)
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
            if await repo.blob_is_referenced(s, key):
                return 0
        return int(await asyncio.to_thread(self.blobs.delete, key))

    # -- jobs --------------------------------------------------------------------------------------

    async def create_job(
        self,
        user: UserRef,
        kind: AvatarKind | str,
        request: Mapping[str, Any] | None = None,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        interaction_token: str | None = None,
        token_expires_at: datetime | None = None,
    ) -> Job:
        """A new queued job."""
        async with self.transaction() as s:
            return await repo.create_job(
                s,
                user=user,
                kind=kind,
                request=request,
                guild_id=guild_id,
                channel_id=channel_id,
                interaction_token=interaction_token,
                token_expires_at=token_expires_at,
            )

    async def get_job(self, public_id: str, user: UserRef) -> Job:
        """The user's job by public id; :class:`NotFound` if missing or not theirs."""
        async with self.transaction() as s:
            return await repo.get_job(s, public_id, user)

    async def get_job_by_id(self, job_id: int) -> Job:
        """Internal lookup for the generation service (no owner check)."""
        async with self.transaction() as s:
            return await repo.get_job_by_id(s, job_id)

    async def mark_running(self, job_id: int) -> Job:
        async with self.transaction() as s:
            return await repo.mark_running(s, job_id)

    async def mark_done(self, job_id: int, avatar_id: int) -> Job:
        async with self.transaction() as s:
            return await repo.mark_done(s, job_id, avatar_id)

    async def mark_failed(self, job_id: int, error: str) -> Job:
        async with self.transaction() as s:
            return await repo.mark_failed(s, job_id, error)

    async def mark_cancelled(self, job_id: int) -> Job:
        async with self.transaction() as s:
            return await repo.mark_cancelled(s, job_id)

    async def cancel_job(self, public_id: str, user: UserRef) -> Job:
        """The user cancels their own queued or running job."""
        async with self.transaction() as s:
            return await repo.cancel_job(s, public_id, user)

    async def requeue(self, job_id: int) -> Job:
        """running -> queued after a crash (counts an attempt)."""
        async with self.transaction() as s:
            return await repo.requeue(s, job_id)

    async def unfinished_jobs(self) -> list[Job]:
        """Queued and running jobs, oldest first, for recovery at start-up."""
        async with self.transaction() as s:
            return await repo.unfinished_jobs(s)

    async def active_jobs(self, user: UserRef) -> list[Job]:
        async with self.transaction() as s:
            return await repo.active_jobs(s, user)

    async def count_jobs_since(
        self,
        user: UserRef,
        since: datetime,
        *,
        guild_id: int | None = None,
        statuses: Iterable[JobStatus] | None = None,
    ) -> int:
        async with self.transaction() as s:
            return await repo.count_jobs_since(s, user, since, guild_id=guild_id, statuses=statuses)
