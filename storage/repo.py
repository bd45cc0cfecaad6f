"""Repository functions: every query the use cases need, each taking an :class:`AsyncSession`.

The caller owns the transaction (``async with sessionmaker() as s, s.begin():``), so several calls can
share one unit of work. Most code should go through :class:`storage.Storage`, which opens one
transaction per call and also handles image blobs; these functions are the building blocks.

Owner checks: every function that takes an avatar or job *public id* also takes its owner, and a row
that exists but belongs to someone else raises the same :class:`~storage.errors.NotFound` as a row that
does not exist. Soft-deleted avatars are not found either.

Owners and users are passed as ``User | int`` (a :class:`~storage.models.User` or its ``id``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, Unpack, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.blobs import validate_key
from storage.errors import InvalidTransition, NotFound
from storage.models import Avatar, AvatarKind, Guild, Job, JobStatus, PromptPolicy, User, utcnow

__all__ = [
    "MAX_PAGE_SIZE",
    "TRANSITIONS",
    "ForgetCounts",
    "GuildChanges",
    "HistoryPage",
    "UserChanges",
    "UserRef",
    "active_jobs",
    "blob_is_referenced",
    "cancel_job",
    "children",
    "count_jobs_since",
    "create_job",
    "delete_user_rows",
    "get_avatar",
    "get_avatar_by_id",
    "get_guild",
    "get_job",
    "get_job_by_id",
    "get_or_create_guild",
    "get_or_create_user",
    "get_user",
    "get_user_by_id",
    "history",
    "insert_avatar",
    "latest_avatar",
    "lineage",
    "mark_cancelled",
    "mark_done",
    "mark_failed",
    "mark_running",
    "purge_deleted_rows",
    "referenced_blob_keys",
    "requeue",
    "search_avatars",
    "set_favourite",
    "soft_delete",
    "transition",
    "update_guild",
    "update_user",
]

log = logging.getLogger(__name__)

UserRef = User | int

MAX_PAGE_SIZE = 100
MAX_LINEAGE_DEPTH = 1000
_MAX_PUBLIC_ID_LEN = 64
_INT64_MAX = 2**63 - 1


def _uid(user: UserRef) -> int:
    if isinstance(user, User):
        return user.id
    if isinstance(user, bool) or not isinstance(user, int):
        raise TypeError(f"expected a User or a user id, got {type(user).__name__}")
    return user


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ------------------------------------------------------------------------------------------------
# Users
# ------------------------------------------------------------------------------------------------


def _identity_filter(discord_id: int | None, console_name: str | None) -> sa.ColumnElement[bool]:
    if (discord_id is None) == (console_name is None):
        raise ValueError("give exactly one of discord_id or console_name")
    if discord_id is not None:
        if not _is_int(discord_id) or not 0 < discord_id <= _INT64_MAX:
            raise ValueError(f"invalid discord_id {discord_id!r}")
        return User.discord_id == discord_id
    assert console_name is not None
    if (
        not isinstance(console_name, str)
        or not 0 < len(console_name) <= 64
        or console_name != console_name.strip()
    ):
        raise ValueError("console_name must be 1-64 characters without surrounding spaces")
    return User.console_name == console_name


async def get_user(
    session: AsyncSession, *, discord_id: int | None = None, console_name: str | None = None
) -> User | None:
    """The user with that Discord id or console name, or None."""
    where = _identity_filter(discord_id, console_name)
    return (await session.scalars(sa.select(User).where(where))).one_or_none()


async def get_user_by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_or_create_user(
    session: AsyncSession, *, discord_id: int | None = None, console_name: str | None = None
) -> User:
    """Find or create the user; safe when many tasks or processes race to create the same user.

    The insert runs in a SAVEPOINT: if a concurrent transaction inserted the same identity first, the
    unique constraint fires, the savepoint rolls back and the winner's row is read instead.
    """
    where = _identity_filter(discord_id, console_name)
    user = (await session.scalars(sa.select(User).where(where))).one_or_none()
    if user is not None:
        return user
    try:
        async with session.begin_nested():
            user = User(discord_id=discord_id, console_name=console_name)
            session.add(user)
        log.info("created user %d", user.id)
        return user
    except IntegrityError:
        user = (await session.scalars(sa.select(User).where(where))).one_or_none()
        if user is None:
            raise
        log.debug("another transaction created user %d first; using it", user.id)
        return user


class UserChanges(TypedDict, total=False):
    """Settings :func:`update_user` can change; absent keys keep their value."""

    language: str
    default_style: str
    public_results: bool
    consent_store_selfies: bool
    consent_training: bool


async def update_user(session: AsyncSession, user: UserRef, **changes: Unpack[UserChanges]) -> User:
    """Change a user's settings; :class:`NotFound` if the user is gone."""
    row = await session.get(User, _uid(user), with_for_update=True)
    if row is None:
        raise NotFound("user not found")
    for name, value in changes.items():
        if name == "language":
            if not isinstance(value, str) or not 2 <= len(value) <= 16:
                raise ValueError(f"invalid language {value!r}")
        elif name == "default_style":
            if not isinstance(value, str) or not 1 <= len(value) <= 32:
                raise ValueError(f"invalid default_style {value!r}")
        elif name in ("public_results", "consent_store_selfies", "consent_training"):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be a bool")
        else:
            raise TypeError(f"unknown user setting {name!r}")
        setattr(row, name, value)
    await session.flush()
    return row


