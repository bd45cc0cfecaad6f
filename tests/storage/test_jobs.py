"""Jobs: creation, the transition table, failures that stay failed, recovery queries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta
from typing import Any

import pytest

from storage import InvalidTransition, Job, JobStatus, NotFound, Storage, User, avatars, jobs
from storage.jobs import TRANSITIONS
from storage.models import utcnow

from .helpers import image, make_avatar, make_job, tx

S = JobStatus


async def _mark_done(storage: Storage, job_id: int, avatar_id: int) -> Job:
    async with storage.transaction() as s:
        return await jobs.mark_done(s, job_id, avatar_id)


async def _job_in(storage: Storage, user: User, status: JobStatus) -> Job:
    """A job brought to ``status`` by legal transitions only."""
    job = await make_job(storage, user, request={"prompt": "cat"})
    if status is S.QUEUED:
        return job
    if status is S.CANCELLED:
        return await tx(storage, jobs.mark_cancelled, job.id)
    if status is S.FAILED:
        return await tx(storage, jobs.mark_failed, job.id, "boom")
    job = await tx(storage, jobs.mark_running, job.id)
    if status is S.DONE:
        _, job = await storage.finish_job(job.id, image(job.id), seed=1, engine="chibi", width=1, height=1)
    return job


def _mover(storage: Storage, user: User, target: JobStatus) -> Callable[[Job], Awaitable[Job]]:
    async def move(job: Job) -> Job:
        if target is S.RUNNING:
            return await tx(storage, jobs.mark_running, job.id)
        if target is S.QUEUED:
            return await tx(storage, jobs.requeue, job.id)
        if target is S.FAILED:
            return await tx(storage, jobs.mark_failed, job.id, "it broke")
        if target is S.CANCELLED:
            return await tx(storage, jobs.mark_cancelled, job.id)
        avatar = await make_avatar(storage, user, 10_000 + job.id)
        return await _mark_done(storage, job.id, avatar.id)

    return move


async def test_create_job(storage: Storage, alice: User) -> None:
    expires = utcnow() + timedelta(minutes=15)
    job = await make_job(
        storage,
        alice,
        "selfie",
        request={"style": "toon"},
        guild_id=5,
        channel_id=6,
        interaction_token="tok",
        token_expires_at=expires,
        deliver_user_id=alice.discord_id,
        request_group="g1",
    )
    assert job.status is S.QUEUED and job.attempts == 0 and job.error is None
    assert job.kind == "selfie" and job.request == {"style": "toon"}
    assert (job.guild_id, job.channel_id, job.interaction_token) == (5, 6, "tok")
    assert (job.deliver_user_id, job.request_group, job.messages, job.delivered_at) == (
        alice.discord_id,
        "g1",
        [],
        None,
    )
    assert job.created_at.tzinfo is UTC and job.started_at is None and job.finished_at is None
    got = await tx(storage, jobs.get_job_by_id, job.id)
    assert got.token_expires_at == expires and got.deliver_user_id == alice.discord_id
    assert got.request_group == "g1" and got.messages == []
    with pytest.raises(ValueError):
        await make_job(storage, alice, "bogus")


@pytest.mark.parametrize(
    "fields",
    [
        {"request": {"prompt": "cat\x00ears"}},
        {"request": {"spec": {"items": ["hat", "scar\x00f"]}}},
        {"request": {"ke\x00y": 1}},
        {"request": {"prompt": "lone \udc80 surrogate"}},
        {"interaction_token": "tok\x00en"},
        {"request_group": "g\x00"},
    ],
)
async def test_nul_bytes_and_invalid_utf8_are_refused_before_sql(
    storage: Storage, alice: User, fields: dict[str, Any]
) -> None:
    """PostgreSQL refuses NUL in text and SQLite would keep it: both refuse it up front, the same way."""
    with pytest.raises(ValueError, match=r"NUL byte|not valid UTF-8"):
        await make_job(storage, alice, **fields)
    async with storage.transaction() as s:
        assert await jobs.unfinished_jobs(s) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"request_group": ""},
        {"request_group": "x" * 33},
        {"deliver_user_id": 0},
        {"channel_id": 2**63},
        {"guild_id": True},
    ],
)
async def test_invalid_job_fields_are_refused(storage: Storage, alice: User, fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        await make_job(storage, alice, **fields)


async def test_naive_datetimes_are_refused(storage: Storage, alice: User) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        await make_job(storage, alice, token_expires_at=utcnow().replace(tzinfo=None))


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
            assert (await tx(storage, jobs.get_job_by_id, job.id)).status is source


async def test_terminal_states_never_change(storage: Storage, alice: User) -> None:
    for terminal in (S.DONE, S.FAILED, S.CANCELLED):
        assert TRANSITIONS[terminal] == frozenset()
        job = await _job_in(storage, alice, terminal)
        for target in S:
            with pytest.raises(InvalidTransition):
                await _mover(storage, alice, target)(job)


async def test_timestamps_and_attempts(storage: Storage, alice: User) -> None:
    job = await make_job(storage, alice)
    running = await tx(storage, jobs.mark_running, job.id)
    assert running.started_at is not None and running.updated_at >= job.updated_at
    requeued = await tx(storage, jobs.requeue, job.id)
    assert requeued.status is S.QUEUED and requeued.attempts == 1 and requeued.started_at is None
    await tx(storage, jobs.mark_running, job.id)
    requeued = await tx(storage, jobs.requeue, job.id)
    assert requeued.attempts == 2
    await tx(storage, jobs.mark_running, job.id)
    failed = await tx(storage, jobs.mark_failed, job.id, "x" * 5000)
    assert failed.finished_at is not None and failed.error is not None and len(failed.error) == 2000


async def test_mark_done_checks_the_avatar(storage: Storage, alice: User, bob: User) -> None:
    job = await tx(storage, jobs.mark_running, (await make_job(storage, alice)).id)
    bobs = await make_avatar(storage, bob, 1)
    with pytest.raises(NotFound):
        await _mark_done(storage, job.id, bobs.id)
    with pytest.raises(NotFound):
        await _mark_done(storage, job.id, 999_999)
    assert (await tx(storage, jobs.get_job_by_id, job.id)).status is S.RUNNING
    with pytest.raises(NotFound):
        await tx(storage, jobs.mark_running, 999_999)


async def test_finish_job(storage: Storage, alice: User) -> None:
    job = await make_job(storage, alice, "edit", request={"add": "hat"}, guild_id=77)
    parent = await make_avatar(storage, alice, 1)
    with pytest.raises(InvalidTransition):  # must be running first
        await storage.finish_job(job.id, image(2), seed=5, engine="chibi", width=2, height=2)
    await tx(storage, jobs.mark_running, job.id)
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


@pytest.mark.parametrize("ended", [S.CANCELLED, S.FAILED])
async def test_finish_job_never_turns_a_failed_or_cancelled_job_into_done(
    storage: Storage, alice: User, ended: JobStatus
) -> None:
    """A user told "failed" (or who cancelled) never gets a success later: the result is refused."""
    job = await tx(storage, jobs.mark_running, (await make_job(storage, alice)).id)
    if ended is S.CANCELLED:
        await tx(storage, jobs.mark_cancelled, job.id)
    else:
        await tx(storage, jobs.mark_failed, job.id, "storing the result failed")
    with pytest.raises(InvalidTransition) as info:
        await storage.finish_job(job.id, image(1), seed=1, engine="chibi", width=1, height=1)
    assert info.value.current == ended.value
    # Directly too: the UPDATE only moves a running job.
    avatar = await make_avatar(storage, alice, 2)
    with pytest.raises(InvalidTransition):
        await _mark_done(storage, job.id, avatar.id)
    final = await tx(storage, jobs.get_job_by_id, job.id)
    assert final.status is ended and final.avatar_id is None
    assert (await tx(storage, avatars.history, alice)).total == 1  # only the other avatar
    assert not storage.blobs.exists(image_key(1))


async def test_mark_failed_is_refused_for_a_job_already_done(storage: Storage, alice: User) -> None:
    """A user told "done" is never told "failed" later, and the result stays."""
    job = await _job_in(storage, alice, S.DONE)
    with pytest.raises(InvalidTransition) as info:
        await tx(storage, jobs.mark_failed, job.id, "late failure")
    assert (info.value.current, info.value.target) == ("done", "failed")
    final = await tx(storage, jobs.get_job_by_id, job.id)
    assert final.status is S.DONE and final.error is None and final.avatar_id == job.avatar_id


async def test_failure_text_with_nul_bytes_is_still_recorded(storage: Storage, alice: User) -> None:
    """The error of a failure is made storable rather than refused: a failure must always be recorded."""
    job = await tx(storage, jobs.mark_running, (await make_job(storage, alice)).id)
    failed = await tx(storage, jobs.mark_failed, job.id, "bad prompt 'a\x00b' \ud800")
    assert failed.status is S.FAILED
    assert (await tx(storage, jobs.get_job_by_id, job.id)).error == "bad prompt 'a\ufffdb' \ufffd"


async def test_unfinished_jobs_and_counts(storage: Storage, alice: User, bob: User) -> None:
    a1 = await make_job(storage, alice)
    b1 = await make_job(storage, bob)
    a2 = await make_job(storage, alice, "selfie")
    a3 = await _job_in(storage, alice, S.DONE)
    a4 = await _job_in(storage, alice, S.FAILED)
    await tx(storage, jobs.mark_running, b1.id)
    assert [j.id for j in await tx(storage, jobs.unfinished_jobs)] == [a1.id, b1.id, a2.id]

    since = utcnow() - timedelta(minutes=1)
    assert await tx(storage, jobs.count_jobs_since, alice, since) == 4
    assert await tx(storage, jobs.count_jobs_since, alice, since, statuses=[S.QUEUED, S.RUNNING, S.DONE]) == 3
    assert await tx(storage, jobs.count_jobs_since, alice, utcnow() + timedelta(minutes=1)) == 0
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
        attempts.append(tx(storage, jobs.mark_failed, job.id, "a"))
        attempts.append(tx(storage, jobs.mark_cancelled, job.id))
        if source is S.RUNNING:
            attempts.append(_mark_done(storage, job.id, avatar.id))
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if isinstance(r, Job)]
    losers = [r for r in results if not isinstance(r, Job)]
    assert len(winners) == 1, results
    assert all(isinstance(r, InvalidTransition) for r in losers), losers
    final = await tx(storage, jobs.get_job_by_id, job.id)
    assert final.status is winners[0].status


async def test_concurrent_mixed_transitions_form_a_legal_chain(storage: Storage, alice: User) -> None:
    """Claims racing cancellations and failures: the winners form a legal path, never a step back."""
    for _ in range(5):
        job = await make_job(storage, alice)
        attempts: list[Awaitable[Job]] = []
        for _ in range(6):
            attempts += [
                tx(storage, jobs.mark_running, job.id),
                tx(storage, jobs.mark_cancelled, job.id),
                tx(storage, jobs.mark_failed, job.id, "x"),
            ]
        results = await asyncio.gather(*attempts, return_exceptions=True)
        assert all(isinstance(r, Job | InvalidTransition) for r in results), results
        won = [r.status for r in results if isinstance(r, Job)]
        terminal = [w for w in won if w.terminal]
        assert won.count(S.RUNNING) <= 1 and len(terminal) <= 1, won
        final = (await tx(storage, jobs.get_job_by_id, job.id)).status
        assert final is (terminal[0] if terminal else S.RUNNING)


async def test_concurrent_claims_of_queued_jobs(storage: Storage, alice: User) -> None:
    """Many workers racing to claim the same queued jobs: each job is claimed exactly once."""
    made = [await make_job(storage, alice) for _ in range(5)]
    claims = [tx(storage, jobs.mark_running, j.id) for j in made for _ in range(6)]
    results = await asyncio.gather(*claims, return_exceptions=True)
    claimed = sorted(r.id for r in results if isinstance(r, Job))
    assert claimed == sorted(j.id for j in made)
    assert sum(isinstance(r, InvalidTransition) for r in results) == 25


def image_key(n: int) -> str:
    from storage.blobs import blob_key_for

    return blob_key_for(image(n))
