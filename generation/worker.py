"""The worker process and its parent-side handle.

:func:`worker_main` runs in a process started with the *spawn* start method: it builds the configured
engines once (this is the only place engine code, and later torch, is imported), says
:class:`~generation.jobs.WorkerReady`, then runs one :class:`~generation.jobs.RunBatch` after another.

:class:`ProcessWorker` is the parent's side (the service's local pool, or a remote ``chibify worker``): it
starts the process, sends batches and reads replies on a small reader thread (a blocking ``recv`` there,
handed to the event loop with ``call_soon_threadsafe``), so the event loop never blocks on the pipe. Its
public surface (``start``, ``run_batch``, ``cancel``, ``kill``, ``stop``) is the whole boundary;
:class:`generation.supervisor.Supervisor` adds deadlines and replacement on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import queue
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any

from generation.jobs import (
    BatchDone,
    BatchProgress,
    BatchUpdate,
    CancelJobs,
    EngineSpec,
    GenerationRequest,
    GenerationResult,
    ItemOutcome,
    ItemsStarted,
    RunBatch,
    Shutdown,
    WorkerReady,
)

__all__ = ["ProcessWorker", "WorkerCrashed", "WorkerStartError", "describe_error", "worker_main"]

log = logging.getLogger(__name__)


class WorkerCrashed(RuntimeError):
    """The worker process went away (killed, crashed) before answering."""


class WorkerStartError(RuntimeError):
    """The worker could not load its engines."""


def describe_error(exc: BaseException) -> str:
    """A short, single-line description of an exception, safe to show a user."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text[:300]
    if text and getattr(exc, "user_facing", False):  # written for users: no class name in front
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- the child ------------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, so a hung worker never outlives the bot."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


