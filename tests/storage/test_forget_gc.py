"""Forgetting a user and garbage-collecting blobs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import NotFound, Storage, User, avatars, jobs, users
from storage.blobs import TEMP_PREFIX, FileBlobStore, blob_key_for
from storage.models import Avatar, Job

from .helpers import image, make_avatar, make_job, tx


def _age_blob(storage: Storage, key: str, seconds: float) -> None:
    assert isinstance(storage.blobs, FileBlobStore)
    past = time.time() - seconds
    os.utime(storage.blobs.path_for(key), (past, past))


def _plant_old_temp_file(store: FileBlobStore, key: str) -> Path:
    """What a crash between writing and renaming leaves: a two-hour-old temp file beside the key."""
    directory = store.path_for(key).parent
    directory.mkdir(parents=True, exist_ok=True)
    leftover = directory / f"{TEMP_PREFIX}0123456789abcdef"
    leftover.write_bytes(b"inter")
    past = time.time() - 7200
    os.utime(leftover, (past, past))
    return leftover


async def _count(storage: Storage, model: type[Avatar] | type[Job] | type[User], **where: int) -> int:
    async with storage.transaction() as s:
        stmt = sa.select(sa.func.count()).select_from(model)
        for column, value in where.items():
            stmt = stmt.where(getattr(model, column) == value)
        return (await s.scalar(stmt)) or 0


async def test_forget_removes_every_row_and_blob_of_the_user(
    storage: Storage, alice: User, bob: User
) -> None:
    root = await make_avatar(storage, alice, 1)
    await make_avatar(storage, alice, 2, kind="edit", parent=root)
    job = await make_job(storage, alice, request={"prompt": "x"}, interaction_token="secret-token")
    await tx(storage, jobs.mark_running, job.id)
    await storage.finish_job(job.id, image(3), seed=3, engine="chibi", width=1, height=1)
    await tx(storage, jobs.mark_delivered, [job.id], [(10, 100), (10, 101)])
    assert root.job_id is not None
    await tx(storage, jobs.add_messages, [root.job_id, job.id], [(20, 200)])
    await make_job(storage, alice, "selfie")
    deleted = await make_avatar(storage, alice, 4)
    await tx(storage, avatars.soft_delete, deleted.public_id, alice)
    shared = await make_avatar(storage, alice, 5)
    bobs_copy = await make_avatar(storage, bob, 5)  # byte-identical image: same blob
    bobs_own = await make_avatar(storage, bob, 6)
    assert bobs_own.job_id is not None
    await tx(storage, jobs.add_messages, [bobs_own.job_id], [(30, 300)])
    await make_job(storage, bob)
    assert shared.blob_key == bobs_copy.blob_key

    result = await storage.forget_user(alice)
    # 5 avatars, each made by a job, plus the selfie job that never finished.
    assert (result.users, result.avatars, result.jobs, result.blobs) == (1, 5, 6, 4)
    # The bot messages that showed Alice's results, read before the rows went (Bob's are not there).
    assert sorted(result.messages) == [(10, 100), (10, 101), (20, 200)]

    assert await _count(storage, User, id=alice.id) == 0
    assert await _count(storage, Avatar, owner_id=alice.id) == 0
    assert await _count(storage, Job, user_id=alice.id) == 0
    assert await tx(storage, users.get_user, discord_id=alice.discord_id) is None
    for n in (1, 2, 3, 4):
        assert not storage.blobs.exists(blob_key_for(image(n)))

    # Bob keeps everything, including the blob he shared with Alice.
    assert storage.blobs.exists(bobs_copy.blob_key)
    bobs_kept = await tx(storage, avatars.get_avatar, bobs_copy.public_id, bob)
    assert await storage.read_image(bobs_kept) == image(5)
    assert (await tx(storage, avatars.get_avatar, bobs_own.public_id, bob)).id == bobs_own.id
    assert await _count(storage, Job, user_id=bob.id) == 3
    assert await tx(storage, jobs.messages_for_avatars, [bobs_own.id]) == [(30, 300)]
    assert set(storage.blobs.keys()) == {blob_key_for(image(5)), blob_key_for(image(6))}

    # Forgetting twice is harmless; the user id no longer works.
    again = await storage.forget_user(alice)
    assert (again.users, again.avatars, again.jobs, again.blobs, again.messages) == (0, 0, 0, 0, [])
    with pytest.raises(NotFound):
        await tx(storage, avatars.get_avatar, root.public_id, alice)


async def test_gc_removes_only_old_unreferenced_blobs(storage: Storage, alice: User) -> None:
    kept = await make_avatar(storage, alice, 1)
    orphan_old = await storage_put(storage, b"orphan from a crashed finish_job")
    orphan_young = await storage_put(storage, b"a finish_job still in flight")
    for key in (kept.blob_key, orphan_old):
        _age_blob(storage, key, 7200)

    result = await storage.gc_blobs(grace_seconds=3600)
    assert (result.blobs, result.temp_files, result.total) == (1, 0, 1)
    assert not storage.blobs.exists(orphan_old)
    assert storage.blobs.exists(orphan_young)  # too young to judge
    assert storage.blobs.exists(kept.blob_key)  # referenced

    # With no grace period the young orphan goes too; referenced blobs never do.
    result = await storage.gc_blobs(grace_seconds=0)
    assert result.blobs == 1
    assert set(storage.blobs.keys()) == {kept.blob_key}
    with pytest.raises(ValueError):
        await storage.gc_blobs(grace_seconds=-1)


async def test_gc_sweeps_temp_files_left_by_a_crash(storage: Storage, alice: User) -> None:
    await make_avatar(storage, alice, 1)
    assert isinstance(storage.blobs, FileBlobStore)
    key = blob_key_for(b"interrupted")
    leftover = _plant_old_temp_file(storage.blobs, key)
    assert key not in set(storage.blobs.keys())

    result = await storage.gc_blobs(grace_seconds=3600)
    assert result.temp_files == 1 and result.blobs == 0
    assert not leftover.exists()


async def test_soft_deleted_blobs_survive_gc(storage: Storage, alice: User) -> None:
    gone = await make_avatar(storage, alice, 1)
    await tx(storage, avatars.soft_delete, gone.public_id, alice)
    assert (await storage.gc_blobs(grace_seconds=0)).blobs == 0
    assert storage.blobs.exists(gone.blob_key)
    result = await storage.forget_user(alice)
    assert (result.avatars, result.blobs) == (1, 1)
    assert not storage.blobs.exists(gone.blob_key)


async def storage_put(storage: Storage, data: bytes) -> str:
    """Put a blob with no row, as a crashed ``finish_job`` would leave it."""
    return storage.blobs.put(data)
