"""SQLAlchemy 2 ORM models: users, guilds, avatars, jobs and pending picture bytes.

Portable across SQLite and PostgreSQL: JSON columns use :class:`sqlalchemy.JSON`, enums are stored as
short strings guarded by CHECK constraints, timestamps are timezone-aware UTC (see :class:`UTCDateTime`)
and Discord snowflakes are ``BigInteger``.

There are deliberately no ORM relationships: every query is explicit in the repository modules
(:mod:`storage.users`, :mod:`storage.guilds`, :mod:`storage.avatars`, :mod:`storage.jobs`), so nothing
lazy-loads behind an ``await`` and detached objects returned to callers are complete snapshots.
Referential actions (``ON DELETE CASCADE`` / ``SET NULL``) live in the database.

The migrations in ``migrations/versions/`` must build exactly this schema; the test suite
checks that with Alembic's autogenerate comparison on both databases.
"""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AVATAR_KINDS",
    "NAMING_CONVENTION",
    "PUBLIC_ID_BYTES",
    "Avatar",
    "AvatarKind",
    "Base",
    "Guild",
    "Job",
    "JobStatus",
    "PendingBlob",
    "PromptPolicy",
    "UTCDateTime",
    "User",
    "new_public_id",
    "utcnow",
]

#: Deterministic constraint names on every backend, so later (batch) migrations can refer to them.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Random bytes in a public id: 12 bytes = 96 bits = 16 URL-safe characters.
PUBLIC_ID_BYTES = 12


def new_public_id() -> str:
    """An unguessable, URL-safe id (16 characters) for use in commands and button custom_ids.

    It never starts with ``-``, so a command line never reads it as an option: drawn again when it would
    (1 time in 64), which keeps every other id equally likely (96 bits less 0.02).
    """
    while True:
        public_id = secrets.token_urlsafe(PUBLIC_ID_BYTES)
        if not public_id.startswith("-"):
            return public_id


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A ``DateTime(timezone=True)`` that always hands back aware UTC datetimes.

    PostgreSQL stores ``timestamptz`` natively. SQLite has no time zones, so values are converted to
    UTC and stored naive; on the way out they get ``tzinfo=UTC`` back. Naive datetimes are refused on
    the way in: an unqualified local time is a bug, not something to guess about.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: storage needs timezone-aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class AvatarKind(enum.StrEnum):
    """How an avatar (or the job making it) came about."""

    PROMPT = "prompt"
    SELFIE = "selfie"
    EDIT = "edit"
    VARIATION = "variation"
    REROLL = "reroll"


AVATAR_KINDS: tuple[str, ...] = tuple(k.value for k in AvatarKind)


class JobStatus(enum.StrEnum):
    """Life cycle of a job. ``done``, ``failed`` and ``cancelled`` are terminal."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class PromptPolicy(enum.StrEnum):
    """How strictly a guild filters prompts."""

    STRICT = "strict"
    STANDARD = "standard"
    OFF = "off"


def _str_enum(cls: type[enum.StrEnum], name: str) -> sa.Enum:
    """A non-native enum: VARCHAR(16) plus a named CHECK constraint, storing the *values*."""
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: sa.JSON(),
        list[int]: sa.JSON(),
    }


class User(Base):
    """A person: either a Discord user (``discord_id``) or a console user (``console_name``)."""

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(
            "(discord_id IS NULL) <> (console_name IS NULL)",
            name="one_identity",
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    discord_id: Mapped[int | None] = mapped_column(sa.BigInteger, unique=True)
    console_name: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    language: Mapped[str] = mapped_column(sa.String(16), default="en", server_default="en")
    default_style: Mapped[str] = mapped_column(sa.String(32), default="chibi", server_default="chibi")
    public_results: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    consent_store_selfies: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    consent_training: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    def __repr__(self) -> str:
        who = (
            f"discord_id={self.discord_id}"
            if self.discord_id is not None
            else f"console={self.console_name!r}"
        )
        return f"<User id={self.id} {who}>"


class Guild(Base):
    """Per-server settings. ``id`` is the Discord guild id."""

    __tablename__ = "guilds"

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    allowed_channels: Mapped[list[int]] = mapped_column(default=list)
    per_user_daily_limit: Mapped[int | None] = mapped_column(sa.Integer)
    max_queued_per_user: Mapped[int | None] = mapped_column(sa.Integer)
    prompt_policy: Mapped[PromptPolicy] = mapped_column(
        _str_enum(PromptPolicy, "prompt_policy"),
        default=PromptPolicy.STANDARD,
        server_default=PromptPolicy.STANDARD.value,
    )
    engine: Mapped[str | None] = mapped_column(sa.String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)

    def __repr__(self) -> str:
        return f"<Guild id={self.id} policy={self.prompt_policy}>"


class Job(Base):
    """A unit of generation work, its status and its delivery. See :mod:`storage.jobs` for the
    transition table."""

    __tablename__ = "jobs"
    __table_args__ = (
        sa.Index("ix_jobs_user_id_status", "user_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(sa.String(32), unique=True, index=True, default=new_public_id)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    guild_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    kind: Mapped[AvatarKind] = mapped_column(_str_enum(AvatarKind, "job_kind"))
    status: Mapped[JobStatus] = mapped_column(
        _str_enum(JobStatus, "job_status"),
        index=True,
        default=JobStatus.QUEUED,
        server_default=JobStatus.QUEUED.value,
    )
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # use_alter: avatars and jobs reference each other; PostgreSQL needs one of the two FKs
    # added after both tables exist.
    avatar_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("avatars.id", ondelete="SET NULL", use_alter=True)
    )
    channel_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    interaction_token: Mapped[str | None] = mapped_column(sa.Text)
    token_expires_at: Mapped[datetime | None]
    # Delivery (migration 0002): who gets the result, which request it belongs to, the bot messages that
    # show it, and when Discord accepted the final one. Console jobs have no deliver_user_id.
    deliver_user_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    request_group: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    messages: Mapped[list[list[int]]] = mapped_column(sa.JSON(), default=list)
    delivered_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<Job id={self.id} {self.kind} {self.status} user={self.user_id}>"


class Avatar(Base):
    """One generated picture, with everything needed to re-render or edit it."""

    __tablename__ = "avatars"
    __table_args__ = (
        sa.Index("ix_avatars_owner_id_id", "owner_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(sa.String(32), unique=True, index=True, default=new_public_id)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    guild_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    parent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("avatars.id", ondelete="SET NULL"), index=True
    )
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("jobs.id", ondelete="SET NULL"), unique=True)
    kind: Mapped[AvatarKind] = mapped_column(_str_enum(AvatarKind, "avatar_kind"))
    prompt: Mapped[str] = mapped_column(sa.Text, default="")
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    spec_version: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    engine: Mapped[str] = mapped_column(sa.String(64))
    model: Mapped[str | None] = mapped_column(sa.String(255))
    blob_key: Mapped[str] = mapped_column(sa.String(64), index=True)
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    favourite: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<Avatar id={self.id} public_id={self.public_id} owner={self.owner_id} {self.kind}>"


class PendingBlob(Base):
    """A new picture's bytes, made durable by the commit that stores its avatar, until its blob file is
    durable too; then the row goes (``storage.journal``). Readers fall back to it while the file is not
    there yet, and ``Storage.open`` writes out whatever a crash left here."""

    __tablename__ = "pending_blobs"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<PendingBlob {self.key[:12]} {len(self.data)} bytes>"