# ------------------------------------------------------------------------------------------------
# Guilds
# ------------------------------------------------------------------------------------------------


def _check_guild_id(guild_id: int) -> None:
    if not _is_int(guild_id) or not 0 < guild_id <= _INT64_MAX:
        raise ValueError(f"invalid guild id {guild_id!r}")


async def get_guild(session: AsyncSession, guild_id: int) -> Guild | None:
    _check_guild_id(guild_id)
    return await session.get(Guild, guild_id)


async def get_or_create_guild(session: AsyncSession, guild_id: int) -> Guild:
    """The guild's settings row, created with defaults on first use (race-safe like users)."""
    _check_guild_id(guild_id)
    guild = await session.get(Guild, guild_id)
    if guild is not None:
        return guild
    try:
        async with session.begin_nested():
            guild = Guild(id=guild_id)
            session.add(guild)
        return guild
    except IntegrityError:
        guild = await session.get(Guild, guild_id, populate_existing=True)
        if guild is None:
            raise
        return guild


class GuildChanges(TypedDict, total=False):
    """Settings :func:`update_guild` can change; absent keys keep their value."""

    allowed_channels: Iterable[int]
    per_user_daily_limit: int | None
    max_queued_per_user: int | None
    prompt_policy: PromptPolicy | str
    engine: str | None
    settings: Mapping[str, Any]


async def update_guild(session: AsyncSession, guild_id: int, **changes: Unpack[GuildChanges]) -> Guild:
    """Change a guild's settings, creating the row if needed.

    ``allowed_channels`` empty means "every channel"; ``None`` limits mean "no limit"; ``settings``
    replaces the extras dict wholesale and must be JSON-serialisable.
    """
    guild = await get_or_create_guild(session, guild_id)
    for name, value in changes.items():
        if name == "allowed_channels":
            channels = list(cast("Iterable[int]", value))
            if not all(_is_int(c) and 0 < c <= _INT64_MAX for c in channels):
                raise ValueError("allowed_channels must be channel ids (positive ints)")
            guild.allowed_channels = sorted(set(channels))
        elif name in ("per_user_daily_limit", "max_queued_per_user"):
            if value is not None and (not _is_int(value) or cast(int, value) < 0):
                raise ValueError(f"{name} must be None or a non-negative int")
            setattr(guild, name, value)
        elif name == "prompt_policy":
            guild.prompt_policy = PromptPolicy(cast(str, value))
        elif name == "engine":
            if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 64):
                raise ValueError(f"invalid engine {value!r}")
            guild.engine = cast("str | None", value)
        elif name == "settings":
            extras = dict(cast("Mapping[str, Any]", value))
            json.dumps(extras)  # raises TypeError for anything that cannot be stored
            guild.settings = extras
        else:
            raise TypeError(f"unknown guild setting {name!r}")
    await session.flush()
    return guild


