"""Jobs: creation, the transition table, recovery queries and owner checks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta

import pytest

from storage import InvalidTransition, Job, JobStatus, NotFound, Storage, User
from storage.models import utcnow
from storage.repo import TRANSITIONS

from .helpers import image, make_avatar

S = JobStatus


async def _job_in(storage: Storage, user: User, status: JobStatus) -> Job:
    """A job brought to ``status`` by legal transitions only."""
    job = await storage.create_job(user, "prompt", {"prompt": "cat"})
    if status is S.QUEUED:
        return job
    if status is S.CANCELLED:
        return await storage.mark_cancelled(job.id)
    if status is S.FAILED:
        return await storage.mark_failed(job.id, "boom")
    job = await storage.mark_running(job.id)
    if status is S.DONE:
        _, job = await storage.finish_job(job.id, image(job.id), seed=1, engine="chibi", width=1, height=1)
    return job


def _mover(storage: Storage, user: User, target: JobStatus) -> Callable[[Job], Awaitable[Job]]:
    async def move(job: Job) -> Job:
        if target is S.RUNNING:
            return await storage.mark_running(job.id)
        if target is S.QUEUED:
            return await storage.requeue(job.id)
        if target is S.FAILED:
            return await storage.mark_failed(job.id, "it broke")
        if target is S.CANCELLED:
            return await storage.mark_cancelled(job.id)
        avatar = await make_avatar(storage, user, 10_000 + job.id)
        return await storage.mark_done(job.id, avatar.id)

    return move


async def test_create_job(storage: Storage, alice: User) -> None:
    expires = utcnow() + timedelta(minutes=15)
    job = await storage.create_job(
        alice,
        "selfie",
        {"style": "toon"},
        guild_id=5,
        channel_id=6,
        interaction_token="tok",
        token_expires_at=expires,
    )
    assert job.status is S.QUEUED and job.attempts == 0 and job.error is None
    assert job.kind == "selfie" and job.request == {"style": "toon"}
    assert (job.guild_id, job.channel_id, job.interaction_token) == (5, 6, "tok")
    assert job.created_at.tzinfo is UTC and job.started_at is None and job.finished_at is None
    got = await storage.get_job(job.public_id, alice)
    assert got.id == job.id and got.token_expires_at == expires
    with pytest.raises(ValueError):
        await storage.create_job(alice, "bogus")


async def test_naive_datetimes_are_refused(storage: Storage, alice: User) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        await storage.create_job(alice, "prompt", token_expires_at=utcnow().replace(tzinfo=None))


@pytest.mark.parametrize("source", list(S))
async def test_transition_table(storage: Storage, alice: User, source: JobStatus) -> None:
    """From each status, exactly the allowed targets work; everything else raises InvalidTransition."""
    for target in S:
        job = await _job_in(storage, alice, source)
        assert job.status is source
        move = _mover(storage, alice, target)
        if target in TRANSITIONS[source]:
            moved = await move(job)
            assert moved.status is target
        else:
            with pytest.raises(InvalidTransition) as info:
                await move(job)
            assert (info.value.current, info.value.target) == (source.value, target.value)
            assert (await storage.get_job_by_id(job.id)).status is source


async def test_terminal_states_never_change(storage: Storage, alice: User) -> None:
    for terminal in (S.DONE, S.FAILED, S.CANCELLED):
        assert TRANSITIONS[terminal] == frozenset()
        job = await _job_in(storage, alice, terminal)
        for target in S:
            with pytest.raises(InvalidTransition):
                await _mover(storage, alice, target)(job)


async def test_timestamps_and_attempts(storage: Storage, alice: User) -> None:
    job = await storage.create_job(alice, "prompt")
    running = await storage.mark_running(job.id)
    assert running.started_at is not None and running.updated_at >= job.updated_at
    requeued = await storage.requeue(job.id)
    assert requeued.status is S.QUEUED and requeued.attempts == 1 and requeued.started_at is None
    await storage.mark_running(job.id)
    requeued = await storage.requeue(job.id)
    assert requeued.attempts == 2
    await storage.mark_running(job.id)
    failed = await storage.mark_failed(job.id, "x" * 5000)
    assert failed.finished_at is not None and failed.error is not None and len(failed.error) == 2000


async def test_mark_done_checks_the_avatar(storage: Storage, alice: User, bob: User) -> None:
    job = await storage.mark_running((await storage.create_job(alice, "prompt")).id)
    bobs = await make_avatar(storage, bob, 1)
    with pytest.raises(NotFound):
        await storage.mark_done(job.id, bobs.id)
    with pytest.raises(NotFound):
        await storage.mark_done(job.id, 999_999)
    assert (await storage.get_job_by_id(job.id)).status is S.RUNNING
    with pytest.raises(NotFound):
        await storage.mark_running(999_999)


async def test_finish_job(storage: Storage, alice: User) -> None:
    job = await storage.create_job(alice, "edit", {"add": "hat"}, guild_id=77)
    parent = await make_avatar(storage, alice, 1)
    with pytest.raises(InvalidTransition):  # must be running first
        await storage.finish_job(job.id, image(2), seed=5, engine="chibi", width=2, height=2)
    await storage.mark_running(job.id)
    avatar, done = await storage.finish_job(
        job.id, image(2), seed=5, engine="chibi", width=2, height=2, parent=parent, spec={"hat": 1}
    )
    assert done.status is S.DONE and done.avatar_id == avatar.id and done.finished_at is not None
    assert (avatar.owner_id, avatar.kind, avatar.guild_id, avatar.job_id) == (alice.id, "edit", 77, job.id)
    assert avatar.parent_id == parent.id
    # A retry after a crash between "done" and the reply gets the same avatar back.
    again, done_again = await storage.finish_job(job.id, image(3), seed=6, engine="chibi", width=2, height=2)
    assert again.id == avatar.id and done_again.id == job.id
    assert not storage.blobs.exists(image_key(3))


async def test_finish_job_of_a_cancelled_job_stores_nothing(storage: Storage, alice: User) -> None:
    job = await storage.mark_running((await storage.create_job(alice, "prompt")).id)
    await storage.cancel_job(job.public_id, alice)
    with pytest.raises(InvalidTransition):
        await storage.finish_job(job.id, image(1), seed=1, engine="chibi", width=1, height=1)
    assert (await storage.history(alice)).total == 0
    assert list(storage.blobs.keys()) == []


async def test_job_owner_checks(storage: Storage, alice: User, bob: User) -> None:
    job = await storage.create_job(alice, "prompt")
    with pytest.raises(NotFound):
        await storage.get_job(job.public_id, bob)
    with pytest.raises(NotFound):
        await storage.cancel_job(job.public_id, bob)
    with pytest.raises(NotFound):
        await storage.get_job("nope", alice)
    assert (await storage.get_job_by_id(job.id)).status is S.QUEUED
    cancelled = await storage.cancel_job(job.public_id, alice)
    assert cancelled.status is S.CANCELLED


async def test_unfinished_and_active_jobs(storage: Storage, alice: User, bob: User) -> None:
    a1 = await storage.create_job(alice, "prompt")
    b1 = await storage.create_job(bob, "prompt")
    a2 = await storage.create_job(alice, "selfie")
    a3 = await _job_in(storage, alice, S.DONE)
    a4 = await _job_in(storage, alice, S.FAILED)
    await storage.mark_running(b1.id)
    assert [j.id for j in await storage.unfinished_jobs()] == [a1.id, b1.id, a2.id]
    assert [j.id for j in await storage.active_jobs(alice)] == [a1.id, a2.id]
    assert [j.id for j in await storage.active_jobs(bob)] == [b1.id]

    since = utcnow() - timedelta(minutes=1)
    assert await storage.count_jobs_since(alice, since) == 4
    assert await storage.count_jobs_since(alice, since, statuses=[S.QUEUED, S.RUNNING, S.DONE]) == 3
    assert await storage.count_jobs_since(alice, utcnow() + timedelta(minutes=1)) == 0
    assert a3.status is S.DONE and a4.status is S.FAILED


@pytest.mark.parametrize("source", [S.QUEUED, S.RUNNING])
async def test_concurrent_transitions_have_exactly_one_winner(
    storage: Storage, alice: User, source: JobStatus
) -> None:
    """Racing moves to terminal states: exactly one wins, every other one gets InvalidTransition."""
    job = await _job_in(storage, alice, source)
    avatar = await make_avatar(storage, alice, 1)
    attempts: list[Awaitable[Job]] = []
    for _ in range(8):
        attempts.append(storage.mark_failed(job.id, "a"))
        attempts.append(storage.mark_cancelled(job.id))
        if source is S.RUNNING:
            attempts.append(storage.mark_done(job.id, avatar.id))
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if isinstance(r, Job)]
    losers = [r for r in results if not isinstance(r, Job)]
    assert len(winners) == 1, results
    assert all(isinstance(r, InvalidTransition) for r in losers), losers
    final = await storage.get_job_by_id(job.id)
    assert final.status is winners[0].status


async def test_concurrent_mixed_transitions_form_a_legal_chain(storage: Storage, alice: User) -> None:
    """Claims racing cancellations and failures: the winners form a legal path, never a step back."""
    for _ in range(5):
        job = await storage.create_job(alice, "prompt")
        attempts: list[Awaitable[Job]] = []
        for _ in range(6):
            attempts += [
                storage.mark_running(job.id),
                storage.mark_cancelled(job.id),
                storage.mark_failed(job.id, "x"),
            ]
        results = await asyncio.gather(*attempts, return_exceptions=True)
        assert all(isinstance(r, Job | InvalidTransition) for r in results), results
        won = [r.status for r in results if isinstance(r, Job)]
        terminal = [w for w in won if w.terminal]
        assert won.count(S.RUNNING) <= 1 and len(terminal) <= 1, won
        final = (await storage.get_job_by_id(job.id)).status
        assert final is (terminal[0] if terminal else S.RUNNING)


async def test_concurrent_claims_of_queued_jobs(storage: Storage, alice: User) -> None:
    """Many workers racing to claim the same queued jobs: each job is claimed exactly once."""
    jobs = [await storage.create_job(alice, "prompt") for _ in range(5)]
    claims = [storage.mark_running(j.id) for j in jobs for _ in range(6)]
    results = await asyncio.gather(*claims, return_exceptions=True)
    claimed = sorted(r.id for r in results if isinstance(r, Job))
    assert claimed == sorted(j.id for j in jobs)
    assert sum(isinstance(r, InvalidTransition) for r in results) == 25


def image_key(n: int) -> str:
    from storage.blobs import blob_key_for

    return blob_key_for(image(n))
