"""Benchmark of the generation service (real worker process, real SQLite job store in a temp dir).

    .venv/bin/python -m bench.bench_service            # all sections, saves bench/results/service.json
    .venv/bin/python -m bench.bench_service --quick    # fewer jobs, for a smoke run
    .venv/bin/python -m bench.bench_service --profile 80   # only the one-user breakdown (docs/service.md)
    .venv/bin/python -m bench.bench_service --profile 80 --fast-engine 5   # the same with a 5 ms engine
    .venv/bin/python -m bench.bench_service --users-only --fast-engine 5   # section 1 (+1d) only; not saved

Sections:

1. users: 1, 10 and 50 concurrent users, each submitting 20 jobs one after another (submit, await the
   result, submit the next): jobs/s and p50/p95 submit -> result latency, with the chibi engine in the
   worker (or the synthetic engine, labelled as such, if generation.chibi cannot be loaded yet);
1b. profile: one user's jobs one after another, the time of each phase and of each job store call;
1c. memory: resident memory of the bot process and of the worker over 2,000 jobs;
1d. a faster engine: section 1 again with :class:`FixedCostEngine` (``--fast-engine MS``, default 5 ms:
    the drawing the renderer work of issue 16 is heading for): it burns MS ms of CPU per picture in the
    worker, one request per call like the chibi engine, and returns a distinct ~50 KB PNG each time
    (so every picture costs the store a real blob write), which shows what the bot process and the
    worker IPC cost per job once the drawing is cheap;
2. batching: a burst of jobs on the synthetic engine (fixed cost per batch + per item, like a GPU) with
   batching on (max_batch=8) and off (max_batch=1) in the same run;
3. crash recovery: SIGKILL the worker while a job runs; time from the kill to a new worker ready and to
   that job done (retried);
4. event-loop lag p99 while each load runs (a 5 ms ticker on the service's loop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from generation.engines import ENGINE_REGISTRY
from generation.jobs import EngineSpec, GenerationRequest
from generation.service import GenerationService
from generation.worker import WorkerStartError
from storage import Storage
from storage.jobstore import SqlJobStore

RESULTS = Path(__file__).resolve().parent / "results" / "service.json"

SYNTHETIC_COST = {"per_batch_s": 0.05, "per_item_s": 0.01}


def synthetic(per_batch_s: float, per_item_s: float) -> EngineSpec:
    return EngineSpec(
        "synthetic", ENGINE_REGISTRY["synthetic"], (("per_batch_s", per_batch_s), ("per_item_s", per_item_s))
    )


FAST_ENGINE_MS = 5.0


class FixedCostEngine:
    """A stand-in for a fast chibi renderer (section 1d): ``draw_ms`` of CPU per request, one request per
    engine call (``one_at_a_time``, like the chibi engine), and a distinct PNG of about ``png_kb`` KB per
    picture (noise pixels, so it neither compresses nor repeats: every result is a new blob)."""

    one_at_a_time = True

    def __init__(self, draw_ms: float = FAST_ENGINE_MS, png_kb: int = 50) -> None:
        import io
        import os as _os

        from PIL import Image  # worker side only

        self.draw_s = float(draw_ms) / 1000
        side = max(8, int((png_kb * 1024 / 3) ** 0.5))
        buffer = io.BytesIO()
        Image.frombytes("RGB", (side, side), _os.urandom(side * side * 3)).save(
            buffer, "PNG", compress_level=1
        )
        png = buffer.getvalue()
        self._head, self._iend = png[:-12], png[-12:]  # IEND is the last 12 bytes
        self._serial = 0

    def run_batch(self, requests: list[Any], progress: Callable[[int, int, int], None]) -> list[Any]:
        import struct
        import zlib

        from generation.jobs import GenerationResult

        out: list[Any] = []
        for index, request in enumerate(requests):
            started = time.perf_counter()
            while time.perf_counter() - started < self.draw_s:  # CPU, like a renderer
                pass
            self._serial += 1
            text = b"Comment\x00" + f"{os.getpid()}-{self._serial}-{request.spec}".encode()
            chunk = struct.pack(">I", len(text)) + b"tEXt" + text
            chunk += struct.pack(">I", zlib.crc32(b"tEXt" + text) & 0xFFFFFFFF)
            progress(index, 1, 1)
            out.append(
                GenerationResult(
                    png=self._head + chunk + self._iend,
                    width=request.size,
                    height=request.size,
                    engine="fast",
                    model=None,
                    spec=request.spec,
                    run_s=time.perf_counter() - started,
                )
            )
        return out


def fast_engine(draw_ms: float) -> EngineSpec:
    return EngineSpec("fast", "bench.bench_service:FixedCostEngine", (("draw_ms", draw_ms),))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class LagProbe:
    """Measures how late a 5 ms sleep wakes up on the running loop."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            self.lags.append(time.perf_counter() - started - 0.005)

    def __enter__(self) -> LagProbe:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def summary(self) -> dict[str, float]:
        return {
            "lag_p50_ms": round(pct(self.lags, 0.5) * 1000, 2),
            "lag_p99_ms": round(pct(self.lags, 0.99) * 1000, 2),
            "lag_max_ms": round(max(self.lags, default=0.0) * 1000, 2),
        }