# ------------------------------------------------------------------------------------------------
# Avatars
# ------------------------------------------------------------------------------------------------


def _visible(owner_id: int) -> sa.ColumnElement[bool]:
    return sa.and_(Avatar.owner_id == owner_id, Avatar.deleted_at.is_(None))


def _valid_public_id(public_id: object) -> bool:
    return isinstance(public_id, str) and 0 < len(public_id) <= _MAX_PUBLIC_ID_LEN


async def get_avatar(session: AsyncSession, public_id: str, owner: UserRef) -> Avatar:
    """The owner's avatar with that public id; :class:`NotFound` if missing, deleted or someone else's."""
    owner_id = _uid(owner)
    if _valid_public_id(public_id):
        stmt = sa.select(Avatar).where(Avatar.public_id == public_id, _visible(owner_id))
        avatar = (await session.scalars(stmt)).one_or_none()
        if avatar is not None:
            return avatar
    raise NotFound("avatar not found")


async def get_avatar_by_id(session: AsyncSession, avatar_id: int) -> Avatar | None:
    """Internal lookup by row id, with no owner check (for the service layer, never for user input)."""
    return await session.get(Avatar, avatar_id)


async def insert_avatar(
    session: AsyncSession,
    *,
    owner: UserRef,
    blob_key: str,
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
    """Insert an avatar row for an already stored blob (see :meth:`storage.Storage.create_avatar`).

    ``parent`` (an Avatar, its row id or its public id) must be one of the owner's visible avatars,
    else :class:`NotFound`. With ``job_id`` the
    insert is idempotent: if that job already produced an avatar, the existing row is returned (a job
    makes at most one avatar; the unique constraint on ``avatars.job_id`` settles races). The job must
    belong to the owner.
    """
    owner_id = _uid(owner)
    validate_key(blob_key)
    kind = AvatarKind(kind)
    if not _is_int(seed) or not 0 <= seed <= _INT64_MAX:
        raise ValueError(f"seed must be an int in [0, 2**63), got {seed!r}")
    for name, value in (("width", width), ("height", height), ("spec_version", spec_version)):
        if not _is_int(value) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(engine, str) or not 1 <= len(engine) <= 64:
        raise ValueError(f"invalid engine name {engine!r}")
    if not isinstance(prompt, str):
        raise TypeError("prompt must be a str")
    spec_dict = dict(spec or {})
    json.dumps(spec_dict)  # fail here, not deep inside the flush

    parent_id: int | None = None
    if parent is not None:
        if isinstance(parent, str):
            match = Avatar.public_id == parent if _valid_public_id(parent) else sa.false()
        else:
            match = Avatar.id == (parent.id if isinstance(parent, Avatar) else parent)
        parent_id = await session.scalar(sa.select(Avatar.id).where(match, _visible(owner_id)))
        if parent_id is None:
            raise NotFound("parent avatar not found")

    if job_id is not None:
        job_owner = await session.scalar(sa.select(Job.user_id).where(Job.id == job_id))
        if job_owner != owner_id:
            raise NotFound("job not found")
        existing = await _avatar_for_job(session, job_id)
        if existing is not None:
            log.info("job %d already has avatar %d; returning it", job_id, existing.id)
            return existing

    avatar = Avatar(
        owner_id=owner_id,
        guild_id=guild_id,
        parent_id=parent_id,
        job_id=job_id,
        kind=kind,
        prompt=prompt,
        spec=spec_dict,
        spec_version=spec_version,
        seed=seed,
        engine=engine,
        model=model,
        blob_key=blob_key,
        width=width,
        height=height,
    )
    try:
        async with session.begin_nested():
            session.add(avatar)
    except IntegrityError:
        if job_id is not None:
            existing = await _avatar_for_job(session, job_id)
            if existing is not None:
                log.info("job %d got its avatar from a concurrent writer; returning it", job_id)
                return existing
        raise
    log.debug("stored avatar %d for user %d (job %s)", avatar.id, owner_id, job_id)
    return avatar


async def _avatar_for_job(session: AsyncSession, job_id: int) -> Avatar | None:
    return (await session.scalars(sa.select(Avatar).where(Avatar.job_id == job_id))).one_or_none()


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of a user's avatars, newest first.

    The listing covers avatars with ``id <= snapshot``: pass ``snapshot`` back with the next page number
    so avatars made meanwhile do not shift the pages. Or page by ``next_cursor`` (keyset pagination).
    """

    items: tuple[Avatar, ...]
    total: int
    page_size: int
    snapshot: int
    page: int | None
    next_cursor: int | None

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


async def history(
    session: AsyncSession,
    owner: UserRef,
    *,
    page: int | None = None,
    cursor: int | None = None,
    page_size: int = 10,
    favourites_only: bool = False,
    snapshot: int | None = None,
) -> HistoryPage:
    """The owner's avatars, newest first, with the total count.

    Two ways to page, both stable under inserts:

    * ``page=N`` (1-based): the first call fixes ``snapshot`` (the newest id at that moment); pass the
      returned ``snapshot`` back for the following pages.
    * ``cursor=C``: the avatars older than ``next_cursor`` C of the previous page (keyset pagination).

    With neither, the first page is returned. ``favourites_only`` lists favourites only.
    """
    owner_id = _uid(owner)
    if not _is_int(page_size) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
    if page is not None and cursor is not None:
        raise ValueError("give page or cursor, not both")
    if page is not None and (not _is_int(page) or page < 1):
        raise ValueError("page must be >= 1")
    if cursor is not None and (not _is_int(cursor) or cursor < 0):
        raise ValueError("invalid cursor")
    if snapshot is not None and (not _is_int(snapshot) or snapshot < 0):
        raise ValueError("invalid snapshot")

    conditions: list[sa.ColumnElement[bool]] = [_visible(owner_id)]
    if favourites_only:
        conditions.append(Avatar.favourite.is_(True))
    if snapshot is None:
        snapshot = await session.scalar(sa.select(sa.func.max(Avatar.id)).where(*conditions)) or 0
    conditions.append(Avatar.id <= snapshot)

    total = await session.scalar(sa.select(sa.func.count()).select_from(Avatar).where(*conditions)) or 0
    stmt = sa.select(Avatar).where(*conditions).order_by(Avatar.id.desc())
    if cursor is not None:
        stmt = stmt.where(Avatar.id < cursor)
    elif page is not None:
        stmt = stmt.offset((page - 1) * page_size)
    else:
        page = 1
    rows = list((await session.scalars(stmt.limit(page_size + 1))).all())
    more = len(rows) > page_size
    items = rows[:page_size]
    return HistoryPage(
        items=tuple(items),
        total=total,
        page_size=page_size,
        snapshot=snapshot,
        page=page,
        next_cursor=items[-1].id if more and items else None,
    )


async def latest_avatar(session: AsyncSession, owner: UserRef) -> Avatar | None:
    """The owner's newest visible avatar, or None."""
    stmt = sa.select(Avatar).where(_visible(_uid(owner))).order_by(Avatar.id.desc()).limit(1)
    return (await session.scalars(stmt)).one_or_none()


async def lineage(session: AsyncSession, public_id: str, owner: UserRef) -> list[Avatar]:
    """The chain of avatars from the root ancestor down to ``public_id`` (inclusive), via ``parent_id``.

    Soft-deleted ancestors are walked through but not returned; the walk never leaves the owner's avatars.
    """
    owner_id = _uid(owner)
    target = await get_avatar(session, public_id, owner_id)
    anc = (
        sa.select(Avatar.id.label("id"), Avatar.parent_id.label("parent_id"), sa.literal(0).label("depth"))
        .where(Avatar.id == target.id)
        .cte("ancestors", recursive=True)
    )
    step = sa.select(Avatar.id, Avatar.parent_id, (anc.c.depth + 1)).where(
        Avatar.id == anc.c.parent_id, Avatar.owner_id == owner_id, anc.c.depth < MAX_LINEAGE_DEPTH
    )
    anc = anc.union_all(step)
    stmt = (
        sa.select(Avatar)
        .join(anc, Avatar.id == anc.c.id)
        .where(Avatar.deleted_at.is_(None))
        .order_by(anc.c.depth.desc())
    )
    return list((await session.scalars(stmt)).all())


async def children(session: AsyncSession, public_id: str, owner: UserRef) -> list[Avatar]:
    """The owner's visible avatars made directly from ``public_id`` (edits, variations), oldest first."""
    owner_id = _uid(owner)
    target = await get_avatar(session, public_id, owner_id)
    stmt = sa.select(Avatar).where(Avatar.parent_id == target.id, _visible(owner_id)).order_by(Avatar.id)
    return list((await session.scalars(stmt)).all())


async def set_favourite(
    session: AsyncSession, public_id: str, owner: UserRef, favourite: bool = True
) -> Avatar:
    avatar = await get_avatar(session, public_id, owner)
    avatar.favourite = bool(favourite)
    await session.flush()
    return avatar


async def soft_delete(session: AsyncSession, public_id: str, owner: UserRef) -> Avatar:
    """Hide the avatar from every listing and lookup. The row and blob stay until purged."""
    avatar = await get_avatar(session, public_id, owner)
    avatar.deleted_at = utcnow()
    await session.flush()
    return avatar


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_avatars(
    session: AsyncSession, owner: UserRef, text: str = "", *, limit: int = 25
) -> list[Avatar]:
    """Autocomplete helper: the owner's recent avatars whose public id starts with ``text`` or whose
    prompt contains it (case-insensitive). Empty ``text`` gives the most recent ones."""
    owner_id = _uid(owner)
    if not _is_int(limit) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}")
    stmt = sa.select(Avatar).where(_visible(owner_id))
    text = text.strip()[:200]
    if text:
        pattern = f"%{_escape_like(text.lower())}%"
        stmt = stmt.where(
            sa.or_(
                # substr keeps the public id match case-sensitive on both databases
                sa.func.substr(Avatar.public_id, 1, len(text)) == text,
                sa.func.lower(Avatar.prompt).like(pattern, escape="\\"),
            )
        )
    stmt = stmt.order_by(Avatar.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def blob_is_referenced(session: AsyncSession, blob_key: str) -> bool:
    """Whether any avatar row (soft-deleted included) points at ``blob_key``."""
    stmt = sa.select(Avatar.id).where(Avatar.blob_key == blob_key).limit(1)
    return (await session.scalar(stmt)) is not None


async def referenced_blob_keys(session: AsyncSession) -> set[str]:
    """Every blob key some avatar row points at."""
    return set((await session.scalars(sa.select(Avatar.blob_key).distinct())).all())


async def _delete(session: AsyncSession, stmt: sa.Delete) -> int:
    """Run a bulk DELETE and return how many rows it removed."""
    result = await session.execute(stmt.execution_options(synchronize_session=False))
    return cast("sa.CursorResult[Any]", result).rowcount


@dataclass(frozen=True, slots=True)
class ForgetCounts:
    users: int
    avatars: int
    jobs: int
    blob_keys: frozenset[str]


async def delete_user_rows(session: AsyncSession, user: UserRef) -> ForgetCounts:
    """Delete the user, their avatars and jobs; return the counts and the blob keys they used.

    The caller deletes the blobs no remaining row points at (see :meth:`storage.Storage.forget_user`).
    """
    user_id = _uid(user)
    keys = frozenset(
        (await session.scalars(sa.select(Avatar.blob_key).where(Avatar.owner_id == user_id))).all()
    )
    n_avatars = await _delete(session, sa.delete(Avatar).where(Avatar.owner_id == user_id))
    n_jobs = await _delete(session, sa.delete(Job).where(Job.user_id == user_id))
    n_users = await _delete(session, sa.delete(User).where(User.id == user_id))
    session.expunge_all()
    return ForgetCounts(users=n_users, avatars=n_avatars, jobs=n_jobs, blob_keys=keys)


async def purge_deleted_rows(session: AsyncSession, before: datetime) -> tuple[int, frozenset[str]]:
    """Hard-delete avatars soft-deleted before ``before``; return how many and the blob keys they used."""
    where = sa.and_(Avatar.deleted_at.is_not(None), Avatar.deleted_at < before)
    keys = frozenset((await session.scalars(sa.select(Avatar.blob_key).where(where))).all())
    count = await _delete(session, sa.delete(Avatar).where(where))
    return count, keys


# ------------------------------------------------------------------------------------------------
# Jobs
# ------------------------------------------------------------------------------------------------

#: Allowed job status changes. Terminal states (done, failed, cancelled) have no way out.
#: ``running -> queued`` exists only for recovery after a crash (:func:`requeue`).
TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}),
    JobStatus.DONE: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}

