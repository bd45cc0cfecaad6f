"""Pending blobs (storage/journal.py): the job store commits a new picture's bytes with its avatar row and
writes the file a moment later. The picture is readable from the moment the job is done, a crash between
the commit and the file loses nothing, and deleting a user leaves none of their pictures behind."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from storage import Storage, User, journal, migrate
from storage.db import create_engine
from storage.errors import BlobNotFound
from storage.jobstore import SqlJobStore

from .helpers import image

ROOT = Path(__file__).resolve().parents[2]
HOLD = 3600.0  # a write delay no test waits out: the file is written only when a test asks


async def _pending(storage: Storage) -> list[str]:
    return await storage._run(journal.pending_keys)


async def _done_job(store: SqlJobStore, user: User, n: int) -> dict[str, Any]:
    (job_id,) = await store.create_many([({"prompt": f"p{n}"}, f"user:{user.id}", "prompt")], None)
    await store.mark_running(job_id)
    result = {"png": image(n), "width": 8, "height": 8, "engine": "chibi", "spec": {}, "seed": n}
    return await store.complete(job_id, result)


async def test_a_picture_is_readable_the_moment_its_job_is_done_and_its_file_follows(
    storage: Storage, alice: User
) -> None:
    storage.journal.delay_s = HOLD
    store = SqlJobStore(storage)

    first = await _done_job(store, alice, 1)

    key = first["blob_key"]
    assert not storage.blobs.exists(key)  # not written yet ...
    assert await _pending(storage) == [key]  # ... but durable in the database
    assert await storage.read_blob(key) == image(1)
    await storage.journal.drain()
    assert storage.blobs.get(key) == image(1)
    assert await _pending(storage) == [key]  # its row goes with the next transaction that finishes jobs

    second = await _done_job(store, alice, 2)

    assert await _pending(storage) == [second["blob_key"]]
    assert await storage.read_blob(key) == image(1)
    assert await store.complete_many([]) == []


async def test_the_same_picture_again_is_stored_once(storage: Storage, alice: User) -> None:
    store = SqlJobStore(storage)
    storage.journal.delay_s = HOLD
    first = await _done_job(store, alice, 3)
    again = await _done_job(store, alice, 3)  # the same bytes while the first file is not written

    assert again["blob_key"] == first["blob_key"] and again["avatar_id"] != first["avatar_id"]
    assert await _pending(storage) == [first["blob_key"]]
    await storage.journal.drain()
    assert storage.blobs.get(first["blob_key"]) == image(3)


async def test_closing_writes_the_files_and_drops_their_rows(
    storage: Storage, alice: User, db_url: str, tmp_path: Path
) -> None:
    storage.journal.delay_s = HOLD
    stored = await _done_job(SqlJobStore(storage), alice, 4)

    await storage.close()

    reopened = await Storage.open(db_url, tmp_path / "data", check_schema=False)
    try:
        assert reopened.blobs.get(stored["blob_key"]) == image(4)
        assert await _pending(reopened) == []
    finally:
        await reopened.close()


async def test_pictures_a_killed_process_left_pending_are_written_out_at_the_next_open(
    db_url: str, tmp_path: Path
) -> None:
    """A real process stores a picture and is killed (os._exit) before its file is written."""
    data = tmp_path / "data"
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from storage import Storage
        from storage.jobstore import SqlJobStore

        async def main():
            storage = await Storage.open({db_url!r}, {str(data)!r})
            storage.journal.delay_s = 3600
            store = SqlJobStore(storage)
            (job,) = await store.create_many([({{"prompt": "p"}}, "console:kim", "prompt")], None)
            await store.mark_running(job)
            png = b"\\x89PNG killed before its file " * 40
            stored = await store.complete(job, {{"png": png, "width": 8, "height": 8, "engine": "chibi",
                                                "spec": {{}}, "seed": 1}})
            print(stored["blob_key"], flush=True)
            os._exit(0)

        asyncio.run(main())
        """
    )
    ran = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(ran.communicate(), 120)
    assert ran.returncode == 0, err.decode()
    key = out.decode().split()[-1]
    storage = await Storage.open(db_url, data, check_schema=False)
    try:
        assert not storage.blobs.exists(key)
        assert await _pending(storage) == [key]
        assert (await storage.read_blob(key)).startswith(b"\x89PNG killed")  # readable meanwhile
    finally:
        await storage.close()

    reopened = await Storage.open(db_url, data)  # what the bot does at start

    try:
        assert reopened.blobs.get(key).startswith(b"\x89PNG killed")
        assert await _pending(reopened) == []
    finally:
        await reopened.close()