async def with_service(
    store: SqlJobStore,
    engines: tuple[str | EngineSpec, ...],
    body: Callable[[GenerationService], Awaitable[Any]],
    **options: Any,
) -> Any:
    service = GenerationService(
        store,
        engines=engines,
        max_queued_per_user=1000,
        max_queued_total=100_000,
        job_timeout_s=120,
        **options,
    )
    await service.start()
    try:
        return await body(service)
    finally:
        await service.stop(drain_timeout=30)


def request(user: int, n: int, engine: str, size: int) -> GenerationRequest:
    return GenerationRequest(
        user_key=f"console:bench{user}", spec={"seed": user * 1000 + n}, engine=engine, size=size
    )


async def users_section(
    store: SqlJobStore,
    engine: EngineSpec | str,
    engine_name: str,
    size: int,
    jobs_each: int,
    users_list: list[int],
) -> list[dict[str, Any]]:
    rows = []
    for users in users_list:
        latencies: list[float] = []
        drawings: list[float] = []  # each job's own drawing time (GenerationResult.run_s)

        async def body(
            service: GenerationService,
            users: int = users,
            latencies: list[float] = latencies,
            drawings: list[float] = drawings,
        ) -> tuple[float, dict[str, float]]:
            async def user(u: int) -> None:
                for n in range(jobs_each):
                    t0 = time.perf_counter()
                    handle = await service.submit(request(u, n, engine_name, size))
                    result = await handle.result()
                    latencies.append(time.perf_counter() - t0)
                    drawings.append(result.run_s)

            with LagProbe() as probe:
                started = time.perf_counter()
                await asyncio.gather(*(user(u) for u in range(users)))
                elapsed = time.perf_counter() - started
            m = service.metrics
            run_s = m.value("chibify_generation_batch_run_seconds_sum") or 0.0
            items = m.value("chibify_generation_batch_size_sum") or 1.0
            batches = m.value("chibify_generation_batch_size_count") or 1.0
            extra = {
                "worker_ms_per_job": round(run_s / items * 1000, 1),
                "mean_batch_size": round(items / batches, 2),
            }
            return elapsed, {**probe.summary(), **extra}

        elapsed, lag = await with_service(store, (engine,), body, max_batch=4, batch_window_s=0.01)
        jobs = users * jobs_each
        row = {
            "users": users,
            "jobs": jobs,
            "seconds": round(elapsed, 3),
            "jobs_per_s": round(jobs / elapsed, 2),
            "latency_p50_ms": round(pct(latencies, 0.5) * 1000, 1),
            "latency_p95_ms": round(pct(latencies, 0.95) * 1000, 1),
            **lag,
        }
        # Relative to the drawing measured in the same run: the share of the worker's capacity (jobs/s
        # times drawing seconds per job) and the p50 overhead over the drawing time.
        row["capacity_share"] = round(row["jobs_per_s"] * row["worker_ms_per_job"] / 1000, 3)
        row["p50_over_drawing_ms"] = round(row["latency_p50_ms"] - row["worker_ms_per_job"], 1)
        # Robust to a few slow drawings (the mean above is not): the median drawing, and the median of each
        # job's latency minus its own drawing.
        row["drawing_p50_ms"] = round(pct(drawings, 0.5) * 1000, 1)
        row["overhead_p50_ms"] = round(
            pct([t - d for t, d in zip(latencies, drawings, strict=True)], 0.5) * 1000, 1
        )
        print(
            f"  {users:>3} users x {jobs_each}: {row['jobs_per_s']:>7} jobs/s "
            f"({row['capacity_share']:.0%} of drawing capacity)  p50 {row['latency_p50_ms']} ms "
            f"(drawing +{row['p50_over_drawing_ms']} ms)  "
            f"p95 {row['latency_p95_ms']} ms  loop lag p99 {row['lag_p99_ms']} ms  "
            f"worker {row['worker_ms_per_job']} ms/job (median {row['drawing_p50_ms']}), "
            f"batch {row['mean_batch_size']}, overhead p50 {row['overhead_p50_ms']} ms",
            flush=True,
        )
        rows.append(row)
    return rows


