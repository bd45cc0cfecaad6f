"""Unfinished jobs counted in the database, per user and in all: the queue caps of several bot processes
that share one database (and one broker)."""

from __future__ import annotations

from storage import Storage
from storage.jobstore import SqlJobStore


def _request(n: int) -> dict[str, object]:
    return {"spec": {"n": n}, "engine": "chibi", "size": 64}


async def test_unfinished_jobs_are_counted_per_user_and_in_all(storage: Storage) -> None:
    store = SqlJobStore(storage)
    assert await store.count_unfinished("console:nobody-yet") == (0, 0)
    alice = await store.create_many([(_request(i), "console:alice", "prompt") for i in range(3)], None)
    bob = await store.create_many([(_request(9), "discord:123456789", "prompt")], None)
    assert await store.count_unfinished("console:alice") == (3, 4)
    assert await store.count_unfinished("discord:123456789") == (1, 4)

    # running still counts; done, failed and cancelled do not
    await store.mark_running(alice[0])
    assert await store.count_unfinished("console:alice") == (3, 4)
    await store.fail(alice[1], "no")
    await store.cancel(alice[2])
    await store.mark_running(bob[0])
    await store.fail(bob[0], "no")
    assert await store.count_unfinished("console:alice") == (1, 1)
    assert await store.count_unfinished("discord:123456789") == (0, 1)
    assert await store.count_unfinished("console:nobody-yet") == (0, 1)
