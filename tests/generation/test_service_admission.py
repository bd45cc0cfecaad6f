"""Whole-request admission: ``submit_many`` admits all the jobs of a request or none, checked against the
per-user and total caps at once, and concurrent requests near a cap cannot knock each other out. The
worker is really stopped (SIGSTOP) so that nothing finishes while the caps are tested; the jobs table is
checked for rows of refused requests."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from generation.jobs import Delivery
from generation.service import GenerationService, JobHandle, QueueFull
from storage import Storage
from storage.jobstore import SqlJobStore
from tests.generation.service_kit import MakeService, jobs_in_db, req, result_of


@contextmanager
def frozen(service: GenerationService) -> Iterator[None]:
    """The worker process is stopped with SIGSTOP: whatever it was given never finishes meanwhile."""
    pid = service.worker_pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def outcomes(calls: Sequence[Any]) -> list[list[JobHandle] | QueueFull]:
    """Run the submit_many calls concurrently; each gives its handles or its QueueFull."""
    got: list[list[JobHandle] | QueueFull] = []
    for r in await asyncio.gather(*calls, return_exceptions=True):
        if isinstance(r, BaseException) and not isinstance(r, QueueFull):
            raise r
        got.append(r)
    return got


async def test_twelve_requests_of_four_against_a_total_cap_of_twenty(
    storage: Storage, make_service: MakeService
) -> None:
    service = await make_service(max_queued_total=20, max_queued_per_user=5, max_batch=4)
    with frozen(service):
        got = await outcomes(
            [
                service.submit_many(
                    [req(f"u{u}", n=10 * u + i) for i in range(4)], deliver=Delivery(group=f"req{u}")
                )
                for u in range(12)
            ]
        )
        admitted = [r for r in got if isinstance(r, list)]
        refused = [r for r in got if isinstance(r, QueueFull)]

        assert (len(admitted), len(refused)) == (5, 7)
        assert all(len(handles) == 4 for handles in admitted)
        for exc in refused:
            assert exc.scope == "global" and exc.retry_after_s >= 1
            assert str(exc).startswith("busy, try again in ~") and "(the queue is full)" in str(exc)
        # Every row belongs to an admitted request: nothing of a refused one was written.
        admitted_ids = {h.job_id for handles in admitted for h in handles}
        rows = await jobs_in_db(storage)
        assert set(rows) == admitted_ids and len(admitted_ids) == 20
        for handles in admitted:  # one request: one user, one delivery
            assert len({h.deliver for h in handles}) == 1 and len({h.request.user_key for h in handles}) == 1
        # Full: even one more picture is refused, and writes nothing.
        with pytest.raises(QueueFull):
            await service.submit(req("late"))
        assert set(await jobs_in_db(storage)) == admitted_ids
    # The worker goes on: every admitted job is done.
    for handles in admitted:
        assert [(await result_of(h)).job_id for h in handles] == [h.job_id for h in handles]


async def test_one_users_concurrent_requests_near_the_cap_are_each_whole_or_refused(
    storage: Storage, make_service: MakeService
) -> None:
    service = await make_service(max_queued_per_user=5)
    with frozen(service):
        got = await outcomes(
            [service.submit_many([req("a", n=10 * k + i) for i in range(2)]) for k in range(3)]
        )
        admitted = [r for r in got if isinstance(r, list)]
        refused = [r for r in got if isinstance(r, QueueFull)]
        assert (len(admitted), len(refused)) == (2, 1)  # 2 + 2 fit under 5; 2 more would not
        assert refused[0].scope == "user" and "you already have 4 pictures waiting" in str(refused[0])
        assert set(await jobs_in_db(storage)) == {h.job_id for handles in admitted for h in handles}
        # A single picture still fits.
        fifth = await service.submit(req("a", n=99))
    for handle in [*(h for handles in admitted for h in handles), fifth]:
        await result_of(handle)


async def test_a_guild_limit_applies_to_the_whole_request(
    storage: Storage, make_service: MakeService
) -> None:
    service = await make_service(max_queued_per_user=10)
    with frozen(service):
        with pytest.raises(QueueFull) as too_many:
            await service.submit_many([req("a", n=i) for i in range(4)], user_limit=3)
        assert too_many.value.scope == "user" and "you asked for 4 pictures" in str(too_many.value)
        first = await service.submit_many([req("a", n=i) for i in range(2)], user_limit=3)
        with pytest.raises(QueueFull) as busy:
            await service.submit_many([req("a", n=i) for i in range(2)], user_limit=3)
        assert busy.value.scope == "user" and str(busy.value).startswith("busy, try again in ~")
        # Without the guild's limit the service's own cap (10) applies.
        more = await service.submit_many([req("a", n=i) for i in range(4)])
        assert set(await jobs_in_db(storage)) == {h.job_id for h in (*first, *more)}
    for handle in (*first, *more):
        await result_of(handle)


async def test_bad_requests_are_refused_before_anything_is_written(
    storage: Storage, make_service: MakeService
) -> None:
    service = await make_service()
    assert await service.submit_many([]) == []
    with pytest.raises(ValueError, match="same user_key"):
        await service.submit_many([req("a"), req("b")])
    with pytest.raises(ValueError, match="not available"):
        await service.submit_many([req("a"), req("a", engine="diffusion")])
    assert await jobs_in_db(storage) == {}


class FailingCreates(SqlJobStore):
    """The real job store, except that ``create_many`` fails while ``broken`` is set."""

    broken = True

    async def create_many(
        self, items: Sequence[tuple[dict[str, Any], str, str]], deliver: dict[str, Any] | None
    ) -> list[int]:
        if self.broken:
            raise ConnectionError("the database went away")
        return await super().create_many(items, deliver)


async def test_a_request_the_store_could_not_write_gives_its_places_back(
    storage: Storage, make_service: MakeService
) -> None:
    store = FailingCreates(storage)
    service = await make_service(job_store=store, max_queued_per_user=4, max_queued_total=4)
    with pytest.raises(ConnectionError):
        await service.submit_many([req("a", n=i) for i in range(4)])
    assert await jobs_in_db(storage) == {}
    store.broken = False
    handles = await service.submit_many([req("a", n=i) for i in range(4)])  # the four places are free
    assert [(await result_of(h)).job_id for h in handles] == [h.job_id for h in handles]
