"""Errors raised by the storage layer.

Every error the use-case layer is expected to handle derives from :class:`StorageError`.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class for every error raised on purpose by :mod:`storage`."""


class NotFound(StorageError, LookupError):
    """The thing does not exist *or* belongs to someone else.

    The two cases are deliberately indistinguishable so that callers cannot probe for
    other people's avatar or job ids.
    """


class InvalidTransition(StorageError):
    """A job status change that the transition table does not allow (or that lost a race)."""

    def __init__(self, job_id: int, current: str, target: str) -> None:
        super().__init__(f"job {job_id}: cannot go from {current!r} to {target!r}")
        self.job_id = job_id
        self.current = current
        self.target = target


class InvalidBlobKey(StorageError, ValueError):
    """A blob key that is not 64 lower-case hex characters (sha256)."""


class BlobNotFound(StorageError, KeyError):
    """No blob is stored under that key."""


class SchemaMismatch(StorageError):
    """The database schema revision does not match what this code expects."""


class DatabaseBehind(SchemaMismatch):
    """The database has not been upgraded to the revision this code needs."""
