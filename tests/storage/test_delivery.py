"""Delivery as durable state: what is left to deliver, marking delivered, and the bot messages kept with
jobs for delete and /forget."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from storage import Avatar, Job, JobStatus, NotFound, Storage, User, avatars, jobs
from storage.models import utcnow

from .helpers import image, make_avatar, make_job, tx

S = JobStatus


async def _finished(storage: Storage, user: User, status: JobStatus, n: int, **fields: Any) -> Job:
    """A job with a delivery target brought to ``status``."""
    fields.setdefault("deliver_user_id", user.discord_id)
    job = await make_job(storage, user, interaction_token=f"token-{n}", **fields)
    if status is S.QUEUED:
        return job
    if status is S.CANCELLED:
        return await tx(storage, jobs.mark_cancelled, job.id)
    await tx(storage, jobs.mark_running, job.id)
    if status is S.RUNNING:
        return await tx(storage, jobs.get_job_by_id, job.id)
    if status is S.FAILED:
        return await tx(storage, jobs.mark_failed, job.id, "boom")
    _, done = await storage.finish_job(job.id, image(n), seed=n, engine="chibi", width=1, height=1)
    return done


async def test_undelivered_lists_finished_jobs_with_a_user_to_tell(
    storage: Storage, alice: User, bob: User
) -> None:
    done = await _finished(storage, alice, S.DONE, 1)
    await _finished(storage, alice, S.QUEUED, 2)
    await _finished(storage, alice, S.RUNNING, 3)
    failed = await _finished(storage, bob, S.FAILED, 4)
    await _finished(storage, bob, S.CANCELLED, 5)
    await _finished(storage, alice, S.DONE, 6, deliver_user_id=None)  # a console job: nobody to tell
    delivered = await _finished(storage, bob, S.DONE, 7)
    assert await tx(storage, jobs.mark_delivered, [delivered.id], [(1, 2)]) == 1

    pending = await tx(storage, jobs.undelivered)
    assert [j.id for j in pending] == [done.id, failed.id]  # oldest first
    assert pending[0].avatar_id is not None and pending[1].error == "boom"
    assert pending[0].interaction_token == "token-1"  # still there to edit the original message

    assert await tx(storage, jobs.mark_delivered, [done.id, failed.id], []) == 2
    assert await tx(storage, jobs.undelivered) == []


async def test_mark_delivered_only_once_and_only_when_finished(storage: Storage, alice: User) -> None:
    done = await _finished(storage, alice, S.DONE, 1, request_group="grid")
    failed = await _finished(storage, alice, S.FAILED, 2, request_group="grid")
    cancelled = await _finished(storage, alice, S.CANCELLED, 3)
    queued = await _finished(storage, alice, S.QUEUED, 4)
    running = await _finished(storage, alice, S.RUNNING, 5)
    before = utcnow()

    ids = [done.id, failed.id, cancelled.id, queued.id, running.id, 999_999]
    assert await tx(storage, jobs.mark_delivered, ids, [(10, 100), (10, 100), (11, 110)]) == 3
    for job in (done, failed, cancelled):
        row = await tx(storage, jobs.get_job_by_id, job.id)
        assert row.delivered_at is not None and row.delivered_at >= before
        assert row.interaction_token is None  # the credential is gone once delivered
        assert row.messages == [[10, 100], [11, 110]]
        assert row.status is job.status  # delivery never changes the outcome
    for job in (queued, running):
        row = await tx(storage, jobs.get_job_by_id, job.id)
        assert row.delivered_at is None and row.messages == [] and row.interaction_token is not None

    # Idempotent: a second delivery (a retry after a crash) changes nothing.
    first = (await tx(storage, jobs.get_job_by_id, done.id)).delivered_at
    assert await tx(storage, jobs.mark_delivered, [done.id], [(12, 120)]) == 0
    again = await tx(storage, jobs.get_job_by_id, done.id)
    assert again.delivered_at == first and again.messages == [[10, 100], [11, 110]]
    assert await tx(storage, jobs.mark_delivered, [], [(1, 1)]) == 0


async def test_add_messages_keeps_them_without_delivering(storage: Storage, alice: User) -> None:
    queued = await _finished(storage, alice, S.QUEUED, 1)
    done = await _finished(storage, alice, S.DONE, 2)
    assert await tx(storage, jobs.add_messages, [queued.id, done.id, 999_999], [(5, 50)]) == 2
    assert await tx(storage, jobs.add_messages, [queued.id], [(5, 50), (5, 51)]) == 1  # (5, 50) not twice
    row = await tx(storage, jobs.get_job_by_id, queued.id)
    assert row.messages == [[5, 50], [5, 51]] and row.delivered_at is None
    assert row.interaction_token == "token-1"
    assert [j.id for j in await tx(storage, jobs.undelivered)] == [done.id]
    # Messages added earlier stay when the job is delivered.
    assert await tx(storage, jobs.mark_delivered, [done.id], [(6, 60)]) == 1
    assert (await tx(storage, jobs.get_job_by_id, done.id)).messages == [[5, 50], [6, 60]]


@pytest.mark.parametrize(
    "messages",
    [[(1,)], [(1, 2, 3)], [(0, 5)], [(5, -1)], [(5, 2**63)], [("1", 2)], [(True, 2)], ["ab"], [(1.0, 2)]],
)
async def test_bad_message_references_are_refused(
    storage: Storage, alice: User, messages: list[object]
) -> None:
    job = await _finished(storage, alice, S.DONE, 1)
    with pytest.raises(ValueError):
        await tx(storage, jobs.add_messages, [job.id], messages)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await tx(storage, jobs.mark_delivered, [job.id], messages)  # type: ignore[arg-type]
    row = await tx(storage, jobs.get_job_by_id, job.id)
    assert row.messages == [] and row.delivered_at is None


async def test_concurrent_appends_lose_no_message(storage: Storage, alice: User) -> None:
    """Many writers appending to the same jobs at once (progress, pointers, final): all messages stay."""
    a = await _finished(storage, alice, S.DONE, 1)
    b = await _finished(storage, alice, S.DONE, 2)
    n = 30
    counts = await asyncio.gather(
        *(tx(storage, jobs.add_messages, [a.id, b.id], [(7, 1000 + i)]) for i in range(n))
    )
    assert counts == [2] * n
    for job in (a, b):
        stored = (await tx(storage, jobs.get_job_by_id, job.id)).messages
        assert sorted(m for _, m in stored) == [1000 + i for i in range(n)]


async def test_concurrent_mark_delivered_has_one_winner(storage: Storage, alice: User) -> None:
    job = await _finished(storage, alice, S.DONE, 1)
    counts = await asyncio.gather(
        *(tx(storage, jobs.mark_delivered, [job.id], [(8, 80 + i)]) for i in range(10))
    )
    assert sorted(counts) == [0] * 9 + [1]
    assert len((await tx(storage, jobs.get_job_by_id, job.id)).messages) == 1


async def test_messages_for_avatars_are_deduplicated(storage: Storage, alice: User, bob: User) -> None:
    one = await make_avatar(storage, alice, 1)
    two = await make_avatar(storage, alice, 2)
    other = await make_avatar(storage, alice, 3)
    bobs = await make_avatar(storage, bob, 4)
    assert one.job_id and two.job_id and other.job_id and bobs.job_id
    grid = (100, 1000)  # one message shows both avatars of the request
    await tx(storage, jobs.add_messages, [one.job_id, two.job_id], [grid])
    await tx(storage, jobs.mark_delivered, [one.job_id], [(100, 1001)])
    await tx(storage, jobs.mark_delivered, [other.job_id], [(200, 2000)])
    await tx(storage, jobs.mark_delivered, [bobs.job_id], [(300, 3000)])

    got = await tx(storage, jobs.messages_for_avatars, [one.id, two.id, one.id])
    assert sorted(got) == [grid, (100, 1001)]
    assert await tx(storage, jobs.messages_for_avatars, [two.id]) == [grid]
    assert await tx(storage, jobs.messages_for_avatars, [999_999]) == []  # unknown ids are ignored
    assert await tx(storage, jobs.messages_for_avatars, []) == []
    # A soft-deleted avatar's messages can still be found (to retry removing them).
    await tx(storage, avatars.soft_delete, other.public_id, alice)
    assert await tx(storage, jobs.messages_for_avatars, [other.id]) == [(200, 2000)]

    async with storage.transaction() as s:
        assert sorted(await jobs.messages_for_avatars(s, [one.id, bobs.id])) == [
            grid,
            (100, 1001),
            (300, 3000),
        ]
        assert sorted(await jobs.messages_for_user(s, bob)) == [(300, 3000)]


async def test_delete_avatar_returns_its_messages(storage: Storage, alice: User, bob: User) -> None:
    """The studio's delete: soft-delete the owner's avatar and read its messages in one unit of work."""

    async def delete(public_id: str, owner: User) -> tuple[Avatar, list[tuple[int, int]]]:
        async with storage.transaction() as s:
            avatar = await avatars.soft_delete(s, public_id, owner)
            return avatar, await jobs.messages_for_avatars(s, [avatar.id])

    avatar = await make_avatar(storage, alice, 1)
    assert avatar.job_id is not None
    await tx(storage, jobs.mark_delivered, [avatar.job_id], [(1, 11), (2, 22)])
    with pytest.raises(NotFound):
        await delete(avatar.public_id, bob)
    deleted, messages = await delete(avatar.public_id, alice)
    assert deleted.id == avatar.id and deleted.deleted_at is not None
    assert messages == [(1, 11), (2, 22)]
    with pytest.raises(NotFound):
        await tx(storage, avatars.get_avatar, avatar.public_id, alice)
    with pytest.raises(NotFound):  # deleting twice is "not found", like any missing avatar
        await delete(avatar.public_id, alice)