_SOURCES: Mapping[JobStatus, tuple[JobStatus, ...]] = {
    target: tuple(src for src, targets in TRANSITIONS.items() if target in targets) for target in JobStatus
}

_ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


async def create_job(
    session: AsyncSession,
    *,
    user: UserRef,
    kind: AvatarKind | str,
    request: Mapping[str, Any] | None = None,
    guild_id: int | None = None,
    channel_id: int | None = None,
    interaction_token: str | None = None,
    token_expires_at: datetime | None = None,
) -> Job:
    """A new job in status ``queued``. ``request`` (JSON) holds what the worker needs to redo it."""
    request_dict = dict(request or {})
    json.dumps(request_dict)
    job = Job(
        user_id=_uid(user),
        kind=AvatarKind(kind),
        status=JobStatus.QUEUED,
        request=request_dict,
        guild_id=guild_id,
        channel_id=channel_id,
        interaction_token=interaction_token,
        token_expires_at=token_expires_at,
    )
    session.add(job)
    await session.flush()
    log.debug("created job %d (%s) for user %d", job.id, job.kind, job.user_id)
    return job


async def get_job(session: AsyncSession, public_id: str, user: UserRef) -> Job:
    """The user's job with that public id; :class:`NotFound` if missing or someone else's."""
    if _valid_public_id(public_id):
        stmt = sa.select(Job).where(Job.public_id == public_id, Job.user_id == _uid(user))
        job = (await session.scalars(stmt)).one_or_none()
        if job is not None:
            return job
    raise NotFound("job not found")


