"""Avatars: storing, owner checks, history paging, lineage, favourites, soft delete, text checks."""

from __future__ import annotations

import re
from datetime import UTC

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage import Avatar, AvatarKind, NotFound, Storage, User, avatars, jobs
from storage.blobs import blob_key_for

from .helpers import image, make_avatar, make_job, tx


async def test_create_and_get_avatar(storage: Storage, alice: User) -> None:
    avatar = await make_avatar(storage, alice, 1, model="chibi-v1", guild_id=555, spec_version=2)
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", avatar.public_id)
    assert avatar.kind is AvatarKind.PROMPT
    assert avatar.blob_key == blob_key_for(image(1))
    assert avatar.created_at.tzinfo is UTC and avatar.deleted_at is None
    assert not avatar.favourite

    got = await tx(storage, avatars.get_avatar, avatar.public_id, alice)
    assert got.id == avatar.id
    assert got.spec == {"hair": "bob", "n": 1} and got.spec_version == 2
    assert (got.seed, got.engine, got.model, got.guild_id) == (1001, "chibi", "chibi-v1", 555)
    assert (got.width, got.height, got.prompt) == (512, 512, "cat ears number 1")
    assert await storage.read_image(got) == image(1)
    path = await storage.image_path(got)
    assert path is not None and path.read_bytes() == image(1)


async def test_seeds_use_the_full_signed_64_bit_range(storage: Storage, alice: User) -> None:
    avatar = await make_avatar(storage, alice, 1, seed=2**63 - 1)
    assert (await tx(storage, avatars.get_avatar, avatar.public_id, alice)).seed == 2**63 - 1


@pytest.mark.parametrize(
    "override",
    [
        {"seed": -1},
        {"seed": 2**63},
        {"width": 0},
        {"height": -3},
        {"kind": "photoshop"},
        {"engine": ""},
        {"spec": {"x": object()}},
    ],
)
async def test_invalid_avatar_fields_store_nothing(
    storage: Storage, alice: User, override: dict[str, object]
) -> None:
    with pytest.raises((ValueError, TypeError)):
        await make_avatar(storage, alice, 3, **override)
    assert (await tx(storage, avatars.history, alice)).total == 0
    assert list(storage.blobs.keys()) == []


async def test_public_ids_are_unique(storage: Storage, alice: User) -> None:
    avatars = [await make_avatar(storage, alice, n) for n in range(20)]
    assert len({a.public_id for a in avatars}) == 20


async def test_owner_checks(storage: Storage, alice: User, bob: User) -> None:
    """Bob can neither read nor change Alice's avatars, and cannot tell them from missing ones."""
    mine = await make_avatar(storage, alice, 1)
    child = await make_avatar(storage, alice, 2, kind="edit", parent=mine)
    errors: list[str] = []
    for call in (
        lambda: tx(storage, avatars.get_avatar, mine.public_id, bob),
        lambda: tx(storage, avatars.set_favourite, mine.public_id, bob),
        lambda: tx(storage, avatars.soft_delete, mine.public_id, bob),
        lambda: tx(storage, avatars.lineage, child.public_id, bob),
        lambda: tx(storage, avatars.get_avatar, "doesnotexist0000", bob),
        lambda: tx(
            storage,
            avatars.get_avatar,
            mine.public_id[:-1] + ("A" if mine.public_id[-1] != "A" else "B"),
            alice,
        ),
        lambda: tx(storage, avatars.get_avatar, "", alice),
        lambda: tx(storage, avatars.get_avatar, "x" * 5000, alice),
        lambda: tx(storage, avatars.get_avatar, str(mine.id), alice),  # the row id is not a public id
    ):
        with pytest.raises(NotFound) as info:
            await call()
        errors.append(str(info.value))
    assert set(errors) == {"avatar not found"}

    # Bob cannot base his own avatar on Alice's either (by object, row id or public id).
    for parent in (mine, mine.id, mine.public_id):
        with pytest.raises(NotFound):
            await make_avatar(storage, bob, 9, kind="edit", parent=parent)

    # Nothing of Alice's shows up in Bob's listings.
    assert (await tx(storage, avatars.history, bob)).total == 0
    assert await tx(storage, avatars.latest_avatar, bob) is None

    # And Alice's avatar is untouched.
    still = await tx(storage, avatars.get_avatar, mine.public_id, alice)
    assert still.deleted_at is None and not still.favourite