async def test_forgetting_a_user_leaves_none_of_their_pending_pictures(storage: Storage, alice: User) -> None:
    storage.journal.delay_s = HOLD
    stored = await _done_job(SqlJobStore(storage), alice, 5)

    forgotten = await storage.forget_user(alice)

    assert forgotten.blobs == 1
    assert await _pending(storage) == []
    await storage.journal.drain()
    assert not storage.blobs.exists(stored["blob_key"])
    with pytest.raises(BlobNotFound):
        await storage.read_blob(stored["blob_key"])


async def test_gc_drops_pending_rows_no_avatar_points_at(storage: Storage) -> None:
    async with storage.engine.begin() as conn:
        await conn.run_sync(journal.insert_pending, {"ab" * 32: b"left by a deleted avatar"})

    result = await storage.gc_blobs(grace_seconds=0)

    assert result.blobs == 1
    assert await _pending(storage) == []


async def test_a_database_with_pending_pictures_is_not_downgraded_past_them(empty_db_url: str) -> None:
    await migrate.upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(journal.insert_pending, {"cd" * 32: b"bytes only here"})
        with pytest.raises(RuntimeError, match="start chibify once"):
            await migrate.downgrade(empty_db_url, "0002")
        assert await migrate.current_revision(empty_db_url) == migrate.head_revision()
        async with engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM pending_blobs"))
    finally:
        await engine.dispose()
    await migrate.downgrade(empty_db_url, "0002")
    assert await migrate.current_revision(empty_db_url) == "0002"


async def test_a_file_whose_pending_row_another_process_dropped_is_kept_only_if_wanted(
    storage: Storage, alice: User
) -> None:
    """Another process deleted the avatar (and its pending row) while this one wrote the file: the next
    transaction finds the row gone and removes the file nobody wants."""
    storage.journal.delay_s = HOLD
    store = SqlJobStore(storage)
    gone = await _done_job(store, alice, 6)
    kept = await _done_job(store, alice, 7)
    await storage.journal.drain()
    async with storage.engine.begin() as conn:  # what a forget in another process does to the rows
        await conn.execute(sa.text("DELETE FROM avatars WHERE id = :id"), {"id": gone["avatar_id"]})
        await conn.execute(sa.text("DELETE FROM pending_blobs"))

    await _done_job(store, alice, 8)

    assert not storage.blobs.exists(gone["blob_key"])
    assert storage.blobs.get(kept["blob_key"]) == image(7)


async def test_opening_writes_out_what_it_can_and_keeps_the_rest(
    storage: Storage, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage.journal.delay_s = HOLD
    stored = await _done_job(SqlJobStore(storage), alice, 9)
    async with storage.engine.begin() as conn:
        await conn.run_sync(journal.insert_pending, {"ef" * 32: b"no avatar points at this"})

    def full(data: bytes) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.blobs, "put", full)
    assert await storage.write_pending() == 0  # logged, not raised: readers use the rows meanwhile
    assert await _pending(storage) == [stored["blob_key"]]  # the row nobody wants went without a file
    assert await storage.read_blob(stored["blob_key"]) == image(9)

    monkeypatch.undo()
    assert await storage.write_pending() == 1
    assert storage.blobs.get(stored["blob_key"]) == image(9)
    assert await _pending(storage) == []
