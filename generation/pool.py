"""Where batches run: the small interface the generation service drives, and its local implementation.

The service decides *what* runs next (fair queue, batches, admission); a :class:`WorkerPool` decides
*where*. Two implementations:

* :class:`LocalPool` (the embedded default): one engine process on this machine behind a
  :class:`~generation.supervisor.Supervisor`; one batch at a time (``serial``), the service awaiting each
  and deciding what a crash or a timeout means for its jobs.
* :class:`generation.broker.pool.NatsPool`: any number of ``chibify worker`` processes on any machines,
  reached through NATS JetStream; many batches in flight, each published only when a worker is free.

The service calls ``attach`` once (its hooks and limits), ``start``, then ``room(engine)`` before it takes
a batch and ``run_batch`` for each; ``cancel`` reaches the engine; ``workers`` lists who draws. A pool may
also answer ``draws_one_at_a_time(engine)`` (the local one does): True lets a lone job of that engine leave
at once instead of waiting ``batch_window_s`` for company.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from generation.jobs import (
    BatchProgress,
    BatchUpdate,
    EngineSpec,
    GenerationRequest,
    ItemOutcome,
    ItemsStarted,
    RunBatch,
    WorkerInfo,
)
from generation.supervisor import BatchReport, Supervisor, WorkerFactory

__all__ = ["BatchListener", "LocalPool", "PoolHooks", "PoolLimits", "WorkerPool"]


class BatchListener(Protocol):
    """What a pool tells the service about one batch while it runs."""

    def update(self, message: BatchUpdate) -> None:
        """:class:`~generation.jobs.ItemsStarted` or :class:`~generation.jobs.BatchProgress`."""

    def outcome(self, outcome: ItemOutcome, run_s: float) -> Awaitable[None]:
        """One job's outcome as soon as it is known; the awaitable is done once the store recorded it."""


class PoolHooks(Protocol):
    """What a pool may ask of the service at any time."""

    def wake(self) -> None:
        """Room may have appeared, or the set of engines served changed."""

    def orphan(self, outcome: ItemOutcome, run_s: float) -> Awaitable[None]:
        """An outcome for a job this service does not track (a late duplicate, or a job of an earlier
        run): record it in the store as it is, or find the store has the job finished already."""


@dataclass(frozen=True, slots=True)
class PoolLimits:
    job_timeout_s: float
    max_attempts: int
    max_batch: int


class WorkerPool(Protocol):
    @property
    def serial(self) -> bool:
        """True: one batch at a time, and :meth:`run_batch` reports crashes and timeouts for the service
        to handle (retry alone, fail). False: many batches in flight; workers handle crashes and deadlines."""

    @property
    def shared(self) -> bool:
        """True: other processes share these workers and the job store (caps are counted in the store)."""

    @property
    def owner(self) -> str | None:
        """A name this process's jobs are tagged with in the store (None: jobs are not tagged)."""

    @property
    def keeps_results(self) -> bool:
        """True: results of jobs in flight when this process stops reach it after its restart."""

    def attach(self, hooks: PoolHooks, limits: PoolLimits) -> None: ...
    async def start(self) -> None: ...
    def begin(self) -> None:
        """The service recovered its jobs (and adopted those the workers still have): results may flow."""

    async def stop(self, timeout_s: float) -> None: ...
    def room(self, engine: str) -> bool: ...
    def reserve(self, engine: str, jobs: int) -> None:
        """The service took a batch of ``jobs`` for this engine (room is taken at once, before any
        await); the batch's :meth:`run_batch` uses the reservation for the jobs it is given, and
        :meth:`release` gives back the rest."""

    def release(self, engine: str, jobs: int) -> None: ...
    def serves(self, engine: str) -> bool: ...
    async def run_batch(
        self, batch: RunBatch, listener: BatchListener, *, resend: bool = True
    ) -> BatchReport: ...
    async def cancel(self, job_ids: Sequence[int]) -> None: ...
    async def locate(self, job_id: int, engine: str) -> bool: ...
    def workers(self) -> list[WorkerInfo]: ...