async def test_history_pages_newest_first_and_stable_under_inserts(
    storage: Storage, alice: User, bob: User
) -> None:
    made = [await make_avatar(storage, alice, n) for n in range(25)]
    await make_avatar(storage, bob, 100)
    newest_first = [a.public_id for a in reversed(made)]

    first = await tx(storage, avatars.history, alice, page=1, page_size=10)
    assert [a.public_id for a in first.items] == newest_first[:10]
    assert (first.total, first.pages, first.page) == (25, 3, 1)

    # New avatars arrive while the user is paging: page 2 of the same snapshot does not shift.
    await make_avatar(storage, alice, 200)
    await make_avatar(storage, alice, 201)
    second = await tx(storage, avatars.history, alice, page=2, page_size=10, snapshot=first.snapshot)
    assert [a.public_id for a in second.items] == newest_first[10:20]
    third = await tx(storage, avatars.history, alice, page=3, page_size=10, snapshot=first.snapshot)
    assert [a.public_id for a in third.items] == newest_first[20:]
    assert third.total == 25 and third.next_cursor is None
    beyond = await tx(storage, avatars.history, alice, page=4, page_size=10, snapshot=first.snapshot)
    assert beyond.items == ()

    # A fresh listing sees the new ones.
    fresh = await tx(storage, avatars.history, alice, page_size=10)
    assert fresh.total == 27 and fresh.items[0].prompt == "cat ears number 201"


async def test_history_keyset_cursor(storage: Storage, alice: User) -> None:
    made = [await make_avatar(storage, alice, n) for n in range(7)]
    seen: list[str] = []
    page = await tx(storage, avatars.history, alice, page_size=3)
    while True:
        seen.extend(a.public_id for a in page.items)
        assert page.total == 7
        if page.next_cursor is None:
            break
        await make_avatar(storage, alice, 100 + len(seen))  # inserts never duplicate or skip items
        page = await tx(
            storage, avatars.history, alice, cursor=page.next_cursor, page_size=3, snapshot=page.snapshot
        )
    assert seen == [a.public_id for a in reversed(made)]
    # Without the snapshot the cursor still neither skips nor repeats; only the total moves on.
    page = await tx(storage, avatars.history, alice, page_size=4)
    rest = await tx(storage, avatars.history, alice, cursor=page.next_cursor, page_size=4)
    assert rest.total == 7 + 2
    assert [a.id for a in page.items + tuple(rest.items)] == sorted(
        (a.id for a in page.items + tuple(rest.items)), reverse=True
    )


async def test_history_favourites_and_deleted(storage: Storage, alice: User) -> None:
    made = [await make_avatar(storage, alice, n) for n in range(6)]
    await tx(storage, avatars.set_favourite, made[1].public_id, alice)
    await tx(storage, avatars.set_favourite, made[4].public_id, alice)
    await tx(storage, avatars.set_favourite, made[3].public_id, alice)
    await tx(storage, avatars.set_favourite, made[3].public_id, alice, False)
    await tx(storage, avatars.soft_delete, made[2].public_id, alice)

    favs = await tx(storage, avatars.history, alice, favourites_only=True)
    assert [a.public_id for a in favs.items] == [made[4].public_id, made[1].public_id]
    assert favs.total == 2 and all(a.favourite for a in favs.items)
    everything = await tx(storage, avatars.history, alice)
    assert everything.total == 5
    assert made[2].public_id not in {a.public_id for a in everything.items}


async def test_history_argument_checks(storage: Storage, alice: User) -> None:
    for kwargs in (
        {"page": 0},
        {"page_size": 0},
        {"page_size": 1000},
        {"page": 1, "cursor": 5},
        {"cursor": -1},
    ):
        with pytest.raises(ValueError):
            await tx(storage, avatars.history, alice, **kwargs)  # type: ignore[arg-type]
    empty = await tx(storage, avatars.history, alice)
    assert (empty.items, empty.total, empty.pages, empty.next_cursor) == ((), 0, 1, None)


async def test_soft_deleted_avatars_are_not_found(storage: Storage, alice: User) -> None:
    avatar = await make_avatar(storage, alice, 1)
    deleted = await tx(storage, avatars.soft_delete, avatar.public_id, alice)
    assert deleted.deleted_at is not None and deleted.deleted_at.tzinfo is UTC
    for call in (
        tx(storage, avatars.get_avatar, avatar.public_id, alice),
        tx(storage, avatars.set_favourite, avatar.public_id, alice),
        tx(storage, avatars.soft_delete, avatar.public_id, alice),
        tx(storage, avatars.lineage, avatar.public_id, alice),
    ):
        with pytest.raises(NotFound):
            await call
    assert await tx(storage, avatars.latest_avatar, alice) is None
    # The blob stays with the row (forget_user removes both).
    assert storage.blobs.exists(avatar.blob_key)


async def test_lineage(storage: Storage, alice: User) -> None:
    root = await make_avatar(storage, alice, 1)
    edit = await make_avatar(storage, alice, 2, kind="edit", parent=root)
    variation = await make_avatar(storage, alice, 3, kind="variation", parent=edit.public_id)
    sibling = await make_avatar(storage, alice, 4, kind="reroll", parent=root.id)
    assert edit.parent_id == root.id and variation.parent_id == edit.id

    chain = await tx(storage, avatars.lineage, variation.public_id, alice)
    assert [a.public_id for a in chain] == [root.public_id, edit.public_id, variation.public_id]
    assert [a.public_id for a in await tx(storage, avatars.lineage, root.public_id, alice)] == [
        root.public_id
    ]
    assert [a.public_id for a in await tx(storage, avatars.lineage, sibling.public_id, alice)] == [
        root.public_id,
        sibling.public_id,
    ]

    # A deleted middle link is skipped, not a dead end.
    await tx(storage, avatars.soft_delete, edit.public_id, alice)
    chain = await tx(storage, avatars.lineage, variation.public_id, alice)
    assert [a.public_id for a in chain] == [root.public_id, variation.public_id]