class _Child:
    """The worker process's state: its engines, its connection, and the jobs cancelled meanwhile.

    The main thread runs batches; a reader thread receives messages, so a :class:`CancelJobs` arrives while
    an engine draws. A job cancelled before its engine call is skipped; an engine call whose jobs are all
    cancelled is stopped between steps through the engine's ``cancel()`` (if it has one), called at once
    and again at each progress report (an engine may clear its flag when its call begins).
    """

    def __init__(self, engines: dict[str, Any], conn: Connection) -> None:
        self.engines = engines
        self.conn = conn
        self.inbox: queue.Queue[RunBatch | Shutdown] = queue.Queue()
        self._lock = threading.Lock()
        self._cancelled: set[int] = set()
        self._current: tuple[Any, tuple[int, ...]] | None = None  # engine, jobs of its running call

    # --- reader thread ---------------------------------------------------------------------------------

    def read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                self.inbox.put(Shutdown())
                return
            if isinstance(message, CancelJobs):
                self.cancel(message.job_ids)
            elif isinstance(message, RunBatch | Shutdown):
                self.inbox.put(message)
                if isinstance(message, Shutdown):
                    return

    def cancel(self, job_ids: Sequence[int]) -> None:
        with self._lock:
            self._cancelled.update(job_ids)
        self._stop_engine_if_all_cancelled()

    def _stop_engine_if_all_cancelled(self) -> None:
        with self._lock:
            current = self._current
            stop = current is not None and all(j in self._cancelled for j in current[1])
        if stop and current is not None:
            halt = getattr(current[0], "cancel", None)
            if callable(halt):
                with contextlib.suppress(Exception):
                    halt()

    def is_cancelled(self, job_id: int) -> bool:
        with self._lock:
            return job_id in self._cancelled

    # --- main thread -------------------------------------------------------------------------------------

    def run_batch(self, batch: RunBatch) -> BatchDone:
        started = time.perf_counter()
        job_ids = [job_id for job_id, _ in batch.items]
        outcomes: dict[int, ItemOutcome] = {}
        requests = [request for _, request in batch.items]
        # The service sends compatible batches (one engine); group anyway so a mixed batch still works.
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request.engine, []).append(index)

        for engine_name, indices in groups.items():
            engine = self.engines.get(engine_name)
            if engine is None:
                for i in indices:
                    outcomes[job_ids[i]] = ItemOutcome(
                        job_ids[i], error=f"engine {engine_name!r} is not loaded"
                    )
                continue
            items = self._read_selfies(engine, [(job_ids[i], requests[i]) for i in indices], outcomes)
            self._run_group(engine, batch.batch_id, items, outcomes)

        with self._lock:
            self._cancelled.difference_update(job_ids)
        ordered = tuple(outcomes[job_id] for job_id in job_ids)
        return BatchDone(batch.batch_id, ordered, run_s=time.perf_counter() - started)

    @staticmethod
    def _read_selfies(
        engine: Any, items: list[tuple[int, GenerationRequest]], outcomes: dict[int, ItemOutcome]
    ) -> list[tuple[int, GenerationRequest]]:
        """A selfie becomes its spec once, here, before the engine runs, for engines that draw a spec
        (``draws_selfie_spec = True``): they draw ``request.spec`` as it comes. A photo that cannot be read
        fails its own job only."""
        if not getattr(engine, "draws_selfie_spec", False):
            return items
        from generation.engines import prepare_selfie  # worker side only

        ready: list[tuple[int, GenerationRequest]] = []
        for job_id, request in items:
            try:
                ready.append((job_id, prepare_selfie(request)))
            except Exception as exc:
                outcomes[job_id] = ItemOutcome(job_id, error=describe_error(exc))
        return ready

    def _run_group(
        self,
        engine: Any,
        batch_id: int,
        items: list[tuple[int, GenerationRequest]],
        outcomes: dict[int, ItemOutcome],
    ) -> None:
        """Run ``items`` on ``engine``: in one call, or one call per item for an engine that says it draws
        one request at a time (``one_at_a_time = True``), so that a hang names its job. Each call is
        announced with :class:`ItemsStarted` first; cancelled jobs are skipped."""
        if getattr(engine, "one_at_a_time", False) and len(items) > 1:
            for item in items:
                self._run_group(engine, batch_id, [item], outcomes)
            return
        with self._lock:
            live = [(j, r) for j, r in items if j not in self._cancelled]
            skipped = [j for j, _ in items if j in self._cancelled]
            self._current = (engine, tuple(j for j, _ in live)) if live else None
        for job_id in skipped:
            outcomes[job_id] = ItemOutcome(job_id, error="cancelled", cancelled=True)
        if not live:
            return
        ids = [job_id for job_id, _ in live]
        conn = self.conn

        def progress(index: int, step: int, total: int) -> None:
            if 0 <= index < len(ids):
                conn.send(BatchProgress(batch_id, ids[index], int(step), int(total)))
            self._stop_engine_if_all_cancelled()

        conn.send(ItemsStarted(batch_id, tuple(ids)))
        try:
            results = engine.run_batch([request for _, request in live], progress)
            if len(results) != len(live):
                raise RuntimeError(f"engine returned {len(results)} results for {len(live)} requests")
        except Exception as exc:
            with self._lock:
                self._current = None
            if len(live) == 1:
                outcomes[ids[0]] = self._outcome(ids[0], exc)
                return
            # One bad request must not fail its neighbours: run each alone to find out which.
            for item in live:
                self._run_group(engine, batch_id, [item], outcomes)
            return
        with self._lock:
            self._current = None
        for job_id, result in zip(ids, results, strict=True):
            outcomes[job_id] = self._outcome(job_id, result)

    def _outcome(self, job_id: int, result: object) -> ItemOutcome:
        if self.is_cancelled(job_id):  # whatever the engine made of it, nobody wants it now
            return ItemOutcome(job_id, error="cancelled", cancelled=True)
        if isinstance(result, GenerationResult):
            return ItemOutcome(job_id, result=result)
        if isinstance(result, BaseException):
            return ItemOutcome(job_id, error=describe_error(result))
        return ItemOutcome(job_id, error=f"engine returned {type(result).__name__}")


