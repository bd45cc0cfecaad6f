"""storage.gallery on SQLite and PostgreSQL: the web gallery's filtered listing and family trees, owner-scoped."""

from __future__ import annotations

import pytest

from storage import NotFound, Storage, User, avatars
from storage import gallery as g

from .helpers import make_avatar, tx


async def test_listing_is_newest_first_with_parents_and_stable_pages(storage: Storage, alice: User) -> None:
    root = await make_avatar(storage, alice, 1, prompt="pink hair")
    child = await make_avatar(storage, alice, 2, prompt="pink hair | edit: crown", parent=root, kind="edit")
    await make_avatar(storage, alice, 3, prompt="blue hair")
    first = await tx(storage, g.find_avatars, alice, page=1, page_size=2)
    assert first.total == 3 and first.pages == 2
    assert [r.avatar.prompt for r in first.rows] == ["blue hair", "pink hair | edit: crown"]
    assert first.rows[1].parent_public_id == root.public_id and first.rows[0].parent_public_id is None
    await make_avatar(storage, alice, 4, prompt="new since page one")
    second = await tx(storage, g.find_avatars, alice, page=2, page_size=2, snapshot=first.snapshot)
    assert [r.avatar.public_id for r in second.rows] == [root.public_id]  # the new one does not shift pages
    assert child.public_id in [r.avatar.public_id for r in first.rows]


async def test_search_by_prompt_words_or_by_item_and_favourites(
    storage: Storage, alice: User, bob: User
) -> None:
    crowned = await make_avatar(storage, alice, 1, prompt="silver hair", spec={"items": ["crown"]})
    await make_avatar(storage, alice, 2, prompt="Crown Princess", spec={"items": []})
    await make_avatar(storage, alice, 3, prompt="bow tie", spec={"items": ["bow_tie"]})
    await make_avatar(storage, alice, 4, prompt="100%_sure", spec={"items": []})
    await make_avatar(storage, bob, 5, prompt="bob's crown", spec={"items": ["crown"]})

    by_item = await tx(storage, g.find_avatars, alice, item_ids=["crown"])
    assert [r.avatar.public_id for r in by_item.rows] == [crowned.public_id]
    both = await tx(storage, g.find_avatars, alice, text="crown", item_ids=["crown"])
    assert sorted(r.avatar.prompt for r in both.rows) == ["Crown Princess", "silver hair"]  # case-insensitive
    bow = await tx(storage, g.find_avatars, alice, item_ids=["bow"])
    assert bow.total == 0  # "bow" is not "bow_tie"
    literal = await tx(storage, g.find_avatars, alice, text="0%_")
    assert [r.avatar.prompt for r in literal.rows] == ["100%_sure"]  # % and _ are plain characters
    assert (await tx(storage, g.find_avatars, alice, text="%")).total == 1

    await tx(storage, avatars.set_favourite, crowned.public_id, alice, True)
    favs = await tx(storage, g.find_avatars, alice, favourites_only=True)
    assert [r.avatar.public_id for r in favs.rows] == [crowned.public_id]


async def test_family_is_the_whole_tree_and_only_the_owners(storage: Storage, alice: User, bob: User) -> None:
    root = await make_avatar(storage, alice, 1)
    edit = await make_avatar(storage, alice, 2, parent=root, kind="edit")
    grandchild = await make_avatar(storage, alice, 3, parent=edit, kind="edit")
    variation = await make_avatar(storage, alice, 4, parent=root, kind="variation")
    await make_avatar(storage, alice, 5)  # another tree
    for start in (root, grandchild, variation):
        members = await tx(storage, g.family, start.public_id, alice)
        ids = [m.avatar.public_id for m in members]
        assert ids == [root.public_id, edit.public_id, grandchild.public_id, variation.public_id]
    await tx(storage, avatars.soft_delete, edit.public_id, alice)
    members = {m.avatar.public_id: m for m in await tx(storage, g.family, grandchild.public_id, alice)}
    assert members[edit.public_id].deleted and members[grandchild.public_id].parent_id == edit.id
    with pytest.raises(NotFound):
        await tx(storage, g.family, root.public_id, bob)
    with pytest.raises(NotFound):
        await tx(storage, g.family, edit.public_id, alice)  # deleted: not found


async def test_bad_arguments_fail_before_any_sql(storage: Storage, alice: User) -> None:
    for kwargs in (
        {"page": 0},
        {"page_size": 0},
        {"text": "x" * 201},
        {"text": "a\x00"},
        {"item_ids": ["a%"]},
    ):
        with pytest.raises(ValueError):
            await tx(storage, g.find_avatars, alice, **kwargs)
