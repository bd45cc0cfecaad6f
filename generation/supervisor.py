"""The supervisor: one engine process kept alive, one batch at a time, each within its deadline.

:class:`Supervisor` owns a :class:`~generation.worker.ProcessWorker` (or anything the ``worker_factory``
makes that behaves like one). :meth:`Supervisor.run` sends a batch and reports what happened in a
:class:`BatchReport`: the outcomes, or that the worker died (``crashed``) or passed the deadline
(``timed_out``, with the jobs of the engine call that hung). A worker that died or hung is killed at once
and replaced before the next batch (:meth:`Supervisor.ensure_worker`, with backoff). Deciding what happens
to the jobs (retry alone, fail) is the caller's: the generation service for the local worker, and
``chibify worker`` (:mod:`generation.broker.agent`) for a remote one.

No job store, no fairness, no broker here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from generation.jobs import BatchDone, BatchUpdate, EngineSpec, ItemOutcome, ItemsStarted, RunBatch
from generation.worker import ProcessWorker, WorkerCrashed, describe_error

__all__ = ["BatchReport", "Supervisor", "WorkerClient", "WorkerFactory"]

log = logging.getLogger(__name__)


class WorkerClient(Protocol):
    """The parent <-> engine process boundary (:class:`~generation.worker.ProcessWorker`). Raise
    :class:`~generation.worker.WorkerCrashed` when the worker is gone; deadlines are the supervisor's."""

    @property
    def pid(self) -> int | None: ...
    async def start(self) -> Any: ...
    async def run_batch(self, batch: RunBatch, on_progress: Callable[[BatchUpdate], None]) -> BatchDone: ...
    async def kill(self) -> None: ...
    async def stop(self, timeout_s: float = 5.0) -> None: ...


WorkerFactory = Callable[[tuple[EngineSpec, ...]], WorkerClient]


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What became of one batch. ``outcomes`` is empty when the worker ``crashed`` (a one-line reason) or
    the batch ``timed_out``; then ``hung`` names the jobs of the engine call that was running (None: the
    worker never said)."""

    outcomes: tuple[ItemOutcome, ...] = ()
    run_s: float = 0.0
    crashed: str | None = None
    timed_out: bool = False
    hung: tuple[int, ...] | None = None

    @property
    def lost(self) -> bool:
        return self.crashed is not None or self.timed_out


class Supervisor:
    def __init__(
        self,
        engines: Sequence[EngineSpec],
        *,
        job_timeout_s: float,
        worker_factory: WorkerFactory | None = None,
        start_timeout_s: float = 120.0,
        on_replace: Callable[[], None] | None = None,
    ) -> None:
        self._specs = tuple(engines)
        self.job_timeout_s = job_timeout_s
        self._factory: WorkerFactory = worker_factory or (
            lambda specs: ProcessWorker(specs, start_timeout_s=start_timeout_s)
        )
        self._on_replace = on_replace
        self._worker: WorkerClient | None = None
        self._healthy = False
        self._closing = asyncio.Event()
        self.engines: tuple[str, ...] = tuple(s.name for s in self._specs)
        self.models: tuple[tuple[str, str], ...] = ()
        self.one_at_a_time: frozenset[str] = frozenset()  # engines that draw one request per call
        self.busy = False

    @property
    def pid(self) -> int | None:
        return self._worker.pid if self._worker is not None else None

    async def start(self) -> Any:
        """Start the first worker; raises :class:`~generation.worker.WorkerStartError` (an engine that
        cannot load) or :class:`~generation.worker.WorkerCrashed`."""
        worker = self._factory(self._specs)
        ready = await worker.start()
        self._adopt(worker)
        return ready

    def _adopt(self, worker: WorkerClient) -> None:
        self._worker = worker
        self._healthy = True
        self.engines = tuple(getattr(worker, "engines", ()) or self.engines)
        self.models = tuple(getattr(worker, "models", ()) or ())
        self.one_at_a_time = frozenset(getattr(worker, "one_at_a_time", ()) or ())

    async def ensure_worker(self) -> bool:
        """Replace a worker that died or hung (0.5 s backoff doubling to 30 s) until one starts or
        :meth:`stop` is called; False if stopped first."""
        if self._healthy and self._worker is not None:
            return True
        delay = 0.5
        if self._on_replace is not None:
            self._on_replace()
        while not self._closing.is_set():
            try:
                worker = self._factory(self._specs)
                await worker.start()
                self._adopt(worker)
                return True
            except Exception as exc:
                log.error(
                    "could not start a new worker: %s; trying again in %.1f s", describe_error(exc), delay
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            delay = min(delay * 2, 30.0)
        return False

    async def run(
        self, batch: RunBatch, on_update: Callable[[BatchUpdate], None], *, timeout_s: float | None = None
    ) -> BatchReport:
        """Run one batch within ``timeout_s`` (default ``job_timeout_s``). A worker that dies or passes the
        deadline is killed; the next :meth:`ensure_worker` replaces it."""
        if not await self.ensure_worker():
            return BatchReport(crashed="the generator is stopping")
        worker = self._worker
        assert worker is not None
        in_engine: list[tuple[int, ...]] = []  # the jobs of the engine call the worker is in now

        def hear(message: BatchUpdate) -> None:
            if isinstance(message, ItemsStarted):
                in_engine[:] = [message.job_ids]
            on_update(message)

        deadline = self.job_timeout_s if timeout_s is None else timeout_s
        started = time.perf_counter()
        self.busy = True
        try:
            done = await asyncio.wait_for(worker.run_batch(batch, hear), deadline)
        except TimeoutError:
            log.warning(
                "batch %d (%d jobs) passed %.1f s; replacing the worker",
                batch.batch_id,
                len(batch.items),
                deadline,
            )
            self._healthy = False
            await worker.kill()
            return BatchReport(
                run_s=time.perf_counter() - started,
                timed_out=True,
                hung=in_engine[0] if in_engine else None,
            )
        except WorkerCrashed as exc:
            log.warning("worker crashed during batch %d (%d jobs): %s", batch.batch_id, len(batch.items), exc)
            self._healthy = False
            await worker.kill()
            return BatchReport(run_s=time.perf_counter() - started, crashed=str(exc))
        finally:
            self.busy = False
        return BatchReport(outcomes=done.outcomes, run_s=done.run_s)

    async def cancel(self, job_ids: Sequence[int]) -> None:
        """Reach the engine: skip these jobs, or stop its call between steps if all its jobs are cancelled."""
        worker = self._worker
        cancel = getattr(worker, "cancel", None)
        if worker is not None and self._healthy and callable(cancel):
            await cancel(tuple(job_ids))

    async def kill(self) -> None:
        self._healthy = False
        if self._worker is not None:
            await self._worker.kill()

    async def stop(self, timeout_s: float = 5.0) -> None:
        self._closing.set()
        if self._worker is not None:
            await self._worker.stop(timeout_s)