def worker_main(conn: Connection, specs: tuple[EngineSpec, ...]) -> None:
    """Entry point of the worker process."""
    _die_with_parent()
    # Ctrl-C in a terminal reaches the whole process group, and `docker stop` the container's: the parent
    # (the service, or `chibify worker`) decides when the worker stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from generation.engines import build_engine

    engines: dict[str, Any] = {}
    try:
        for spec in specs:
            engines[spec.name] = build_engine(spec)
    except Exception as exc:
        conn.send(WorkerReady(os.getpid(), (), error=f"engine {spec.name!r}: {describe_error(exc)}"))
        return
    models = tuple(
        (name, str(getattr(engine, "model", None)))
        for name, engine in engines.items()
        if getattr(engine, "model", None)
    )
    alone = tuple(name for name, engine in engines.items() if getattr(engine, "one_at_a_time", False))
    conn.send(WorkerReady(os.getpid(), tuple(engines), models=models, one_at_a_time=alone))
    child = _Child(engines, conn)
    threading.Thread(target=child.read, name="worker-inbox", daemon=True).start()
    while True:
        message = child.inbox.get()
        if isinstance(message, Shutdown):
            return
        conn.send(child.run_batch(message))


#: Messages up to this size are sent from the event loop when the pipe has room (see ProcessWorker._send).
INLINE_SEND_BYTES = 16 * 1024


def _writable(conn: Connection) -> bool:
    """Whether a send on ``conn`` would not block now (its socket has room; see ``unix_writable``:
    a Unix stream socket polls writable while at most a quarter of its send buffer is in use)."""
    try:
        return bool(select.select([], [conn.fileno()], [], 0)[1])
    except (OSError, ValueError):
        return False


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


# --- the parent's handle ----------------------------------------------------------------------------------


