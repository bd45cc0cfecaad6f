"""Chibify storage: SQLAlchemy 2 async models and repositories, Alembic migrations, image blobs.

Never imports discord, torch, bot or generation. Start with :class:`Storage` (docs/storage.md): one
session per unit of work, ``async with storage.transaction() as s:``, and the repository functions of
:mod:`storage.users`, :mod:`storage.guilds`, :mod:`storage.avatars` and :mod:`storage.jobs` in it.
"""

from storage import avatars, guilds, jobs, users
from storage.avatars import HistoryPage
from storage.blobs import BlobStore, FileBlobStore
from storage.errors import (
    BlobNotFound,
    DatabaseBehind,
    InvalidBlobKey,
    InvalidTransition,
    NotFound,
    SchemaMismatch,
    StorageError,
)
from storage.facade import DEFAULT_GC_GRACE_SECONDS, ForgetResult, GcResult, Storage
from storage.models import Avatar, AvatarKind, Guild, Job, JobStatus, PromptPolicy, User

__all__ = [
    "DEFAULT_GC_GRACE_SECONDS",
    "Avatar",
    "AvatarKind",
    "BlobNotFound",
    "BlobStore",
    "DatabaseBehind",
    "FileBlobStore",
    "ForgetResult",
    "GcResult",
    "Guild",
    "HistoryPage",
    "InvalidBlobKey",
    "InvalidTransition",
    "Job",
    "JobStatus",
    "NotFound",
    "PromptPolicy",
    "SchemaMismatch",
    "Storage",
    "StorageError",
    "User",
    "avatars",
    "guilds",
    "jobs",
    "users",
]
