"""The head start (generation/pool.py ``LocalPool.head_start``): with nothing queued or running, a lone
request of an engine that draws one request per call is drawn while its job row is written, and its batch
takes that drawing over. The job is still recorded before anything of it is stored or reported; a picture
whose row never came is never stored; a crash or a cancel during the head start acts as on any batch."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from generation.engines import engine_spec
from generation.jobs import RunBatch
from generation.pool import LocalPool, PoolHooks, PoolLimits
from generation.service import GenerationService, JobCancelled, ServiceStopped
from storage import Storage
from storage.jobstore import SqlJobStore

from .service_kit import (
    SEQ,
    MakeService,
    avatars_per_job,
    count_lines,
    jobs_in_db,
    poll,
    req,
    result_of,
    wait_event,
)

SLOW = "slowseq=tests.generation.fake_engines:SlowOneAtATimeEngine"


class SlowRows(SqlJobStore):
    """A job store whose ``create_many`` runs ``before`` first: the test decides what happens while the
    row is being written."""

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        self.before: Any = None

    async def create_many(self, items: Any, deliver: Any) -> list[int]:
        if self.before is not None:
            before, self.before = self.before, None
            await before()
        return await super().create_many(items, deliver)


StartSlow = Callable[..., Awaitable[tuple[SlowRows, GenerationService]]]


@pytest.fixture
def start_slow(storage: Storage, make_service: MakeService) -> StartSlow:
    """``await start_slow(**options)``: a service (``make_service`` options) on a :class:`SlowRows` store."""

    async def start(**options: Any) -> tuple[SlowRows, GenerationService]:
        store = SlowRows(storage)
        return store, await make_service(job_store=store, **options)

    return start


async def test_a_lone_request_is_drawn_while_its_row_is_written_and_only_once(
    storage: Storage, start_slow: StartSlow, tmp_path: Path
) -> None:
    store, service = await start_slow()
    drawn, gate = tmp_path / "drawn", tmp_path / "gate"

    async def before() -> None:
        await poll(drawn.exists, "the drawing to start before the job row exists")
        assert await jobs_in_db(storage) == {}
        gate.touch()

    store.before = before
    handle = await service.submit(req("a", f"count:{drawn},gate:{gate}", n=7, engine="seq"))

    await wait_event(handle, "started")
    result = await result_of(handle)
    assert result.stored["avatar_id"]
    assert count_lines(drawn) == ["7"]  # the batch took the drawing over: not drawn again
    assert await avatars_per_job(storage) == {handle.job_id: 1}
    assert (await jobs_in_db(storage))[handle.job_id][:2] == ("done", 0)


async def test_a_request_whose_row_is_not_written_is_never_stored(
    storage: Storage, start_slow: StartSlow, tmp_path: Path
) -> None:
    store, service = await start_slow()
    drawn = tmp_path / "drawn"

    async def before() -> None:
        await poll(drawn.exists, "the head start")
        raise OSError("the disk is full")

    store.before = before
    with pytest.raises(OSError, match="disk is full"):
        await service.submit(req("a", f"count:{drawn}", n=1, engine="seq"))

    after = await service.submit(req("a", f"count:{drawn}", n=2, engine="seq"))
    await result_of(after)
    assert await avatars_per_job(storage) == {after.job_id: 1}
    assert list(await jobs_in_db(storage)) == [after.job_id]
    assert count_lines(drawn) == ["1", "2"]


async def test_another_users_job_waits_for_the_head_start_and_both_are_drawn_once(
    storage: Storage, start_slow: StartSlow, tmp_path: Path
) -> None:
    store, service = await start_slow()
    drawn, gate = tmp_path / "drawn", tmp_path / "gate"
    other_done = asyncio.Event()

    async def before() -> None:
        await poll(drawn.exists, "the head start")
        other = asyncio.ensure_future(service.submit(req("b", f"count:{drawn}", n=2, engine="seq")))
        gate.touch()
        await result_of(await other)  # b's job is done while a's row is still not written
        other_done.set()

    store.before = before
    first = await service.submit(req("a", f"count:{drawn},gate:{gate}", n=1, engine="seq"))

    assert other_done.is_set()
    await result_of(first)
    assert sorted(count_lines(drawn)) == ["1", "2"]  # a was drawn once, before b
    assert count_lines(drawn)[0] == "1"
    assert sorted(await avatars_per_job(storage)) == sorted(await jobs_in_db(storage))


async def test_a_worker_killed_during_a_head_start_is_replaced_and_the_job_retried(
    storage: Storage, start_slow: StartSlow, tmp_path: Path
) -> None:
    store, service = await start_slow()
    drawn, gate = tmp_path / "drawn", tmp_path / "gate"
    killed: list[int] = []

    async def before() -> None:
        await poll(drawn.exists, "the head start")
        pid = service.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        gate.touch()

    store.before = before
    handle = await service.submit(req("a", f"count:{drawn},gate:{gate}", n=3, engine="seq"))

    await result_of(handle)
    assert service.worker_pid not in (None, *killed)
    assert count_lines(drawn) == ["3", "3"]  # drawn again after the crash
    assert await avatars_per_job(storage) == {handle.job_id: 1}
    assert (await jobs_in_db(storage))[handle.job_id][:2] == ("done", 1)  # one run lost to the crash


async def test_cancelling_a_job_drawn_from_its_head_start_stops_the_engine(
    storage: Storage, make_service: MakeService
) -> None:
    # One picture costs 60 s: only a cancel that reaches the engine (under the head start's own id)
    # frees the worker within the test's deadline.
    service = await make_service(engines=(SEQ, SLOW), job_timeout_s=120)
    running = await service.submit(req("a", engine="slowseq"))
    await wait_event(running, "step")
    assert await running.cancel()
    with pytest.raises(JobCancelled):
        await result_of(running)

    after = await service.submit(req("b", "count:" + os.devnull, engine="seq"))

    await result_of(after)
    assert await avatars_per_job(storage) == {after.job_id: 1}


async def test_cancelling_a_queued_job_stops_its_head_start(storage: Storage, start_slow: StartSlow) -> None:
    """The job is cancelled after its row is written and before its batch leaves (another batch is in
    the way): the engine stops the drawing that started ahead of it."""
    store, service = await start_slow(engines=(SEQ, SLOW), job_timeout_s=120)
    handles: list[Any] = []

    async def before() -> None:
        # b's job is written first: its batch leaves first and waits for a's drawing to end.
        handles.append(await service.submit(req("b", engine="seq")))

    store.before = before
    first = await service.submit(req("a", engine="slowseq"))

    async def status(job_id: int) -> str:
        return (await jobs_in_db(storage))[job_id][0]

    for _ in range(300):  # b's batch has left (recorded running), while a waits
        if await status(handles[0].job_id) == "running":
            break
        await asyncio.sleep(0.01)
    assert (await status(handles[0].job_id), await status(first.job_id)) == ("running", "queued")

    assert await first.cancel()

    with pytest.raises(JobCancelled):
        await result_of(first)
    await result_of(handles[0])  # within the deadline: the 60 s drawing was stopped
    assert list(await avatars_per_job(storage)) == [handles[0].job_id]


async def test_stopping_while_a_row_is_written_leaves_the_job_queued_for_the_next_start(
    storage: Storage, start_slow: StartSlow, tmp_path: Path
) -> None:
    store, service = await start_slow(engines=(SEQ, SLOW), job_timeout_s=120)
    stopping: list[asyncio.Future[None]] = []

    async def before() -> None:
        await asyncio.sleep(0.1)  # the head start is under way
        stopping.append(asyncio.ensure_future(service.stop(drain_timeout=0.5)))
        await asyncio.sleep(0)

    store.before = before
    handle = await service.submit(req("a", engine="slowseq"))

    with pytest.raises(ServiceStopped):
        await result_of(handle)
    async with asyncio.timeout(30):
        await stopping[0]  # the 60 s drawing does not hold the stop up
    assert [status for status, _, _ in (await jobs_in_db(storage)).values()] == ["queued"]
    assert await avatars_per_job(storage) == {}


class _Heard:
    """A batch listener that keeps what it hears (the pool's side of the service)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def update(self, message: Any) -> None:
        self.messages.append(message)

    def outcome(self, outcome: Any, run_s: float) -> Any:  # pragma: no cover - the local pool reports
        raise AssertionError("the local pool reports outcomes in its BatchReport")


async def test_a_head_start_drawn_again_in_a_batch_with_others_is_never_taken_over_later(
    tmp_path: Path,
) -> None:
    """The dispatcher may put the head-started request in a batch with another user's (their rows were
    written first): that batch draws it, and a later batch of it alone (a retry) draws it again instead
    of taking over the stale head start."""
    drawn = tmp_path / "drawn"
    pool = LocalPool([engine_spec(SEQ)])
    pool.attach(cast(PoolHooks, None), PoolLimits(job_timeout_s=30, max_attempts=2, max_batch=4))
    await pool.start()
    try:
        first = req("a", f"count:{drawn}", n=1, engine="seq")
        other = req("b", f"count:{drawn}", n=2, engine="seq")
        assert pool.head_start(first)
        together = await pool.run_batch(RunBatch(1, ((12, other), (11, first))), _Heard())
        before = count_lines(drawn)
        alone = await pool.run_batch(RunBatch(2, ((11, first),)), _Heard())
    finally:
        await pool.stop(5)

    assert [o.job_id for o in together.outcomes] == [12, 11] and not together.lost
    assert before[-2:] == ["2", "1"]
    assert [o.job_id for o in alone.outcomes] == [11] and alone.outcomes[0].result is not None
    assert count_lines(drawn) == [*before, "1"]  # drawn again, not the stale head start
