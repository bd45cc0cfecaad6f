"""The gallery's reads: a user's avatars paged, filtered by favourites or by words of the prompt or an item,
and an avatar's family tree (its root, edits, variations and re-rolls).

Single-avatar reads and every write go through :class:`~bot.studio.Studio`; these two listings read
owner-scoped queries from :mod:`storage.gallery` and give back the studio's plain
:class:`~bot.studio.AvatarView`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.errors import BadInput, NotFoundError
from bot.studio import Actor, AvatarView, Studio, check_text
from generation.edits import resolve
from generation.spec import SpecError
from storage import NotFound, users
from storage import gallery as queries

PAGE_SIZE = 12
MAX_PAGE = 2**31 // PAGE_SIZE  # beyond any history; its row offset still fits every database's integers
MAX_QUERY = 100


@dataclass(frozen=True)
class GalleryView:
    items: list[AvatarView]
    page: int
    pages: int
    total: int
    snapshot: int
    query: str = ""
    favourites: bool = False


@dataclass
class TreeNode:
    avatar: AvatarView
    current: bool = False
    children: list[TreeNode] = field(default_factory=list)


def items_named(query: str) -> list[str]:
    """The catalog item a search names ("crown", "猫耳", "cat ears"), as ids; none when it names no item."""
    try:
        return [resolve("item", query).id]
    except SpecError:
        return []


class Gallery:
    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    async def _owner_id(self, actor: Actor) -> int | None:
        async with self.studio.storage.transaction() as s:
            user = await users.get_user(s, discord_id=actor.discord_id, console_name=actor.console_name)
        return None if user is None else user.id

    async def page(
        self,
        actor: Actor,
        *,
        page: int = 1,
        favourites: bool = False,
        query: str = "",
        snapshot: int | None = None,
        page_size: int = PAGE_SIZE,
    ) -> GalleryView:
        query = " ".join(query.split())
        check_text(query)
        if len(query) > MAX_QUERY:
            raise BadInput(f"the search is {len(query)} characters long.", f"Use at most {MAX_QUERY}.")
        if not 1 <= page <= MAX_PAGE:
            raise BadInput(f"page {page} does not exist.", "Pages start at 1.")
        if snapshot is not None and not 0 <= snapshot < 2**63:
            raise BadInput("that page link is broken.", "Start again from the first page.")
        owner = await self._owner_id(actor)
        if owner is None:
            return GalleryView([], 1, 1, 0, 0, query, favourites)
        async with self.studio.storage.transaction() as s:
            found = await queries.find_avatars(
                s,
                owner,
                text=query or None,
                item_ids=items_named(query) if query else (),
                favourites_only=favourites,
                page=page,
                page_size=page_size,
                snapshot=snapshot,
            )
        if page > found.pages and found.total:
            raise BadInput(f"page {page} does not exist.", f"There are {found.pages} pages.")
        items = [
            AvatarView.from_row(r.avatar, parent=r.parent_public_id, owner=actor.key) for r in found.rows
        ]
        return GalleryView(items, page, found.pages, found.total, found.snapshot, query, favourites)

    async def tree(self, actor: Actor, avatar_id: str) -> list[TreeNode]:
        """The family tree of ``avatar_id`` from its root; deleted avatars are left out and their children
        hang under the nearest ancestor that is still there (several roots when the root was deleted)."""
        owner = await self._owner_id(actor)
        if owner is None:
            raise NotFoundError("no such avatar.")
        try:
            async with self.studio.storage.transaction() as s:
                members = await queries.family(s, avatar_id, owner)
        except NotFound:
            raise NotFoundError("no such avatar.") from None
        by_id = {m.avatar.id: m for m in members}

        def shown_parent(row_id: int | None) -> int | None:
            seen = 0
            while row_id is not None and row_id in by_id and by_id[row_id].deleted and seen < len(by_id):
                row_id, seen = by_id[row_id].parent_id, seen + 1
            return row_id if row_id in by_id and not by_id[row_id].deleted else None

        nodes: dict[int, TreeNode] = {}
        for m in members:
            if m.deleted:
                continue
            parent = shown_parent(m.parent_id)
            parent_public = by_id[parent].avatar.public_id if parent is not None else None
            nodes[m.avatar.id] = TreeNode(
                AvatarView.from_row(m.avatar, parent=parent_public, owner=actor.key),
                current=m.avatar.public_id == avatar_id,
            )
        roots: list[TreeNode] = []
        for m in members:
            if m.avatar.id not in nodes:
                continue
            parent = shown_parent(m.parent_id)
            (nodes[parent].children if parent in nodes else roots).append(nodes[m.avatar.id])
        return roots


def tree_size(nodes: list[TreeNode]) -> int:
    return sum(1 + tree_size(n.children) for n in nodes)
