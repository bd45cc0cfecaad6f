"""Faults with workers on a broker, done for real: SIGKILL and SIGSTOP/SIGCONT of ``chibify worker``
processes, SIGTERM, a worker that keeps crashing, a job that hangs, the broker restarted mid-run, the bot
restarted, and two bot processes sharing three workers. Every job is counted: submitted = done once, none
lost, none twice (one avatar per job, one run per job unless a worker died under it).

ack_wait is short here (2 s), so a dead worker's jobs move on within seconds."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from generation.jobs import ProgressEvent
from generation.service import GenerationService, JobHandle, ServiceStopped
from storage import Storage
from tests.generation.broker_kit import (
    FAKE_ENGINES,
    broker_service,
    serving,
    start_broker_service,
    wait_for,
    wait_workers,
)
from tests.generation.nats_kit import NatsServer, WorkerProcess, running_nats
from tests.generation.service_kit import (
    avatars_per_job,
    count_lines,
    failure_of,
    jobs_in_db,
    req,
    result_of,
    wait_event,
)

SpawnWorker = Callable[..., WorkerProcess]


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """The broker's tests run on SQLite only (the store's behaviour on PostgreSQL is tested elsewhere)."""
    return sqlite_url


async def all_done_once(storage: Storage, handles: list[JobHandle]) -> None:
    rows = await jobs_in_db(storage)
    assert {rows[h.job_id][0] for h in handles} == {"done"}
    assert await avatars_per_job(storage) == {h.job_id: 1 for h in handles}


async def test_a_worker_killed_mid_batch_its_jobs_are_done_by_another(
    storage: Storage,
    nats_server: NatsServer,
    spawn_worker: SpawnWorker,
    services: list[GenerationService],
    tmp_path: Path,
) -> None:
    config = nats_server.config(ack_wait_s=2.0)
    runs, gate = tmp_path / "runs", tmp_path / "gate"
    w1 = spawn_worker(config, FAKE_ENGINES, worker_id="w1")
    service = await serving(services, storage, config, ("w1",), max_batch=3, batch_window_s=2.0)
    handles = list(
        await asyncio.gather(
            *(service.submit(req(f"u{i}", f"count:{runs},gate:{gate}", n=i)) for i in range(3))
        )
    )
    await wait_event(handles[0], "step")  # w1 holds the batch of three, stuck at the gate of the first
    spawn_worker(config, FAKE_ENGINES, worker_id="w2")
    await wait_workers(service, "w2", idle=False)
    w1.signal_group(signal.SIGKILL)
    gate.touch()
    for h in handles:
        await result_of(h)

    await all_done_once(storage, handles)
    # w1 reached the first job (and was killed there); w2 drew all three, each alone.
    assert sorted(count_lines(runs)) == ["0", "0", "1", "2"]
    await wait_for(lambda: "w1" not in {w.worker_id for w in service.workers()}, "w1 to be taken as gone")


async def test_a_frozen_worker_late_result_is_discarded(
    storage: Storage,
    nats_server: NatsServer,
    spawn_worker: SpawnWorker,
    services: list[GenerationService],
    tmp_path: Path,
) -> None:
    config = nats_server.config(ack_wait_s=2.0)
    gate = tmp_path / "gate"
    w1 = spawn_worker(config, FAKE_ENGINES, worker_id="w1")
    service = await serving(services, storage, config, ("w1",))
    handle = await service.submit(req("a", f"gate:{gate}", n=1))
    await wait_event(handle, "step")
    w1.signal_group(signal.SIGSTOP)  # frozen, connection open: only ack_wait can tell
    gate.touch()
    spawn_worker(config, FAKE_ENGINES, worker_id="w2")
    result = await result_of(handle)  # w2 drew it after ack_wait
    assert result.job_id == handle.job_id

    w1.signal_group(signal.SIGCONT)
    await wait_for(lambda: w1.said("dropping its late outcome"), "w1 to drop its late result", 30)
    await all_done_once(storage, [handle])
    # w1 goes on serving after it woke up.
    await wait_workers(service, "w1", "w2")
    more = [await service.submit(req(f"b{i}", n=10 + i)) for i in range(4)]
    for h in more:
        await result_of(h)
    await all_done_once(storage, [handle, *more])


async def test_a_job_that_keeps_crashing_workers_fails_and_its_neighbours_are_done(
    storage: Storage, nats_server: NatsServer, spawn_worker: SpawnWorker, services: list[GenerationService]
) -> None:
    config = nats_server.config()
    spawn_worker(config, FAKE_ENGINES, worker_id="w1")
    spawn_worker(config, FAKE_ENGINES, worker_id="w2")
    service = await serving(
        services,
        storage,
        config,
        ("w1", "w2"),
        max_attempts=2,
    )
    crash, *neighbours = await asyncio.gather(
        service.submit(req("a", "crash", n=1)), *(service.submit(req(f"b{i}", n=2 + i)) for i in range(3))
    )
    failure = await failure_of(crash)
    assert failure.reason == "the generator crashed while drawing it"
    for h in neighbours:
        await result_of(h)
    rows = await jobs_in_db(storage)
    assert rows[crash.job_id][0] == "failed"
    await all_done_once(storage, neighbours)


async def test_a_job_that_hangs_fails_with_took_too_long(
    storage: Storage, nats_server: NatsServer, spawn_worker: SpawnWorker, services: list[GenerationService]
) -> None:
    config = nats_server.config()
    spawn_worker(config, FAKE_ENGINES, worker_id="w1")
    service = await serving(services, storage, config, ("w1",), job_timeout_s=1.0)
    hung = await service.submit(req("a", "hang", n=1, engine="seq"))
    failure = await failure_of(hung)
    assert failure.reason == "took too long (over 1 s)"
    after = await service.submit(req("b", n=2))  # the worker replaced its engine process and goes on
    assert (await result_of(after)).job_id == after.job_id
    await all_done_once(storage, [after])
    assert (await jobs_in_db(storage))[hung.job_id][0] == "failed"


async def test_sigterm_finishes_the_batch_in_hand_then_the_worker_leaves(
    storage: Storage,
    nats_server: NatsServer,
    spawn_worker: SpawnWorker,
    services: list[GenerationService],
    tmp_path: Path,
) -> None:
    config = nats_server.config()
    gate, runs = tmp_path / "gate", tmp_path / "runs"
    w1 = spawn_worker(config, FAKE_ENGINES, worker_id="w1")
    service = await serving(services, storage, config, ("w1",))
    handle = await service.submit(req("a", f"count:{runs},gate:{gate}", n=1))
    await wait_event(handle, "step")
    w1.process.send_signal(signal.SIGTERM)
    await wait_for(lambda: w1.said("stopping"), "w1 to start leaving")
    assert w1.process.poll() is None  # still drawing
    gate.touch()
    await result_of(handle)
    assert await asyncio.to_thread(w1.process.wait, 30) == 0
    await all_done_once(storage, [handle])
    assert count_lines(runs) == ["1"]  # drawn once: nobody had to take it over
    await wait_for(lambda: not service.workers(), "w1 to leave the list")


async def test_a_broker_restart_mid_run_loses_nothing(
    storage: Storage, spawn_worker: SpawnWorker, services: list[GenerationService], tmp_path: Path
) -> None:
    with running_nats(tmp_path / "nats") as server:
        config = server.config(ack_wait_s=3.0)
        engine = "synthetic(per_batch_s=0.05,per_item_s=0.05)"
        spawn_worker(config, engine, worker_id="w1")
        spawn_worker(config, engine, worker_id="w2")
        service = await serving(
            services,
            storage,
            config,
            ("w1", "w2"),
            max_queued_per_user=20,
        )
        handles = [await service.submit(req(f"u{i % 4}", n=i, engine="synthetic")) for i in range(24)]
        await wait_for(lambda: sum(h.done() for h in handles) >= 4, "a few results")
        await asyncio.to_thread(server.restart, signal.SIGKILL)  # the broker dies mid-run, and comes back
        for h in handles:
            await result_of(h)
        await all_done_once(storage, handles)
        await wait_workers(service, "w1", "w2")  # both workers reconnected
        for service in services:  # before the server goes
            await service.stop(drain_timeout=0.5)
        services.clear()


async def test_a_bot_restart_collects_what_finished_while_it_was_away(
    storage: Storage, nats_server: NatsServer, spawn_worker: SpawnWorker, tmp_path: Path
) -> None:
    config = nats_server.config()
    gate, runs = tmp_path / "gate", tmp_path / "runs"
    spawn_worker(config, FAKE_ENGINES, worker_id="w1", max_batch=2)
    first = await broker_service(storage, config, owner="bot", max_batch=2)
    try:
        await wait_workers(first, "w1")
        handles = await first.submit_many([req("a", f"count:{runs},gate:{gate}", n=i) for i in range(5)])
        await wait_event(handles[0], "step")  # two are with the worker
    finally:
        await first.stop(drain_timeout=0.1)
    for h in handles:
        with pytest.raises(ServiceStopped):
            await result_of(h)
    rows = await jobs_in_db(storage)
    # Two are with the worker, more may wait in the stream for it (running), the rest in the bot (queued).
    statuses = [status for status, _, _ in rows.values()]
    assert len(statuses) == 5 and statuses.count("running") >= 2 and set(statuses) <= {"queued", "running"}
    gate.touch()  # the worker finishes while the bot is down; the results wait in the broker

    second, recovered = await start_broker_service(storage, config, owner="bot", max_batch=2)
    try:
        assert sorted(h.job_id for h in recovered) == sorted(h.job_id for h in handles)
        for h in recovered:  # the bot delivers these to h.deliver
            assert (await result_of(h)).stored["public_id"]
    finally:
        await second.stop(drain_timeout=0.5)
    await all_done_once(storage, handles)
    assert sorted(count_lines(runs)) == ["0", "1", "2", "3", "4"]  # none drawn twice


async def test_two_bots_three_workers_a_flood_delays_a_single_job_by_at_most_a_batch_per_worker(
    storage: Storage, sqlite_url: str, nats_server: NatsServer, spawn_worker: SpawnWorker, tmp_path: Path
) -> None:
    config = nats_server.config()
    # 50 progress steps per batch: a job's first step is within a few ms of its start
    engine = "synthetic(per_batch_s=0.15,per_item_s=0.02,steps=50)"
    workers = [spawn_worker(config, engine, worker_id=f"w{i}", max_batch=4) for i in range(3)]
    other = await Storage.open(sqlite_url, tmp_path / "data")
    bot_a = await broker_service(storage, config, owner="bot-a", max_batch=4, max_queued_per_user=60)
    bot_b = await broker_service(other, config, owner="bot-b", max_batch=4, max_queued_per_user=60)
    try:
        await wait_workers(bot_a, *(w.worker_id for w in workers))
        await wait_workers(bot_b, *(w.worker_id for w in workers))
        first_step: dict[int, float] = {}

        def watch(handle: JobHandle) -> None:
            """Note when the first step of the job arrives (at its arrival, not when a reader wakes)."""
            emit = handle.emit

            def noting(event: ProgressEvent) -> None:
                if event.kind == "step" and handle.job_id not in first_step:
                    first_step[handle.job_id] = time.monotonic()
                emit(event)

            handle.emit = noting  # type: ignore[method-assign]

        flood = await bot_a.submit_many([req("flood", n=i, engine="synthetic") for i in range(48)])
        for h in flood:
            watch(h)
        await wait_for(lambda: len(first_step) >= 12, "the flood to be drawing on every worker")
        asked = time.monotonic()
        single = await bot_b.submit(req("single", n=100, engine="synthetic"))
        watch(single)
        await result_of(single)
        started = first_step[single.job_id]
        # Flood jobs that started after the single job was asked for, in an earlier batch than its own
        # (the jobs of one batch start together: their first steps arrive within a few ms).
        overtaking = [
            j for j in (h.job_id for h in flood) if j in first_step and asked < first_step[j] < started - 0.02
        ]
        # Each of the three workers may start at most one more batch (4 jobs) of the flood first.
        assert len(overtaking) <= 3 * 4, (len(overtaking), sorted(first_step.values()))
        for h in flood:
            await result_of(h)
        await all_done_once(storage, [*flood, single])
    finally:
        await bot_a.stop(drain_timeout=0.5)
        await bot_b.stop(drain_timeout=0.5)
        await other.close()