async def get_job_by_id(session: AsyncSession, job_id: int) -> Job:
    """Internal lookup by row id (for the generation service); :class:`NotFound` if it is gone."""
    job = await session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFound("job not found")
    return job


async def transition(
    session: AsyncSession,
    job_id: int,
    target: JobStatus,
    *,
    extra_where: Sequence[sa.ColumnElement[bool]] = (),
    **values: Any,
) -> Job:
    """Move job ``job_id`` to ``target`` if :data:`TRANSITIONS` allows it from its current status.

    A single conditional ``UPDATE ... WHERE status IN (allowed sources)`` does the check and the change,
    so of two concurrent writers exactly one wins; the other gets :class:`InvalidTransition`.
    """
    target = JobStatus(target)
    now = utcnow()
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status.in_(_SOURCES[target]), *extra_where)
        .values(status=target, updated_at=now, **values)
        .returning(Job)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    job = (await session.scalars(stmt)).one_or_none()
    if job is not None:
        log.debug("job %d -> %s", job_id, target)
        return job
    current = await session.scalar(sa.select(Job.status).where(Job.id == job_id))
    if current is None:
        raise NotFound("job not found")
    if extra_where and current in _SOURCES[target]:
        # The status was fine, so an extra condition failed (the avatar of mark_done).
        raise NotFound("avatar not found")
    raise InvalidTransition(job_id, str(current), str(target))


