"""The avatars repository: look up, list, insert and soft-delete avatars, and the blob references.

Every function takes an :class:`AsyncSession`; the caller owns the transaction
(``async with storage.transaction() as s:``), so several calls can share one unit of work.

Owner checks: every function that takes an avatar *public id* also takes its owner, and a row that
exists but belongs to someone else raises the same :class:`~storage.errors.NotFound` as a row that does
not exist. Soft-deleted avatars are not found either. Owners are passed as ``User | int``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Required, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.blobs import validate_key
from storage.errors import NotFound
from storage.models import Avatar, AvatarKind, Job, new_public_id, utcnow
from storage.refs import INT64_MAX, UserRef, check_json_text, check_text, is_int, uid, valid_public_id

__all__ = [
    "MAX_LINEAGE_DEPTH",
    "MAX_PAGE_SIZE",
    "HistoryPage",
    "avatar_values",
    "blob_is_referenced",
    "build_avatar",
    "get_avatar",
    "get_avatar_by_id",
    "history",
    "insert_avatar",
    "latest_avatar",
    "lineage",
    "parent_id_of",
    "referenced_blob_keys",
    "set_favourite",
    "soft_delete",
    "visible",
]

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
MAX_LINEAGE_DEPTH = 1000


def visible(owner_id: int) -> sa.ColumnElement[bool]:
    """The owner's avatars that are not soft-deleted."""
    return sa.and_(Avatar.owner_id == owner_id, Avatar.deleted_at.is_(None))


async def get_avatar(session: AsyncSession, public_id: str, owner: UserRef) -> Avatar:
    """The owner's avatar with that public id; :class:`NotFound` if missing, deleted or someone else's."""
    owner_id = uid(owner)
    if valid_public_id(public_id):
        stmt = sa.select(Avatar).where(Avatar.public_id == public_id, visible(owner_id))
        avatar = (await session.scalars(stmt)).one_or_none()
        if avatar is not None:
            return avatar
    raise NotFound("avatar not found")


async def get_avatar_by_id(session: AsyncSession, avatar_id: int) -> Avatar | None:
    """Internal lookup by row id, with no owner check (for the service layer, never for user input)."""
    return await session.get(Avatar, avatar_id)


class NewAvatar(TypedDict, total=False):
    """The fields of a new avatar row, as :func:`build_avatar` and :func:`avatar_values` take them."""

    owner: Required[UserRef]
    blob_key: Required[str]
    kind: Required[AvatarKind | str]
    seed: Required[int]
    engine: Required[str]
    width: Required[int]
    height: Required[int]
    spec: Mapping[str, Any] | None
    spec_version: int
    prompt: str
    model: str | None
    parent_id: int | None
    guild_id: int | None
    job_id: int | None


def build_avatar(**fields: Unpack[NewAvatar]) -> Avatar:
    """A checked, not yet added avatar row (no SQL): what :func:`insert_avatar` inserts, and what
    :meth:`storage.Storage.finish_jobs` inserts for many jobs at once. Text with a NUL byte or that is not
    valid UTF-8 (prompt, engine, model, spec) raises ValueError, a bad number or key ValueError too."""
    return Avatar(**_checked(**fields))


def avatar_values(**fields: Unpack[NewAvatar]) -> dict[str, Any]:
    """:func:`build_avatar` as the column values of a Core INSERT (the job store's hot path: no ORM
    object), defaults filled in; every row has the same keys, so many go into one statement."""
    values = _checked(**fields)
    values.update(public_id=new_public_id(), created_at=utcnow(), favourite=False)
    return values


def _checked(
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
    parent_id: int | None = None,
    guild_id: int | None = None,
    job_id: int | None = None,
) -> dict[str, Any]:
    owner_id = uid(owner)
    validate_key(blob_key)
    kind = AvatarKind(kind)
    if not is_int(seed) or not 0 <= seed <= INT64_MAX:
        raise ValueError(f"seed must be an int in [0, 2**63), got {seed!r}")
    for name, value in (("width", width), ("height", height), ("spec_version", spec_version)):
        if not is_int(value) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(engine, str) or not 1 <= len(engine) <= 64:
        raise ValueError(f"invalid engine name {engine!r}")
    if not isinstance(prompt, str):
        raise TypeError("prompt must be a str")
    if model is not None and not isinstance(model, str):
        raise TypeError("model must be a str or None")
    spec_dict = dict(spec or {})
    json.dumps(spec_dict)  # fail here, not deep inside the flush
    for name, text in (("prompt", prompt), ("engine", engine), ("model", model)):
        check_text(name, text)
    check_json_text("spec", spec_dict)
    return {
        "owner_id": owner_id,
        "guild_id": guild_id,
        "parent_id": parent_id,
        "job_id": job_id,
        "kind": kind,
        "prompt": prompt,
        "spec": spec_dict,
        "spec_version": spec_version,
        "seed": seed,
        "engine": engine,
        "model": model,
        "blob_key": blob_key,
        "width": width,
        "height": height,
    }