async def test_parent_must_be_visible(storage: Storage, alice: User) -> None:
    root = await make_avatar(storage, alice, 1)
    await tx(storage, avatars.soft_delete, root.public_id, alice)
    with pytest.raises(NotFound):
        await make_avatar(storage, alice, 2, kind="edit", parent=root)
    with pytest.raises(NotFound):
        await make_avatar(storage, alice, 2, kind="edit", parent="no-such-avatar")
    # The blob written before the row was refused is gone again.
    assert set(storage.blobs.keys()) == {root.blob_key}


async def test_latest_avatar(storage: Storage, alice: User) -> None:
    assert await tx(storage, avatars.latest_avatar, alice) is None
    await make_avatar(storage, alice, 1)
    second = await make_avatar(storage, alice, 2)
    latest = await tx(storage, avatars.latest_avatar, alice)
    assert latest is not None and latest.public_id == second.public_id


async def test_insert_avatar_for_a_job_is_idempotent_and_owner_checked(
    storage: Storage, alice: User, bob: User
) -> None:
    job = await make_job(storage, alice)
    key = storage.blobs.put(image(1))
    fields = {"blob_key": key, "kind": "prompt", "seed": 1, "engine": "chibi", "width": 1, "height": 1}
    async with storage.transaction() as s:
        first = await avatars.insert_avatar(s, owner=alice, job_id=job.id, **fields)  # type: ignore[arg-type]
    async with storage.transaction() as s:
        retry = await avatars.insert_avatar(s, owner=alice, job_id=job.id, **fields)  # type: ignore[arg-type]
    assert retry.id == first.id
    # Somebody else's job cannot be attached.
    with pytest.raises(NotFound):
        async with storage.transaction() as s:
            await avatars.insert_avatar(s, owner=bob, job_id=job.id, **fields)  # type: ignore[arg-type]
    assert (await tx(storage, avatars.history, alice)).total == 1 and (
        await tx(storage, avatars.history, bob)
    ).total == 0


async def test_database_allows_one_avatar_per_job(storage: Storage, alice: User) -> None:
    first = await make_avatar(storage, alice, 1)
    with pytest.raises(IntegrityError):
        async with storage.transaction() as s:
            s.add(
                Avatar(
                    owner_id=alice.id,
                    job_id=first.job_id,
                    kind=AvatarKind.PROMPT,
                    seed=1,
                    engine="chibi",
                    blob_key=first.blob_key,
                    width=1,
                    height=1,
                )
            )


async def test_kind_check_constraint(storage: Storage, alice: User) -> None:
    avatar = await make_avatar(storage, alice, 1)
    with pytest.raises(IntegrityError):
        async with storage.transaction() as s:
            await s.execute(sa.text("UPDATE avatars SET kind = 'nonsense' WHERE id = :id"), {"id": avatar.id})


_RESULT: dict[str, object] = {"seed": 1, "engine": "chibi", "width": 1, "height": 1}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompt", "cat\x00ears"),
        ("prompt", "bad \ud800 surrogate"),
        ("engine", "chi\x00bi"),
        ("model", "m\x00"),
        ("spec", {"hair": "bo\x00b"}),
        ("spec", {"ke\x00y": 1}),
        ("spec", {"items": [["ok", "no\x00"]]}),
    ],
)
async def test_nul_bytes_and_invalid_utf8_are_refused_before_sql(
    storage: Storage, alice: User, field: str, value: object
) -> None:
    """PostgreSQL refuses NUL in text and SQLite would keep it: both refuse it the same way, up front."""
    job = await make_job(storage, alice)
    await tx(storage, jobs.mark_running, job.id)
    with pytest.raises(ValueError, match=r"NUL byte|not valid UTF-8"):
        await storage.finish_job(job.id, image(1), **{**_RESULT, field: value})  # type: ignore[arg-type]
    assert list(storage.blobs.keys()) == []  # refused before the blob was written
    key = storage.blobs.put(image(2))
    fields: dict[str, object] = {"blob_key": key, "kind": "prompt", "seed": 1, "engine": "chibi", "width": 1}
    fields[field] = value
    with pytest.raises(ValueError, match=r"NUL byte|not valid UTF-8"):
        async with storage.transaction() as s:
            await avatars.insert_avatar(s, owner=alice, height=1, **fields)  # type: ignore[arg-type]
    assert (await tx(storage, avatars.history, alice)).total == 0
    assert (await tx(storage, jobs.get_job_by_id, job.id)).status == "running"
