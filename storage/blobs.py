"""Image blob store: content-addressed by sha256.

:class:`BlobStore` is the small interface the rest of storage relies on; it is synchronous and is
called from the event loop only through :func:`asyncio.to_thread` (see :class:`storage.Storage`).
It is small enough for an S3-compatible store to implement later (``local_path`` may return None).

:class:`FileBlobStore` keeps blobs on the local file system as ``root/ab/cd/abcd…`` (the first two
byte-pairs of the hex digest fan the files out). Writes are atomic and durable: the bytes go to a
temporary file in the destination directory, which is flushed, ``fsync``-ed and renamed over the final
name with :func:`os.replace`, then the directory itself (and any fan-out directory that was created for
it) is ``fsync``-ed. A crash leaves at worst a ``.tmp-*`` file, which is never listed as a key and is
removed by :meth:`FileBlobStore.sweep_temp`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from storage.errors import BlobNotFound, InvalidBlobKey

__all__ = ["BlobStore", "FileBlobStore", "blob_key_for", "validate_key"]

log = logging.getLogger(__name__)

_KEY_RE = re.compile(r"[0-9a-f]{64}")
_FAN_RE = re.compile(r"[0-9a-f]{2}")
TEMP_PREFIX = ".tmp-"


def blob_key_for(data: bytes) -> str:
    """The key ``data`` is stored under: its sha256 as 64 lower-case hex characters."""
    return hashlib.sha256(data).hexdigest()


def validate_key(key: object) -> str:
    """Return ``key`` if it is a well-formed blob key, else raise :class:`InvalidBlobKey`.

    Only 64 lower-case hex characters pass, which rules out path separators, ``..``, NUL bytes,
    absolute paths and anything else that could escape the store's root.
    """
    if not isinstance(key, str) or _KEY_RE.fullmatch(key) is None:
        raise InvalidBlobKey(f"invalid blob key {key!r:.80}: expected 64 lower-case hex characters")
    return key


@runtime_checkable
class BlobStore(Protocol):
    """Where image bytes live. Keys are sha256 hex digests of the content."""

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its key. Storing existing content refreshes its age."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; :class:`BlobNotFound` if there are none."""
        ...

    def exists(self, key: str) -> bool: ...

    def touch(self, key: str) -> bool:
        """Give an existing blob a fresh age (as :meth:`put` does); False if there is none."""
        ...

    def delete(self, key: str) -> bool:
        """Remove the blob; True if it existed."""
        ...

    def keys(self, *, older_than: float | None = None) -> Iterator[str]:
        """Every stored key, optionally only those last written more than ``older_than`` seconds ago."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A file holding the blob (for sending it without reading it into memory), or None."""
        ...

    def sweep_temp(self, *, older_than: float) -> int:
        """Remove leftovers of interrupted writes older than ``older_than`` seconds; return how many."""
        ...


def _fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


class FileBlobStore:
    """A :class:`BlobStore` on the local file system under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FileBlobStore({str(self.root)!r})"

    # -- paths -----------------------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        """Where ``key`` lives (whether or not it exists). Raises :class:`InvalidBlobKey`."""
        key = validate_key(key)
        return self.root / key[0:2] / key[2:4] / key

    def _ensure_dir(self, directory: Path) -> list[Path]:
        """Create ``directory`` (two fan-out levels below root) if it is missing; return the parents that
        gained an entry, for the caller to fsync (see :meth:`put`)."""
        if directory.is_dir():
            return []
        changed: list[Path] = []
        for level in (directory.parent, directory):
            if not level.is_dir():
                try:
                    level.mkdir()
                except FileExistsError:
                    continue
                changed.append(level.parent)
        return changed

    # -- BlobStore ---------------------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        """Store ``data`` atomically and durably; idempotent (existing content only gets a fresh age).

        Missing fan-out directories are created first, the bytes go to a temporary file that is fsync-ed
        (on a journalling file system that commit takes the new directories along), the file is renamed
        over the final name, then the directory that gained the name is fsync-ed, and so is each parent
        that gained a fan-out directory (by then usually nothing is left to write: cheap). Nothing
        returns before all of that, so a row committed after :meth:`put` never points at a missing or
        torn blob, and a final name never holds bytes that were not durable first.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"blob data must be bytes, not {type(data).__name__}")
        key = blob_key_for(bytes(data))
        path = self.path_for(key)
        if self.touch(key):
            return key
        gained = self._ensure_dir(path.parent)
        tmp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(path.parent)
        for directory in reversed(gained):  # root/ab (gained ab/cd), then root (gained ab)
            _fsync_dir(directory)
        log.debug("stored blob %s (%d bytes)", key, len(data))
        return key

    def touch(self, key: str) -> bool:
        """Refresh an existing blob's modification time, so that a garbage collection running right now
        treats it as young and leaves it for the row that is about to point at it."""
        try:
            os.utime(self.path_for(key))
        except FileNotFoundError:
            return False
        return True

    def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete(self, key: str) -> bool:
        path = self.path_for(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        log.debug("deleted blob %s", key)
        return True

    def keys(self, *, older_than: float | None = None) -> Iterator[str]:
        cutoff = None if older_than is None else time.time() - older_than
        for path in self._files():
            name = path.name
            if (
                _KEY_RE.fullmatch(name) is None
                or path.parent.name != name[2:4]
                or path.parent.parent.name != name[0:2]
            ):
                continue
            if cutoff is not None:
                try:
                    if path.stat().st_mtime > cutoff:
                        continue
                except FileNotFoundError:
                    continue
            yield name

    def local_path(self, key: str) -> Path | None:
        path = self.path_for(key)
        return path if path.is_file() else None

    def sweep_temp(self, *, older_than: float) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for path in self._files():
            if not path.name.startswith(TEMP_PREFIX):
                continue
            try:
                if path.stat().st_mtime > cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            removed += 1
            log.info("removed leftover temporary blob file %s", path.name)
        return removed

    # -- internals -------------------------------------------------------------------------------

    def _files(self) -> Iterator[Path]:
        """Every regular file two fan-out levels below the root (keys and temp files)."""
        for first in self._subdirs(self.root):
            for second in self._subdirs(first):
                try:
                    entries = list(os.scandir(second))
                except FileNotFoundError:
                    continue
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        yield Path(entry.path)

    @staticmethod
    def _subdirs(directory: Path) -> list[Path]:
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return []
        return [
            Path(e.path)
            for e in entries
            if e.is_dir(follow_symlinks=False) and _FAN_RE.fullmatch(e.name) is not None
        ]