async def parent_id_of(session: AsyncSession, parent: Avatar | int | str, owner_id: int) -> int:
    """The row id of ``parent`` (an Avatar, its row id or its public id), which must be one of the
    owner's visible avatars, else :class:`NotFound`."""
    if isinstance(parent, str):
        match = Avatar.public_id == parent if valid_public_id(parent) else sa.false()
    else:
        match = Avatar.id == (parent.id if isinstance(parent, Avatar) else parent)
    parent_id = await session.scalar(sa.select(Avatar.id).where(match, visible(owner_id)))
    if parent_id is None:
        raise NotFound("parent avatar not found")
    return int(parent_id)


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
    """Insert an avatar row for an already stored blob (see :meth:`storage.Storage.finish_job`).

    ``parent`` (an Avatar, its row id or its public id) must be one of the owner's visible avatars,
    else :class:`NotFound`. With ``job_id`` the insert is idempotent: if that job already produced an
    avatar, the existing row is returned (a job makes at most one avatar; the unique constraint on
    ``avatars.job_id`` settles races). The job must belong to the owner. Text with a NUL byte or that is
    not valid UTF-8 (prompt, engine, model, spec) raises ValueError before any SQL runs.
    """
    owner_id = uid(owner)
    avatar = build_avatar(
        owner=owner_id,
        blob_key=blob_key,
        kind=kind,
        seed=seed,
        engine=engine,
        width=width,
        height=height,
        spec=spec,
        spec_version=spec_version,
        prompt=prompt,
        model=model,
        guild_id=guild_id,
        job_id=job_id,
    )
    if parent is not None:
        avatar.parent_id = await parent_id_of(session, parent, owner_id)

    if job_id is not None:
        job_owner = await session.scalar(sa.select(Job.user_id).where(Job.id == job_id))
        if job_owner != owner_id:
            raise NotFound("job not found")
        existing = await _avatar_for_job(session, job_id)
        if existing is not None:
            log.info("job %d already has avatar %d; returning it", job_id, existing.id)
            return existing

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
    owner_id = uid(owner)
    if not is_int(page_size) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
    if page is not None and cursor is not None:
        raise ValueError("give page or cursor, not both")
    if page is not None and (not is_int(page) or page < 1):
        raise ValueError("page must be >= 1")
    if cursor is not None and (not is_int(cursor) or cursor < 0):
        raise ValueError("invalid cursor")
    if snapshot is not None and (not is_int(snapshot) or snapshot < 0):
        raise ValueError("invalid snapshot")

    conditions: list[sa.ColumnElement[bool]] = [visible(owner_id)]
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
    stmt = sa.select(Avatar).where(visible(uid(owner))).order_by(Avatar.id.desc()).limit(1)
    return (await session.scalars(stmt)).one_or_none()


async def lineage(session: AsyncSession, public_id: str, owner: UserRef) -> list[Avatar]:
    """The chain of avatars from the root ancestor down to ``public_id`` (inclusive), via ``parent_id``.

    Soft-deleted ancestors are walked through but not returned; the walk never leaves the owner's avatars.
    """
    owner_id = uid(owner)
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


async def blob_is_referenced(session: AsyncSession, blob_key: str) -> bool:
    """Whether any avatar row (soft-deleted included) points at ``blob_key``."""
    stmt = sa.select(Avatar.id).where(Avatar.blob_key == blob_key).limit(1)
    return (await session.scalar(stmt)) is not None


async def referenced_blob_keys(session: AsyncSession) -> set[str]:
    """Every blob key some avatar row points at."""
    return set((await session.scalars(sa.select(Avatar.blob_key).distinct())).all())