async def batching_section(store: SqlJobStore, jobs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"engine_cost": SYNTHETIC_COST, "jobs": jobs, "users": 20}
    for label, max_batch in (("batching_on", 8), ("batching_off", 1)):

        async def body(service: GenerationService) -> tuple[float, dict[str, float]]:
            with LagProbe() as probe:
                started = time.perf_counter()
                handles = [await service.submit(request(i % 20, i, "synthetic", 64)) for i in range(jobs)]
                await asyncio.gather(*(h.result() for h in handles))
                elapsed = time.perf_counter() - started
            return elapsed, probe.summary()

        elapsed, lag = await with_service(
            store, (synthetic(**SYNTHETIC_COST),), body, max_batch=max_batch, batch_window_s=0.05
        )
        out[label] = {
            "max_batch": max_batch,
            "seconds": round(elapsed, 3),
            "jobs_per_s": round(jobs / elapsed, 2),
            **lag,
        }
        print(
            f"  {label:<13} max_batch={max_batch}: {out[label]['jobs_per_s']} jobs/s ({elapsed:.2f} s)",
            flush=True,
        )
    out["speedup"] = round(out["batching_on"]["jobs_per_s"] / out["batching_off"]["jobs_per_s"], 2)
    print(f"  batching gain: x{out['speedup']}", flush=True)
    return out


async def crash_section(store: SqlJobStore, trials: int) -> dict[str, Any]:
    async def body(service: GenerationService) -> dict[str, Any]:
        to_ready: list[float] = []
        to_done: list[float] = []
        for trial in range(trials):
            handle = await service.submit(request(trial, 0, "synthetic", 64))
            async for event in handle.events():
                if event.kind == "step":
                    break
            pid = service.worker_pid
            assert pid is not None
            killed = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            retried = False
            async for event in handle.events():  # "queued" (retrying), then "started" on the new worker
                retried = retried or (event.kind == "queued" and event.message == "retrying")
                if retried and event.kind == "started":
                    break
            to_ready.append(time.perf_counter() - killed)
            await handle.result()
            to_done.append(time.perf_counter() - killed)
        return {
            "trials": trials,
            "kill_to_retry_started_ms_median": round(statistics.median(to_ready) * 1000, 1),
            "kill_to_job_done_ms_median": round(statistics.median(to_done) * 1000, 1),
            "kill_to_job_done_ms_max": round(max(to_done) * 1000, 1),
            "job_cost_ms": 60,
        }

    result: dict[str, Any] = await with_service(store, (synthetic(0.05, 0.01),), body, max_batch=1)
    print(
        f"  kill -> retry started on a new worker {result['kill_to_retry_started_ms_median']} ms, "
        f"kill -> retried job done {result['kill_to_job_done_ms_median']} ms (median of {trials})",
        flush=True,
    )
    return result


class TimedStore(SqlJobStore):
    """The real job store, timing each call (for ``--profile``)."""

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        self.spent: dict[str, list[float]] = {}

    async def _timed(self, name: str, call: Awaitable[Any]) -> Any:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self.spent.setdefault(name, []).append(time.perf_counter() - started)

    async def create_many(self, items: Any, deliver: Any) -> list[int]:
        return await self._timed("create_many", super().create_many(items, deliver))

    async def mark_running(self, job_id: int) -> None:
        await self._timed("mark_running", super().mark_running(job_id))

    async def complete(self, job_id: int, result: dict[str, Any]) -> dict[str, Any]:
        return await self._timed("complete", super().complete(job_id, result))

    async def mark_running_many(self, job_ids: Any) -> list[Exception | None]:
        return await self._timed("mark_running_many", super().mark_running_many(job_ids))

    async def complete_many(self, items: Any) -> list[dict[str, Any] | Exception]:
        return await self._timed("complete_many", super().complete_many(items))