@dataclass(eq=False)
class _HeadStart:
    """A request the engine process draws before its job exists (see :meth:`LocalPool.head_start`)."""

    request: GenerationRequest
    job_id: int  # provisional: negative, never a job's
    updates: list[BatchUpdate] = field(default_factory=list)  # heard before its batch came
    forward: Callable[[BatchUpdate], None] | None = None  # its batch's listener, once it came
    task: asyncio.Future[BatchReport] | None = None
    dropped: bool = False


def _renamed(message: BatchUpdate, provisional: int, job_id: int) -> BatchUpdate:
    if isinstance(message, ItemsStarted):
        ids = tuple(job_id if j == provisional else j for j in message.job_ids)
        return ItemsStarted(message.batch_id, ids)
    if isinstance(message, BatchProgress) and message.job_id == provisional:
        return replace(message, job_id=job_id)
    return message


class LocalPool:
    """One engine process on this machine (see :mod:`generation.supervisor`)."""

    serial = True
    shared = False
    owner: str | None = None
    keeps_results = False

    def __init__(
        self,
        engines: Sequence[EngineSpec],
        *,
        worker_factory: WorkerFactory | None = None,
        start_timeout_s: float = 120.0,
        on_replace: Callable[[], None] | None = None,
    ) -> None:
        self._specs = tuple(engines)
        self._names = frozenset(s.name for s in self._specs)
        self._factory = worker_factory
        self._start_timeout_s = start_timeout_s
        self._on_replace = on_replace
        self._supervisor: Supervisor | None = None
        self._limits = PoolLimits(job_timeout_s=60.0, max_attempts=2, max_batch=4)
        self._served = 0
        self._started_at = time.time()
        self._host = socket.gethostname()
        self._ahead: _HeadStart | None = None  # the latest head start (see head_start)
        self._provisional = itertools.count(-1, -1)
        self._aliases: dict[int, int] = {}  # job id -> the provisional id its drawing runs under

    @property
    def pid(self) -> int | None:
        return self._supervisor.pid if self._supervisor is not None else None

    def attach(self, hooks: PoolHooks, limits: PoolLimits) -> None:
        self._limits = limits

    async def start(self) -> None:
        self._supervisor = Supervisor(
            self._specs,
            job_timeout_s=self._limits.job_timeout_s,
            worker_factory=self._factory,
            start_timeout_s=self._start_timeout_s,
            on_replace=self._on_replace,
        )
        self._started_at = time.time()
        await self._supervisor.start()

    def begin(self) -> None:
        pass

    async def stop(self, timeout_s: float) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            await self._drop(ahead)  # its job's batch will not come now
        if self._supervisor is not None:
            await self._supervisor.stop(timeout_s)
        if ahead is not None and ahead.task is not None and not ahead.task.done():
            ahead.task.cancel()  # nobody awaits it
            await asyncio.wait([ahead.task])

    async def kill(self) -> None:
        """Kill the engine process now (a batch cut off by a drain)."""
        if self._supervisor is not None:
            await self._supervisor.kill()

    def room(self, engine: str) -> bool:
        return True  # serial: the service awaits each batch before it asks again

    def reserve(self, engine: str, jobs: int) -> None:
        pass

    def release(self, engine: str, jobs: int) -> None:
        pass

    def serves(self, engine: str) -> bool:
        return engine in self._names

    def draws_one_at_a_time(self, engine: str) -> bool:
        """The engine draws one request per call (``one_at_a_time``, like the chibi engine): a batch
        draws no faster than its jobs one by one, so a lone job need not wait for company."""
        return self._supervisor is not None and engine in self._supervisor.one_at_a_time

    def head_start(self, request: GenerationRequest) -> bool:
        """Start drawing ``request`` now, while the service still writes its job row, if the engine
        process is idle; True if it did. The next :meth:`run_batch` of exactly that request (the same
        object, alone) takes the drawing over instead of starting it: the round trip of the write is off
        the way to the picture. A batch of anything else first waits for that drawing to end. If the
        request's batch never comes (its row could not be written, or the job was cancelled while it
        waited), the picture is never reported; :meth:`drop_head_start` stops it early."""
        sup = self._supervisor
        ahead = self._ahead
        if (
            sup is None
            or sup.busy
            or (ahead is not None and ahead.task is not None and not ahead.task.done())
        ):
            return False
        ahead = _HeadStart(request, next(self._provisional))

        def hear(message: BatchUpdate) -> None:
            if ahead.forward is not None:
                ahead.forward(message)
            else:
                ahead.updates.append(message)

        batch = RunBatch(ahead.job_id, ((ahead.job_id, request),))
        ahead.task = asyncio.ensure_future(sup.run(batch, hear))
        self._ahead = ahead
        return True

    async def drop_head_start(self, request: GenerationRequest) -> None:
        """The job of ``request`` will not come (see :meth:`head_start`): stop its drawing."""
        ahead = self._ahead
        if ahead is not None and ahead.request is request:
            await self._drop(ahead)

    async def _drop(self, ahead: _HeadStart) -> None:
        if ahead.dropped:
            return
        ahead.dropped = True
        sup, task = self._supervisor, ahead.task
        if task is None or task.done() or sup is None:
            return
        if sup.busy:  # the engine process has it: stopped between steps, or skipped
            await sup.cancel([ahead.job_id])
        else:  # not sent yet (a new engine process is starting): it need not be
            task.cancel()

    async def run_batch(
        self, batch: RunBatch, listener: BatchListener, *, resend: bool = True
    ) -> BatchReport:
        assert self._supervisor is not None, "start() first"
        ahead = self._ahead
        if ahead is not None and ahead.task is not None:
            if not ahead.dropped and len(batch.items) == 1 and batch.items[0][1] is ahead.request:
                self._ahead = None
                report = await self._take_over(ahead, ahead.task, batch.items[0][0], listener)
            else:
                if any(request is ahead.request for _, request in batch.items):
                    await self._drop(ahead)  # drawn in this batch with others: not taken over later
                if not ahead.task.done():  # one batch at a time: this one goes once that drawing ends
                    await asyncio.wait([ahead.task])
                if ahead.dropped and self._ahead is ahead:
                    self._ahead = None
                report = await self._supervisor.run(batch, listener.update)
        else:
            report = await self._supervisor.run(batch, listener.update)
        if not report.lost:
            self._served += len(report.outcomes)
        return report

    async def _take_over(
        self, ahead: _HeadStart, task: asyncio.Future[BatchReport], job_id: int, listener: BatchListener
    ) -> BatchReport:
        """Report a head start's drawing as the batch of its job: its messages and outcome under the
        job's id."""
        provisional = ahead.job_id

        def forward(message: BatchUpdate) -> None:
            listener.update(_renamed(message, provisional, job_id))

        for message in ahead.updates:
            forward(message)
        ahead.updates.clear()
        ahead.forward = forward
        self._aliases[job_id] = provisional
        try:
            report = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()  # as a cancelled run_batch cancels the supervisor's run
            raise
        finally:
            self._aliases.pop(job_id, None)
        hung = report.hung
        return replace(
            report,
            outcomes=tuple(
                replace(o, job_id=job_id) if o.job_id == provisional else o for o in report.outcomes
            ),
            hung=tuple(job_id if j == provisional else j for j in hung) if hung is not None else None,
        )

    async def cancel(self, job_ids: Sequence[int]) -> None:
        if self._supervisor is not None:
            await self._supervisor.cancel([self._aliases.get(j, j) for j in job_ids])

    async def locate(self, job_id: int, engine: str) -> bool:
        return False  # nothing outlives this process's worker

    def workers(self) -> list[WorkerInfo]:
        sup = self._supervisor
        if sup is None:
            return []
        return [
            WorkerInfo(
                worker_id="local",
                host=self._host,
                pid=sup.pid if sup.pid is not None else os.getpid(),
                engines=tuple(sup.engines),
                models=tuple(sup.models),
                state="busy" if sup.busy else "idle",
                jobs_served=self._served,
                last_seen=time.time(),
                max_batch=self._limits.max_batch,
                started_at=self._started_at,
                one_at_a_time=tuple(sorted(sup.one_at_a_time)),
            )
        ]
