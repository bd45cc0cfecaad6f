"""Generation through NATS JetStream, for real: the session's own nats-server, real ``chibify worker``
processes (tests/generation/nats_kit.py), the jobs table on SQLite. The ordinary path, engines advertised
by workers, cancellation that reaches the engine, and the listing of live workers."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from generation.broker.pool import NatsPool
from generation.jobs import Delivery
from generation.service import GenerationService, JobCancelled, QueueFull
from storage import Storage
from tests.generation.broker_kit import FAKE_ENGINES, broker_service, serving, wait_for, wait_workers
from tests.generation.nats_kit import ROOT, NatsServer, WorkerProcess
from tests.generation.service_kit import avatars_per_job, jobs_in_db, req, result_of, wait_event

SpawnWorker = Callable[..., WorkerProcess]


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """The broker's tests run on SQLite only (the store's behaviour on PostgreSQL is tested elsewhere)."""
    return sqlite_url


async def test_jobs_run_on_remote_workers_and_each_makes_one_avatar(
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
        max_queued_per_user=10,
    )
    assert service.worker_pid is None  # no local worker with a broker
    where = Delivery(group="g1", channel_id=42)
    handles = [await service.submit(req(f"u{i % 3}", n=i), deliver=where) for i in range(12)]
    results = [await result_of(h) for h in handles]

    assert [r.job_id for r in results] == [h.job_id for h in handles]
    for r in results:
        assert r.png.startswith(b"\x89PNG") and (r.width, r.height) == (32, 32)
        assert r.stored["public_id"]
    rows = await jobs_in_db(storage)
    assert {status for status, _, _ in rows.values()} == {"done"}
    assert await avatars_per_job(storage) == {h.job_id: 1 for h in handles}
    kinds = [e.kind async for e in handles[0].events()]
    assert kinds[0] == "queued" and "started" in kinds and "step" in kinds and kinds[-1] == "done"
    workers = {w.worker_id: w for w in service.workers()}
    assert set(workers) == {"w1", "w2"}
    assert set(workers["w1"].engines) == {"fake", "seq"}
    # "seq" draws one request per call: a lone job of it is published without waiting for company
    assert workers["w1"].one_at_a_time == ("seq",)
    pool = service.pool
    assert isinstance(pool, NatsPool)
    assert pool.draws_one_at_a_time("seq") and not pool.draws_one_at_a_time("fake")
    await wait_for(lambda: sum(w.jobs_served for w in service.workers()) == 12, "the workers' counts")


async def test_a_job_for_an_engine_no_worker_serves_says_so_and_runs_when_one_comes(
    storage: Storage, nats_server: NatsServer, spawn_worker: SpawnWorker, services: list[GenerationService]
) -> None:
    config = nats_server.config()
    spawn_worker(config, FAKE_ENGINES, worker_id="w1")
    service = await serving(services, storage, config, ("w1",))
    handle = await service.submit(req("a", n=1, engine="synthetic"))
    event = await wait_event(handle, "position")
    assert event.message == handle.message == "no worker serves 'synthetic' yet"
    assert (await result_of(await service.submit(req("b", n=2)))).png  # other engines go on meanwhile
    spawn_worker(config, "synthetic(per_batch_s=0.01,per_item_s=0)", worker_id="w2")
    assert (await result_of(handle)).engine == "synthetic"
    assert handle.message == ""


async def test_a_photo_reaches_the_worker_from_the_bots_memory_in_chunks(
    storage: Storage, nats_server: NatsServer, spawn_worker: SpawnWorker, services: list[GenerationService]
) -> None:
    config = nats_server.config()
    spawn_worker(config, "photo=tests.generation.fake_engines:PhotoEngine", worker_id="w1")
    service = await serving(services, storage, config, ("w1",), engines=("photo",))
    photo = os.urandom(2_500_000)  # bigger than one message (1 MB): it travels in chunks
    request = dataclasses.replace(req("a", n=1, engine="photo"), kind="selfie", init_image=photo)
    result = await result_of(await service.submit(request))
    assert result.spec["photo_bytes"] == len(photo)
    assert result.spec["photo_sha"] == hashlib.sha256(photo).hexdigest()
    # The photo is in no stream: only the bot's memory held it, and not any more.
    assert not service.pool._photos  # type: ignore[attr-defined]


async def test_the_console_says_no_worker_serves_the_engine_within_seconds(
    nats_server: NatsServer, sqlite_url: str, tmp_path: Path
) -> None:
    config = nats_server.config()
    env = {
        **os.environ,
        "CHIBIFY_BROKER_URL": config.url,
        "CHIBIFY_BROKER_PREFIX": config.prefix,
        "CHIBIFY_DATABASE_URL": sqlite_url,
        "CHIBIFY_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
    }
    console = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "bot.cli",
            "avatar",
            "cat ears",
            "--engine",
            "diffusion",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert console.stderr is not None
        line = await asyncio.wait_for(console.stderr.readline(), 30)
        assert b"no worker serves 'diffusion' yet" in line, line
        assert console.returncode is None  # it waits; it never draws here
    finally:
        console.kill()
        await console.wait()
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob("*.png")))


async def test_cancelling_a_queued_and_a_running_job_reaches_the_engine(
    storage: Storage, nats_server: NatsServer, spawn_worker: SpawnWorker, services: list[GenerationService]
) -> None:
    config = nats_server.config()
    # One synthetic job costs 60 s: only a cancel that reaches the engine frees the worker in time.
    spawn_worker(config, "synthetic(per_batch_s=60,per_item_s=0,steps=600)", worker_id="w1")
    service = await serving(services, storage, config, ("w1",))
    running = await service.submit(req("a", n=1, engine="synthetic"))
    await wait_event(running, "step")  # it is in the engine
    queued = await service.submit(req("b", n=2, engine="synthetic"))
    assert queued.position() is not None

    assert await queued.cancel()
    assert await running.cancel()
    for handle in (queued, running):
        with pytest.raises(JobCancelled):
            await result_of(handle)
    # The worker is free long before 60 s: the engine stopped between steps.
    await wait_workers(service, "w1")
    rows = await jobs_in_db(storage)
    assert rows[queued.job_id][0] == rows[running.job_id][0] == "cancelled"
    assert await avatars_per_job(storage) == {}
    assert not await running.cancel()  # already finished


async def test_per_user_caps_hold_across_bot_processes(
    storage: Storage,
    sqlite_url: str,
    tmp_path: Path,
    nats_server: NatsServer,
    services: list[GenerationService],
) -> None:
    config = nats_server.config()  # no workers: everything stays queued
    other_storage = await Storage.open(sqlite_url, tmp_path / "data")
    try:
        a = await broker_service(storage, config, owner="bot-a", max_queued_per_user=5)
        b = await broker_service(other_storage, config, owner="bot-b", max_queued_per_user=5)
        services += [a, b]
        await a.submit_many([req("alice", n=i) for i in range(3)])
        with pytest.raises(QueueFull) as info:
            await b.submit_many([req("alice", n=i) for i in range(3)])
        assert "you already have 3 pictures waiting" in str(info.value)
        assert len(await b.submit_many([req("alice", n=i) for i in range(2)])) == 2
        with pytest.raises(QueueFull):
            await a.submit(req("alice", n=9))
    finally:
        for service in services:
            await service.stop(drain_timeout=0.5)
        services.clear()
        await other_storage.close()


async def test_chibify_workers_lists_the_live_workers(
    nats_server: NatsServer, spawn_worker: SpawnWorker, tmp_path: Path
) -> None:
    config = nats_server.config()
    worker = spawn_worker(config, FAKE_ENGINES, worker_id="gpu-1")
    env = {
        **os.environ,
        "CHIBIFY_BROKER_URL": config.url,
        "CHIBIFY_BROKER_PREFIX": config.prefix,
        "PYTHONPATH": str(ROOT),
    }

    def listing(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "workers", *extra],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    await wait_for(lambda: worker.said("ready"), "the worker to be ready")
    rows = [json.loads(line) for line in listing("--json").stdout.splitlines()]
    assert [r["id"] for r in rows] == ["gpu-1"]
    assert set(rows[0]["engines"]) == {"fake", "seq"} and rows[0]["state"] == "idle"
    table = listing()
    assert table.returncode == 0 and "gpu-1" in table.stdout and "fake,seq" in table.stdout

    worker.process.terminate()  # SIGTERM: a clean goodbye removes it from the list
    assert await asyncio.to_thread(worker.process.wait, 30) == 0
    assert listing("--json").stdout.strip() == ""
    assert "no live workers" in listing().stdout