async def profile_section(
    storage: Storage,
    jobs: int,
    engine: str | EngineSpec = "chibi",
    engine_name: str = "chibi",
    size: int = 512,
) -> dict[str, Any]:
    """One user, one job at a time: where the time from submit to result goes (medians, ms)."""
    store = TimedStore(storage)
    phases: dict[str, list[float]] = {
        "submit": [],
        "submit_to_started": [],
        "started_to_result": [],
        "total": [],
        "drawing": [],
        "total_minus_drawing": [],
    }

    async def body(service: GenerationService) -> dict[str, Any]:
        for n in range(jobs):
            t0 = time.perf_counter()
            handle = await service.submit(request(0, n, engine_name, size))
            t1 = time.perf_counter()
            started = t1
            async for event in handle.events():
                if event.kind == "started":
                    started = time.perf_counter()
            result = await handle.result()
            t3 = time.perf_counter()
            for key, value in (
                ("submit", t1 - t0),
                ("submit_to_started", started - t1),
                ("started_to_result", t3 - started),
                ("total", t3 - t0),
                ("drawing", result.run_s),
                ("total_minus_drawing", t3 - t0 - result.run_s),
            ):
                phases[key].append(value)
        m = service.metrics
        run_s = m.value("chibify_generation_batch_run_seconds_sum") or 0.0
        count = m.value("chibify_generation_batch_size_sum") or 1.0
        return {"worker_ms_per_job": round(run_s / count * 1000, 2)}

    extra = await with_service(store, (engine,), body, max_batch=4, batch_window_s=0.01)
    phases = {k: v[5:] for k, v in phases.items()}  # the first jobs warm things up
    out: dict[str, Any] = {k: round(statistics.median(v) * 1000, 2) for k, v in phases.items()}
    out.update({f"store_{k}": round(statistics.median(v) * 1000, 2) for k, v in store.spent.items()})
    out.update(extra)
    out["total_over_drawing"] = round(out["total"] - out["worker_ms_per_job"], 2)
    for key, value in out.items():
        print(f"  {key:<24} {value:>8} ms", flush=True)
    return out