class ProcessWorker:
    """One worker process, seen from the event loop. Not reusable: after it dies, make a new one."""

    def __init__(self, engines: Sequence[EngineSpec], *, start_timeout_s: float = 120.0) -> None:
        self._specs = tuple(engines)
        self._start_timeout_s = start_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._reader: threading.Thread | None = None
        self._ready: asyncio.Future[WorkerReady] | None = None
        self._current: tuple[int, asyncio.Future[BatchDone], Callable[[BatchUpdate], None]] | None = None
        self._send_lock = asyncio.Lock()
        self._dead = False
        self.engines: tuple[str, ...] = ()
        self.models: tuple[tuple[str, str], ...] = ()
        self.one_at_a_time: tuple[str, ...] = ()  # engines that draw one request per call

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return not self._dead and self._process is not None and self._process.is_alive()

    async def start(self) -> WorkerReady:
        loop = asyncio.get_running_loop()
        self._loop = loop
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=worker_main, args=(child_conn, self._specs), name="chibify-worker", daemon=True
        )
        self._ready = loop.create_future()
        # Spawning forks a helper and waits for it: do it off the loop.
        await asyncio.to_thread(process.start)
        child_conn.close()  # so the child's death reads as EOF here
        self._process, self._conn = process, parent_conn
        self._reader = threading.Thread(
            target=self._read_loop, name=f"worker-reader-{process.pid}", daemon=True
        )
        self._reader.start()
        try:
            ready = await asyncio.wait_for(self._ready, self._start_timeout_s)
        except BaseException:
            await self.kill()
            raise
        if ready.error:
            await self.kill()
            raise WorkerStartError(ready.error)
        self.engines = ready.engines
        self.models = ready.models
        self.one_at_a_time = ready.one_at_a_time
        log.info("worker %s ready with engines %s", ready.pid, ",".join(ready.engines))
        return ready

    def _read_loop(self) -> None:
        conn, loop = self._conn, self._loop
        assert conn is not None and loop is not None
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # a message that does not unpickle: treat the worker as broken
                log.error("worker sent an unreadable message: %s", describe_error(exc))
                break
            with contextlib.suppress(RuntimeError):  # loop closed
                loop.call_soon_threadsafe(self._on_message, message)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._on_eof)

    def _on_message(self, message: object) -> None:
        if isinstance(message, WorkerReady):
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(message)
        elif isinstance(message, BatchProgress | ItemsStarted):
            if self._current is not None and self._current[0] == message.batch_id:
                try:
                    self._current[2](message)
                except Exception:
                    log.exception("progress callback failed")
        elif isinstance(message, BatchDone):
            if self._current is not None and self._current[0] == message.batch_id:
                future = self._current[1]
                self._current = None
                if not future.done():
                    future.set_result(message)

    def _on_eof(self) -> None:
        self._dead = True
        code = self._process.exitcode if self._process is not None else None
        error = WorkerCrashed(f"the worker process stopped unexpectedly (exit code {code})")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
        if self._current is not None:
            future = self._current[1]
            self._current = None
            if not future.done():
                future.set_exception(error)

    async def run_batch(self, batch: RunBatch, on_progress: Callable[[BatchUpdate], None]) -> BatchDone:
        """Send one batch and wait for its answer; ``on_progress`` hears its :class:`ItemsStarted` and
        :class:`BatchProgress` messages. Raises :class:`WorkerCrashed` if the process dies."""
        if self._dead or self._conn is None or self._loop is None:
            raise WorkerCrashed("the worker is not running")
        if self._current is not None:
            raise RuntimeError("a batch is already running on this worker")
        future: asyncio.Future[BatchDone] = self._loop.create_future()
        self._current = (batch.batch_id, future, on_progress)
        try:
            await self._send(batch)
        except (OSError, EOFError, ValueError) as exc:
            self._current = None
            raise WorkerCrashed(f"could not reach the worker: {describe_error(exc)}") from exc
        try:
            return await future
        except WorkerCrashed:
            process = self._process
            if process is not None:
                await asyncio.to_thread(process.join, 2)
                if process.exitcode is not None:
                    raise WorkerCrashed(
                        f"the worker process stopped unexpectedly ({_exit_reason(process.exitcode)})"
                    ) from None
            raise
        finally:
            if self._current is not None and self._current[1] is future:
                self._current = None

    async def cancel(self, job_ids: Sequence[int]) -> None:
        """Tell the worker to stop these jobs (skipped if not started; the engine stopped between steps if
        its whole call is cancelled). Their outcomes come back with ``cancelled=True``."""
        if self._dead or self._conn is None or not job_ids:
            return
        with contextlib.suppress(OSError, EOFError, ValueError):
            await self._send(CancelJobs(tuple(job_ids)))

    async def _send(self, message: object) -> None:
        conn = self._conn
        assert conn is not None
        payload = ForkingPickler.dumps(message)  # what conn.send does; small messages take ~20 us
        if len(payload) <= INLINE_SEND_BYTES and not self._send_lock.locked() and _writable(conn):
            # A small message into a socket with room goes at once: no thread hop before the worker
            # can start (a Unix socket reads as writable only with far more room than this message).
            conn.send_bytes(payload)
            return
        async with self._send_lock:
            # A batch may carry a selfie of a few MB: never block the loop on a full pipe.
            await asyncio.to_thread(conn.send_bytes, payload)

    async def kill(self) -> None:
        """SIGKILL the process and reap it."""
        process = self._process
        self._dead = True
        if process is None:
            return
        if process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await asyncio.to_thread(process.join, 10)
        await self._close()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to exit after its current batch; kill it if it has not within ``timeout_s``."""
        process = self._process
        if process is None:
            return
        if process.is_alive() and not self._dead:
            with contextlib.suppress(OSError, EOFError, ValueError, WorkerCrashed):
                await asyncio.wait_for(self._send(Shutdown()), timeout_s)
            await asyncio.to_thread(process.join, timeout_s)
        if process.is_alive():
            log.warning("worker %s did not exit within %.1f s; killing it", process.pid, timeout_s)
        await self.kill()

    async def _close(self) -> None:
        if self._reader is not None and self._reader is not threading.current_thread():
            await asyncio.to_thread(self._reader.join, 5)
        if self._conn is not None and (self._reader is None or not self._reader.is_alive()):
            self._conn.close()
            self._conn = None
