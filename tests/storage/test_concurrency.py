"""Many tasks at once (and two Storage objects on one database, like the bot and the CLI) lose nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import Avatar, Storage, User, avatars, guilds, jobs, users
from storage.blobs import blob_key_for

from .helpers import image, make_avatar, make_job, tx

N = 60


@pytest.fixture
async def second(db_url: str, tmp_path: Path, storage: Storage) -> AsyncIterator[Storage]:
    """Another Storage on the same database and data dir (a second process would look like this)."""
    st = await Storage.open(db_url, tmp_path / "data")
    try:
        yield st
    finally:
        await st.close()


async def test_concurrent_get_or_create_same_user(storage: Storage, second: Storage) -> None:
    stores = (storage, second)
    rows = await asyncio.gather(
        *(tx(stores[i % 2], users.get_or_create_user, discord_id=4242) for i in range(N)),
        *(tx(stores[i % 2], users.get_or_create_user, console_name="shared") for i in range(N)),
    )
    assert len({u.id for u in rows[:N]}) == 1
    assert len({u.id for u in rows[N:]}) == 1
    async with storage.transaction() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(User)) == 2


async def test_concurrent_guild_creation(storage: Storage, second: Storage) -> None:
    stores = (storage, second)
    rows = await asyncio.gather(*(tx(stores[i % 2], guilds.get_or_create_guild, 31337) for i in range(N)))
    assert {g.id for g in rows} == {31337}


async def test_concurrent_users_and_avatars_lose_nothing(storage: Storage, second: Storage) -> None:
    stores = (storage, second)

    async def one(i: int) -> Avatar:
        st = stores[i % 2]
        user = await tx(st, users.get_or_create_user, discord_id=1000 + i % 7)
        return await make_avatar(st, user, i)

    made = await asyncio.gather(*(one(i) for i in range(N)))
    assert len({a.id for a in made}) == N
    assert len({a.public_id for a in made}) == N
    total = 0
    for owner in {a.owner_id for a in made}:
        page = await tx(storage, avatars.history, owner, page_size=100)
        total += page.total
        assert {a.public_id for a in page.items} == {a.public_id for a in made if a.owner_id == owner}
    assert total == N
    for a in made:
        assert await storage.read_image(a) == image(int(a.prompt.rsplit(" ", 1)[1]))


async def test_concurrent_retries_of_one_job_make_one_avatar(storage: Storage, second: Storage) -> None:
    stores = (storage, second)
    user = await tx(storage, users.get_or_create_user, discord_id=77)
    job = await make_job(storage, user)
    await tx(storage, jobs.mark_running, job.id)
    results = await asyncio.gather(
        *(
            stores[i % 2].finish_job(job.id, image(i % 3), seed=1, engine="chibi", width=1, height=1)
            for i in range(N)
        )
    )
    made = [avatar for avatar, _ in results]
    assert len({a.id for a in made}) == 1
    assert {done.status for _, done in results} == {"done"}
    assert (await tx(storage, avatars.history, user)).total == 1
    # The losing attempts' different images were cleaned up; only the winner's blob is left.
    assert set(storage.blobs.keys()) == {made[0].blob_key}


async def test_forget_racing_creates_of_the_same_image(storage: Storage) -> None:
    """Alice is forgotten while Bob stores byte-identical images: Bob's blob must survive."""
    alice = await tx(storage, users.get_or_create_user, discord_id=1)
    bob = await tx(storage, users.get_or_create_user, discord_id=2)
    await make_avatar(storage, alice, 5)
    results = await asyncio.gather(
        storage.forget_user(alice), *(make_avatar(storage, bob, 5) for _ in range(N))
    )
    bobs = results[1:]
    assert all(isinstance(a, Avatar) for a in bobs)
    assert storage.blobs.exists(blob_key_for(image(5)))
    assert (await tx(storage, avatars.history, bob, page_size=100)).total == N


async def test_gc_racing_creates(storage: Storage) -> None:
    """Even with no grace period, gc never removes a blob whose row is being written."""
    user = await tx(storage, users.get_or_create_user, discord_id=3)

    async def gc_loop() -> int:
        removed = 0
        for _ in range(10):
            removed += (await storage.gc_blobs(grace_seconds=0)).blobs
        return removed

    results = await asyncio.gather(gc_loop(), *(make_avatar(storage, user, i) for i in range(N)))
    avatars = [r for r in results[1:] if isinstance(r, Avatar)]
    assert len(avatars) == N
    for a in avatars:
        assert storage.blobs.exists(a.blob_key), a
