"""Pending blobs: a new picture is durable with the commit that stores its avatar row; its file follows.

A picture's avatar row must never point at bytes that are not durable. Before, the row could commit
only after the blob file was durable: the file, its fsync, a rename and the fsync of each directory that
gained a name, all on the way to every result. Now the job store (:class:`storage.jobstore.SqlJobStore`)
writes the picture's bytes into ``pending_blobs`` in the same transaction as the avatar row, so one
commit (one flush of the database's log) makes both durable and the result is reported at once. The
file is then written, durably, on the journal's own thread, and once it is, the pending row is dropped
by the next transaction that finishes jobs (or by :meth:`storage.Storage.close`).

What holds at every moment:

- a committed avatar's picture is readable: from its file, or else from its pending row
  (:meth:`storage.Storage.read_blob`, which every reader of pictures uses);
- a pending row is dropped only after its file is durable;
- :meth:`storage.Storage.open` writes out whatever pending rows a crash left, then drops them;
- a blob that loses its last avatar row (``forget_user``, ``gc_blobs``) loses its pending row in the
  same transaction that found it unreferenced, after any file write of it in flight here has ended.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from storage.blobs import BlobStore
from storage.models import Avatar, PendingBlob, utcnow

__all__ = [
    "DROP",
    "BlobJournal",
    "drop_pending",
    "insert_pending",
    "pending_keys",
    "read_pending",
    "unreferenced_keys",
]

log = logging.getLogger(__name__)

_PENDING = cast(sa.Table, PendingBlob.__table__)
_AVATARS = cast(sa.Table, Avatar.__table__)
# Built once: building a statement costs about as much as running it on SQLite.
_INSERT: dict[str, Any] = {
    "sqlite": sqlite.insert(_PENDING).on_conflict_do_nothing(index_elements=["key"]),
    "postgresql": postgresql.insert(_PENDING).on_conflict_do_nothing(index_elements=["key"]),
}
_KEYS_PRESENT = sa.select(_PENDING.c.key).where(_PENDING.c.key.in_(sa.bindparam("keys", expanding=True)))
DROP = (  # pending rows by key, RETURNING the keys whose rows were there
    sa.delete(_PENDING)
    .where(_PENDING.c.key.in_(sa.bindparam("keys", expanding=True)))
    .returning(_PENDING.c.key)
)
_DATA = sa.select(_PENDING.c.data).where(_PENDING.c.key == sa.bindparam("key"))
_ALL_KEYS = sa.select(_PENDING.c.key).order_by(_PENDING.c.created_at)
_UNREFERENCED = sa.select(_PENDING.c.key).where(~sa.exists().where(_AVATARS.c.blob_key == _PENDING.c.key))


def insert_pending(conn: sa.Connection, images: Mapping[str, bytes]) -> None:
    """Record ``images`` (blob key -> bytes) as pending, in the caller's transaction; a key already
    pending is left as it is (the same key is the same bytes)."""
    if not images:
        return
    now = utcnow()
    rows = [{"key": key, "data": data, "created_at": now} for key, data in images.items()]
    insert = _INSERT.get(conn.dialect.name)
    if insert is None:  # pragma: no cover - chibify runs on SQLite and PostgreSQL
        there = set(conn.execute(_KEYS_PRESENT, {"keys": list(images)}).scalars())
        rows = [row for row in rows if row["key"] not in there]
        insert = sa.insert(_PENDING)
    if rows:
        conn.execute(insert, rows)


def drop_pending(conn: sa.Connection, keys: Sequence[str]) -> set[str]:
    """Drop the pending rows of ``keys`` (their files are durable), in the caller's transaction; returns
    the keys whose rows were there. One that was not lost its row meanwhile to a deletion in another
    process, or to another process's :func:`storage.Storage.open`: the caller checks whether its file is
    still wanted."""
    if not keys:
        return set()
    return set(conn.execute(DROP, {"keys": list(keys)}).scalars())


def read_pending(conn: sa.Connection, key: str) -> bytes | None:
    """The pending bytes of ``key``, or None."""
    data = conn.execute(_DATA, {"key": key}).scalar_one_or_none()
    return bytes(data) if data is not None else None


def pending_keys(conn: sa.Connection) -> list[str]:
    """Every pending key, oldest first."""
    return list(conn.execute(_ALL_KEYS).scalars())


def unreferenced_keys(conn: sa.Connection) -> list[str]:
    """The pending keys no avatar points at (their avatars were deleted by another process while the
    file was not written yet, or before a crash)."""
    return list(conn.execute(_UNREFERENCED).scalars())


def touch_all(blobs: BlobStore, keys: Iterable[str]) -> dict[str, bool]:
    """Which of ``keys`` have a file; those get a fresh age (:meth:`BlobStore.touch`), as
    :meth:`BlobStore.put` gives a blob it finds, so that a garbage collection in another process leaves
    them for the row about to point at them. Call it under the keys' locks (``Storage._locks``), so that
    no deletion of this process takes a file between this check and the commit that relies on it."""
    return {key: blobs.touch(key) for key in keys}


def _put_all(blobs: BlobStore, images: Iterable[bytes]) -> None:
    for image in images:
        blobs.put(image)


#: How long after their commit pending pictures are written out as files, together. The next request's
#: admission (its own commit) and the worker's next picture go first; the files are not on the way to
#: anyone's result.
WRITE_DELAY_S = 0.005


class BlobJournal:
    """The in-process side of the pending blobs: which files are due or being written, and which are
    durable so that their pending rows can go. Used on the event loop; the files are written on a
    thread of its own (fsyncs, not CPU)."""

    def __init__(self, blobs: BlobStore, *, delay_s: float = WRITE_DELAY_S) -> None:
        self.blobs = blobs
        self.delay_s = delay_s
        self._writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="chibify-blob-files"
        )
        self._due: dict[str, bytes] = {}  # committed as pending, file not started yet
        self._timer: asyncio.TimerHandle | None = None
        self._writing: dict[str, asyncio.Future[None]] = {}  # key -> the file write in flight
        self._written: set[str] = set()  # durable as files: their pending rows may go

    def missing(self, images: Mapping[str, bytes], present: Mapping[str, bool]) -> dict[str, bytes]:
        """Of ``images`` (key -> bytes), those whose file is not durable here yet: not ``present``
        (:func:`touch_all`, run before), or due or being written here."""
        return {
            key: data
            for key, data in images.items()
            if key in self._due or key in self._writing or not present.get(key, False)
        }

    def write(self, images: Mapping[str, bytes]) -> None:
        """Write the files of ``images`` (key -> bytes), which a transaction has just committed as
        pending rows, :data:`WRITE_DELAY_S` from now, together with any others due by then. Each key's
        pending row may go once its file is durable (:meth:`take_written`); after a failure the rows
        stay, readers use them, and the next :meth:`storage.Storage.open` writes them out."""
        if not images:
            return
        self._due.update(images)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay_s, self._start)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._due:
            return
        images, self._due = self._due, {}
        keys = list(images)
        future = asyncio.get_running_loop().run_in_executor(
            self._writer, _put_all, self.blobs, list(images.values())
        )
        for key in keys:
            self._writing[key] = future

        def ended(done: asyncio.Future[None]) -> None:
            for key in keys:
                if self._writing.get(key) is done:
                    del self._writing[key]
            error = None if done.cancelled() else done.exception()
            if error is None:
                self._written.update(keys)
            else:
                log.warning(
                    "%d picture files could not be written yet (%s); their bytes stay in the database",
                    len(keys),
                    error,
                )

        future.add_done_callback(ended)

    async def settled(self, key: str) -> None:
        """Write ``key``'s file now if it is due, and wait until no write of it is in flight."""
        if key in self._due:
            self._start()
        while (future := self._writing.get(key)) is not None:
            await asyncio.wait([future])

    async def drain(self) -> None:
        """Write every due file now and wait for every write in flight."""
        self._start()
        while self._writing:
            await asyncio.wait(set(self._writing.values()))

    def take_written(self) -> list[str]:
        """The keys whose pending rows may go now; the caller drops them in its transaction, or gives
        them back (:meth:`give_back`) if that transaction fails."""
        keys = list(self._written)
        self._written.clear()
        return keys

    def give_back(self, keys: Iterable[str]) -> None:
        self._written.update(keys)

    def forget(self, key: str) -> None:
        """``key``'s pending row is gone (its blob was discarded): nothing left to drop."""
        self._written.discard(key)
