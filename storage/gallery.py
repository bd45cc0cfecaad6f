"""Owner-scoped reads for the web gallery: a filtered, paged listing and an avatar's whole family tree.

Like every repository module, each function takes an :class:`AsyncSession` (the caller owns the
transaction) and an owner; nothing here ever returns another user's row. Each listed avatar comes with its
parent's public id (one join), so an adapter can show "edited from ..." without a query per avatar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.avatars import MAX_LINEAGE_DEPTH, MAX_PAGE_SIZE, get_avatar, visible
from storage.models import Avatar
from storage.refs import UserRef, check_text, is_int, uid

__all__ = ["MAX_FAMILY", "FamilyMember", "GalleryPage", "GalleryRow", "family", "find_avatars"]

#: The most avatars one family tree lists (the root's line is always included).
MAX_FAMILY = 200
MAX_QUERY_CHARS = 200


@dataclass(frozen=True)
class GalleryRow:
    avatar: Avatar
    parent_public_id: str | None


@dataclass(frozen=True)
class GalleryPage:
    rows: tuple[GalleryRow, ...]
    total: int
    page: int
    page_size: int
    snapshot: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


@dataclass(frozen=True)
class FamilyMember:
    """One avatar of a family tree. ``deleted`` ones are returned so that the tree can be joined up
    around them; adapters show only the others."""

    avatar: Avatar
    parent_id: int | None
    deleted: bool


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _items_text(session: AsyncSession) -> sa.ColumnElement[str]:
    """The spec's ``items`` array as JSON text, e.g. ``["crown", "glasses"]`` (spacing differs by database)."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.cast(Avatar.spec.op("->")(sa.literal("items")), sa.Text)
    return sa.func.json_extract(Avatar.spec, "$.items")


async def find_avatars(
    session: AsyncSession,
    owner: UserRef,
    *,
    text: str | None = None,
    item_ids: Sequence[str] = (),
    favourites_only: bool = False,
    page: int = 1,
    page_size: int = 12,
    snapshot: int | None = None,
) -> GalleryPage:
    """The owner's avatars, newest first, paged like :func:`storage.avatars.history` (the first call fixes
    ``snapshot``; pass it back for the next pages). With ``text`` and/or ``item_ids``, only avatars whose
    prompt contains ``text`` (case-insensitive) or whose spec holds one of ``item_ids``."""
    owner_id = uid(owner)
    if not is_int(page_size) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
    if not is_int(page) or page < 1:
        raise ValueError("page must be >= 1")
    if snapshot is not None and (not is_int(snapshot) or snapshot < 0):
        raise ValueError("invalid snapshot")
    check_text("text", text)
    if text is not None and len(text) > MAX_QUERY_CHARS:
        raise ValueError(f"text must be at most {MAX_QUERY_CHARS} characters")
    for item in item_ids:
        if not item.replace("_", "").isalnum():
            raise ValueError(f"invalid item id {item!r}")

    conditions: list[sa.ColumnElement[bool]] = [visible(owner_id)]
    if favourites_only:
        conditions.append(Avatar.favourite.is_(True))
    matches: list[sa.ColumnElement[bool]] = []
    if text:
        matches.append(Avatar.prompt.ilike(f"%{_like_escape(text)}%", escape="\\"))
    items = _items_text(session)
    for item in item_ids:
        matches.append(items.like(f'%"{_like_escape(item)}"%', escape="\\"))
    if matches:
        conditions.append(sa.or_(*matches))
    if snapshot is None:
        snapshot = await session.scalar(sa.select(sa.func.max(Avatar.id)).where(*conditions)) or 0
    conditions.append(Avatar.id <= snapshot)

    total = await session.scalar(sa.select(sa.func.count()).select_from(Avatar).where(*conditions)) or 0
    parent = aliased(Avatar)
    stmt = (
        sa.select(Avatar, parent.public_id)
        .outerjoin(parent, parent.id == Avatar.parent_id)
        .where(*conditions)
        .order_by(Avatar.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    rows = tuple(GalleryRow(a, p) for a, p in (await session.execute(stmt)).all())
    return GalleryPage(rows=rows, total=total, page=page, page_size=page_size, snapshot=snapshot)


async def family(session: AsyncSession, public_id: str, owner: UserRef) -> list[FamilyMember]:
    """Every avatar in the tree of ``public_id``: its root ancestor and all the root's descendants, oldest
    first, soft-deleted ones flagged. :class:`~storage.errors.NotFound` when ``public_id`` is not the
    owner's visible avatar. At most :data:`MAX_FAMILY` members: the line from the root to ``public_id``
    always, then the others, oldest first."""
    owner_id = uid(owner)
    target = await get_avatar(session, public_id, owner_id)

    up = (
        sa.select(Avatar.id.label("id"), Avatar.parent_id.label("parent_id"), sa.literal(0).label("depth"))
        .where(Avatar.id == target.id)
        .cte("up", recursive=True)
    )
    up = up.union_all(
        sa.select(Avatar.id, Avatar.parent_id, up.c.depth + 1).where(
            Avatar.id == up.c.parent_id, Avatar.owner_id == owner_id, up.c.depth < MAX_LINEAGE_DEPTH
        )
    )
    line = list((await session.execute(sa.select(up.c.id).order_by(up.c.depth.desc()))).scalars())
    root_id = line[0]

    down = (
        sa.select(Avatar.id.label("id"), sa.literal(0).label("depth"))
        .where(Avatar.id == root_id)
        .cte("down", recursive=True)
    )
    down = down.union_all(
        sa.select(Avatar.id, down.c.depth + 1).where(
            Avatar.parent_id == down.c.id, Avatar.owner_id == owner_id, down.c.depth < MAX_LINEAGE_DEPTH
        )
    )
    room = max(0, MAX_FAMILY - len(line))
    others = sa.select(down.c.id).where(down.c.id.not_in(line)).order_by(down.c.id).limit(room)
    ids = set(line) | set((await session.execute(others)).scalars())
    found = (await session.scalars(sa.select(Avatar).where(Avatar.id.in_(ids)).order_by(Avatar.id))).all()
    return [FamilyMember(a, a.parent_id, a.deleted_at is not None) for a in found]