def rss_mib(pid: int | None = None) -> float:
    """Resident memory of a process (this one by default), from /proc."""
    try:
        with open(f"/proc/{pid or 'self'}/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


async def memory_section(store: SqlJobStore, jobs: int, users: int = 20) -> dict[str, Any]:
    """Resident memory of the bot process and of the worker while ``jobs`` chibi jobs run (``users``
    users, closed loop), sampled every quarter."""
    each = jobs // users
    samples: list[dict[str, float]] = []

    async def body(service: GenerationService) -> None:
        done = 0

        def sample() -> None:
            samples.append(
                {"jobs": done, "service_mib": rss_mib(), "worker_mib": rss_mib(service.worker_pid)}
            )

        async def user(u: int) -> None:
            nonlocal done
            for n in range(each):
                handle = await service.submit(request(u, n, "chibi", 512))
                await handle.result()
                done += 1
                if done % (jobs // 4) == 0:
                    sample()

        # a short warm-up first, so that the first sample is taken with the caches filled
        for n in range(20):
            await (await service.submit(request(9999, n, "chibi", 512))).result()
        sample()
        await asyncio.gather(*(user(u) for u in range(users)))

    await with_service(store, ("chibi",), body, max_batch=4, batch_window_s=0.01)
    first, last = samples[0], samples[-1]
    out = {
        "jobs": each * users,
        "users": users,
        "samples": samples,
        "service_growth_mib": round(last["service_mib"] - first["service_mib"], 1),
        "worker_growth_mib": round(last["worker_mib"] - first["worker_mib"], 1),
    }
    print(
        f"  {out['jobs']} jobs: service RSS {first['service_mib']} -> {last['service_mib']} MiB, "
        f"worker {first['worker_mib']} -> {last['worker_mib']} MiB",
        flush=True,
    )
    return out


async def profile_only(jobs: int, fast_ms: float | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chibify-bench-") as tmp:
        storage = await Storage.open(None, tmp, upgrade=True)
        try:
            if fast_ms is not None:
                print(f"one user, {jobs} jobs one after another, {fast_ms:g} ms engine: medians", flush=True)
                return await profile_section(storage, jobs, fast_engine(fast_ms), "fast", 128)
            print(f"one user, {jobs} jobs one after another: medians", flush=True)
            return await profile_section(storage, jobs)
        finally:
            await storage.close()


async def users_only(quick: bool, fast_ms: float | None) -> None:
    logging.basicConfig(level=logging.WARNING)
    jobs_each = 5 if quick else 20
    with tempfile.TemporaryDirectory(prefix="chibify-bench-") as tmp:
        storage = await Storage.open(None, tmp, upgrade=True)
        store = SqlJobStore(storage)
        try:
            if fast_ms is None:
                print("1. concurrent users (chibi engine, 512 px)", flush=True)
                await users_section(store, "chibi", "chibi", 512, jobs_each, [1, 10, 50])
            else:
                print(f"1d. concurrent users ({fast_ms:g} ms engine)", flush=True)
                await users_section(store, fast_engine(fast_ms), "fast", 128, jobs_each, [1, 10, 50])
        finally:
            await storage.close()


async def main(quick: bool, fast_ms: float) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    jobs_each = 5 if quick else 20
    users_list = [1, 10] if quick else [1, 10, 50]
    with tempfile.TemporaryDirectory(prefix="chibify-bench-") as tmp:
        storage = await Storage.open(None, tmp, upgrade=True)
        store = SqlJobStore(storage)
        figures: dict[str, Any] = {
            "machine": {
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
            },
            "database": "SQLite (WAL, synchronous=FULL) in a temp dir",
        }
        try:
            print("1. concurrent users, 20 jobs each, one after another (submit -> result)", flush=True)
            try:
                section = await users_section(store, "chibi", "chibi", 512, jobs_each, users_list)
                figures["users"] = {"engine": "chibi", "size": 512, "rows": section}
            except WorkerStartError as exc:
                print(f"  chibi engine not available ({exc}); using the synthetic engine instead", flush=True)
                section = await users_section(
                    store, synthetic(0.02, 0.015), "synthetic", 512, jobs_each, users_list
                )
                figures["users"] = {
                    "engine": "synthetic (chibi not available yet)",
                    "chibi_error": str(exc),
                    "engine_cost": {"per_batch_s": 0.02, "per_item_s": 0.015},
                    "rows": section,
                }
            if not quick:
                print("1b. one user, where the time goes (medians)", flush=True)
                figures["profile"] = await profile_section(storage, 100)
                print("1c. memory over 2,000 jobs", flush=True)
                figures["memory"] = await memory_section(store, 2000)
            print(f"1d. a faster engine: {fast_ms:g} ms of CPU per picture, one per call", flush=True)
            fast_rows = await users_section(store, fast_engine(fast_ms), "fast", 128, jobs_each, users_list)
            figures["users_fast_engine"] = {
                "engine": f"bench.bench_service:FixedCostEngine(draw_ms={fast_ms:g})",
                "rows": fast_rows,
            }
            if not quick:
                print("1e. one user with that engine, where the time goes (medians)", flush=True)
                figures["profile_fast_engine"] = await profile_section(
                    storage, 100, fast_engine(fast_ms), "fast", 128
                )
            print("2. batching on vs off (synthetic engine, burst)", flush=True)
            figures["batching"] = await batching_section(store, 80 if quick else 240)
            print("3. worker crash recovery", flush=True)
            figures["crash_recovery"] = await crash_section(store, 3 if quick else 5)
        finally:
            await storage.close()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs (smoke run); does not save")
    parser.add_argument(
        "--profile", type=int, metavar="JOBS", help="only the one-user breakdown of JOBS jobs; does not save"
    )
    parser.add_argument(
        "--fast-engine",
        type=float,
        metavar="MS",
        help=f"section 1d's engine cost (default {FAST_ENGINE_MS:g}); with --profile/--users-only: use it",
    )
    parser.add_argument("--users-only", action="store_true", help="only section 1 (or 1d); does not save")
    args = parser.parse_args()
    if args.profile:
        asyncio.run(profile_only(args.profile, args.fast_engine))
        raise SystemExit(0)
    if args.users_only:
        asyncio.run(users_only(args.quick, args.fast_engine))
        raise SystemExit(0)
    result = asyncio.run(main(args.quick, args.fast_engine or FAST_ENGINE_MS))
    print(json.dumps(result, indent=2))
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {RESULTS}")