async def mark_running(session: AsyncSession, job_id: int) -> Job:
    """queued -> running; sets ``started_at``."""
    return await transition(session, job_id, JobStatus.RUNNING, started_at=utcnow(), error=None)


async def mark_done(session: AsyncSession, job_id: int, avatar_id: int) -> Job:
    """running -> done with the avatar it made (which must belong to the job's user)."""
    owner_matches = Job.user_id == sa.select(Avatar.owner_id).where(Avatar.id == avatar_id).scalar_subquery()
    return await transition(
        session,
        job_id,
        JobStatus.DONE,
        extra_where=(owner_matches,),
        avatar_id=avatar_id,
        finished_at=utcnow(),
        error=None,
    )


async def mark_failed(session: AsyncSession, job_id: int, error: str) -> Job:
    """queued/running -> failed, with a short, user-safe error text."""
    return await transition(session, job_id, JobStatus.FAILED, error=str(error)[:2000], finished_at=utcnow())


async def mark_cancelled(session: AsyncSession, job_id: int) -> Job:
    """queued/running -> cancelled."""
    return await transition(session, job_id, JobStatus.CANCELLED, finished_at=utcnow())


async def cancel_job(session: AsyncSession, public_id: str, user: UserRef) -> Job:
    """The user cancels their own job (owner-checked :func:`mark_cancelled`)."""
    job = await get_job(session, public_id, user)
    return await mark_cancelled(session, job.id)


