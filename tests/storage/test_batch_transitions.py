"""A batch's transitions in one transaction: ``mark_running_many`` and ``finish_jobs`` (what the generation
service uses for the jobs of a batch). Each job gets the answer it would have got alone; one job the store
refuses does not keep the others from being stored; nothing is stored twice."""

from __future__ import annotations

import asyncio

import pytest

from storage import Storage, User, avatars, jobs
from storage.errors import InvalidTransition, NotFound
from storage.facade import Finished, JobResult
from storage.jobstore import SqlJobStore

from .helpers import image, make_job, tx


def _result(job_id: int, n: int, **changes: object) -> JobResult:
    fields: dict[str, object] = {
        "seed": n,
        "engine": "chibi",
        "width": 512,
        "height": 512,
        "spec": {"n": n},
        "prompt": f"picture {n}",
    }
    fields.update(changes)
    return JobResult(job_id, image(n), **fields)  # type: ignore[arg-type]


async def test_mark_running_many_answers_each_job_as_alone(storage: Storage, alice: User) -> None:
    queued = [await make_job(storage, alice) for _ in range(3)]
    cancelled = await make_job(storage, alice)
    await tx(storage, jobs.mark_cancelled, cancelled.id)
    ids = [queued[0].id, cancelled.id, queued[1].id, 999_999, queued[2].id]

    answers = await tx(storage, jobs.mark_running_many, ids)

    assert [a is None for a in answers] == [True, False, True, False, True]
    assert isinstance(answers[1], InvalidTransition) and answers[1].current == "cancelled"
    assert isinstance(answers[3], NotFound)
    for job in queued:
        assert (await tx(storage, jobs.get_job_by_id, job.id)).status == "running"
    # Again: every job is running already, and says so (the service takes that as "done_when").
    again = await tx(storage, jobs.mark_running_many, [j.id for j in queued])
    assert all(isinstance(a, InvalidTransition) and a.current == "running" for a in again)


async def test_finish_jobs_stores_a_batch_and_refuses_only_the_jobs_it_must(
    storage: Storage, alice: User
) -> None:
    running = [await make_job(storage, alice) for _ in range(3)]
    await tx(storage, jobs.mark_running_many, [j.id for j in running])
    cancelled = await make_job(storage, alice)
    await tx(storage, jobs.mark_cancelled, cancelled.id)
    results = [
        _result(running[0].id, 1),
        _result(cancelled.id, 2),
        _result(running[1].id, 3, prompt="bad\x00text"),
        _result(running[2].id, 4),
    ]

    answers = await storage.finish_jobs(results)

    assert isinstance(answers[0], Finished) and isinstance(answers[3], Finished)
    assert isinstance(answers[1], InvalidTransition) and answers[1].current == "cancelled"
    assert isinstance(answers[2], ValueError)
    for job, answer, n in ((running[0], answers[0], 1), (running[2], answers[3], 4)):
        assert isinstance(answer, Finished)
        stored = await tx(storage, jobs.get_job_by_id, job.id)
        assert (stored.status, stored.avatar_id) == ("done", answer.avatar_id)
        avatar = await tx(storage, avatars.get_avatar, answer.public_id, alice)
        assert (avatar.job_id, avatar.prompt, avatar.blob_key) == (job.id, f"picture {n}", answer.blob_key)
        assert await storage.read_image(avatar) == image(n)
    assert (await tx(storage, jobs.get_job_by_id, running[1].id)).status == "running"
    # Only the stored pictures' blobs are kept: the refused job's picture is gone again.
    assert set(storage.blobs.keys()) == {a.blob_key for a in answers if isinstance(a, Finished)}

    # Idempotent: the same results again give the same avatars and store nothing new.
    again = await storage.finish_jobs([results[0], results[3]])
    assert again == [answers[0], answers[3]]
    assert (await tx(storage, avatars.history, alice)).total == 2


async def test_finish_jobs_links_an_edit_to_its_parent(storage: Storage, alice: User) -> None:
    first = await make_job(storage, alice)
    await tx(storage, jobs.mark_running, first.id)
    (parent,) = await storage.finish_jobs([_result(first.id, 1)])
    assert isinstance(parent, Finished)
    edit, orphan = await make_job(storage, alice), await make_job(storage, alice)
    await tx(storage, jobs.mark_running_many, [edit.id, orphan.id])

    child, lost = await storage.finish_jobs(
        [_result(edit.id, 2, parent=parent.public_id), _result(orphan.id, 3, parent="no-such-avatar")]
    )

    assert isinstance(child, Finished) and isinstance(lost, NotFound)
    stored = await tx(storage, avatars.get_avatar, child.public_id, alice)
    assert stored.parent_id == parent.avatar_id


@pytest.mark.parametrize("concurrent", [2, 6])
async def test_concurrent_finishes_of_the_same_batch_store_it_once(
    storage: Storage, alice: User, concurrent: int
) -> None:
    batch = [await make_job(storage, alice) for _ in range(3)]
    await tx(storage, jobs.mark_running_many, [j.id for j in batch])
    results = [_result(job.id, n) for n, job in enumerate(batch)]

    answers = await asyncio.gather(*(storage.finish_jobs(results) for _ in range(concurrent)))

    assert all(a == answers[0] for a in answers)
    assert (await tx(storage, avatars.history, alice)).total == 3


async def test_the_job_store_completes_a_batch_with_one_call(storage: Storage, alice: User) -> None:
    store = SqlJobStore(storage)
    ids = await store.create_many(
        [({"prompt": f"p{n}"}, f"user:{alice.id}", "prompt") for n in range(2)], None
    )
    assert await store.mark_running_many(ids) == [None, None]
    result = {"png": image(7), "width": 8, "height": 8, "engine": "chibi", "spec": {}, "seed": 7}

    answers = await store.complete_many([(ids[0], result), (ids[1], {**result, "png": image(8)})])

    assert [sorted(a) for a in answers] == [["avatar_id", "blob_key", "public_id"]] * 2
    assert await store.complete(ids[0], result) == answers[0]  # idempotent, one job at a time too