async def requeue(session: AsyncSession, job_id: int) -> Job:
    """running -> queued, for recovery after a crash; counts the attempt."""
    return await transition(session, job_id, JobStatus.QUEUED, attempts=Job.attempts + 1, started_at=None)


async def unfinished_jobs(session: AsyncSession) -> list[Job]:
    """Every queued or running job, oldest first: what to resume after a restart."""
    stmt = sa.select(Job).where(Job.status.in_(_ACTIVE)).order_by(Job.created_at, Job.id)
    return list((await session.scalars(stmt)).all())


async def active_jobs(session: AsyncSession, user: UserRef) -> list[Job]:
    """The user's queued and running jobs, oldest first."""
    stmt = sa.select(Job).where(Job.user_id == _uid(user), Job.status.in_(_ACTIVE)).order_by(Job.id)
    return list((await session.scalars(stmt)).all())


async def count_jobs_since(
    session: AsyncSession,
    user: UserRef,
    since: datetime,
    *,
    guild_id: int | None = None,
    statuses: Iterable[JobStatus] | None = None,
) -> int:
    """How many jobs the user created at or after ``since`` (optionally in one guild / with some statuses).

    For daily limits, e.g. ``statuses=(queued, running, done)`` to not count failures.
    """
    stmt = (
        sa.select(sa.func.count()).select_from(Job).where(Job.user_id == _uid(user), Job.created_at >= since)
    )
    if guild_id is not None:
        stmt = stmt.where(Job.guild_id == guild_id)
    if statuses is not None:
        stmt = stmt.where(Job.status.in_([JobStatus(s) for s in statuses]))
    return (await session.scalar(stmt)) or 0
