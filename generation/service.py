"""GenerationService: the asyncio queue in the bot's event loop that keeps the workers busy, fairly.

* Durable: every job is written to the job store before it is queued; every transition is recorded there;
  on :meth:`GenerationService.start` unfinished jobs are queued again (or failed with a deliverable reason).
* Fair: one queue per ``user_key``, served round-robin (:mod:`generation.fairqueue`; ETAs from
  :mod:`generation.eta`); a per-user and a global cap make
  :meth:`~GenerationService.submit_many` refuse a whole request at once with :class:`QueueFull` ("busy, try
  again in ~N s"): all its jobs are admitted, or none is written.
* Batched: compatible requests (same :meth:`GenerationRequest.batch_key`) from the head of the rotation go
  together, up to ``max_batch``; a lone request waits at most ``batch_window_s`` for company (not at all
  for an engine that draws one request per call, like the chibi engine: company saves it nothing). A
  batch goes to the worker first and is recorded running while it is drawn; its pictures are stored with
  one commit.
* Supervised: batches run in a :class:`~generation.pool.WorkerPool`. The local pool (the default) is one
  engine process (:mod:`generation.supervisor`): a dead worker is replaced and its batch retried once (each
  job alone, so one poison request cannot take its neighbours down twice); a batch past ``job_timeout_s``
  kills the worker, fails the job that hung ("took too long") and re-runs its batch-mates at once, each
  alone. The broker pool (:mod:`generation.broker.pool`) reaches ``chibify worker`` processes on any
  machines through NATS JetStream; they apply the same rules with JetStream's redelivery.
* Honest: a handle is resolved only with what the job store recorded (:mod:`generation.bookkeeping`).

This module never imports storage/ or bot/: the job store is anything that satisfies :class:`JobStore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from generation.bookkeeping import (
    GONE,
    STORE_TRIES,
    Bookkeeper,
    JobStore,
    StoredJob,
    clean_text,
    delivery_of,
    recorded_status,
)
from generation.engines import engine_spec
from generation.eta import Estimator
from generation.fairqueue import FairQueue
from generation.jobs import (
    BatchUpdate,
    Delivery,
    EngineSpec,
    GenerationRequest,
    GenerationResult,
    ItemOutcome,
    ItemsStarted,
    ProgressEvent,
    RunBatch,
    WorkerInfo,
)
from generation.metrics import ServiceMetrics
from generation.pool import LocalPool, PoolLimits, WorkerPool
from generation.supervisor import BatchReport, WorkerClient, WorkerFactory
from generation.worker import describe_error

__all__ = [
    "GenerationError",
    "GenerationService",
    "JobCancelled",
    "JobFailed",
    "JobHandle",
    "JobStore",
    "QueueFull",
    "ServiceStopped",
    "StoredJob",
    "WorkerClient",
    "WorkerFactory",
    "WorkerPool",
]

log = logging.getLogger(__name__)

TOOK_TOO_LONG = "took too long"
SAVE_FAILED = "the result could not be saved"
STAYS_QUEUED = "the generator stopped; your request stays queued and runs when it is back"
CRASHED = "the generator crashed while drawing it"


UNSERVED = "no worker serves"


def unserved_message(engine: str) -> str:
    """What a waiting user is told while no live worker serves the engine of their job."""
    return f"{UNSERVED} {engine!r} yet"


# --- errors -------------------------------------------------------------------------------------------------


class GenerationError(Exception):
    """Base class of the errors a caller of the service is expected to handle."""


class QueueFull(GenerationError):
    """Too many waiting jobs (for this user, or in total). ``str(exc)`` can be shown to the user."""

    def __init__(self, message: str, *, retry_after_s: int, scope: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.scope = scope


class ServiceStopped(GenerationError):
    """The service is not running (not started yet, or stopping). Queued jobs stay in the database."""


class JobFailed(GenerationError):
    """The job failed; ``reason`` is short and can be shown to the user."""

    def __init__(self, job_id: int, reason: str) -> None:
        super().__init__(f"job {job_id} failed: {reason}")
        self.job_id = job_id
        self.reason = reason


class JobCancelled(GenerationError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id


# --- jobs and handles ----------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Job:
    job_id: int
    request: GenerationRequest
    deliver: Delivery | None
    handle: JobHandle
    submitted_at: float  # monotonic
    enqueued_at: float  # monotonic; when it (re)entered the queue
    state: str = "pending"  # pending | starting (taken into a batch) | running | finishing | finished
    attempts: int = 0
    isolate: bool = False
    cancel_requested: bool = False
    started_at: float | None = None
    last_position: int | None = None
    told_unserved: bool = False

    @property
    def user_key(self) -> str:
        return self.request.user_key

    def batch_key(self) -> tuple[Any, ...]:
        return self.request.batch_key()


class HandleOwner(Protocol):
    """What a :class:`JobHandle` asks of the service that made it (the service's public surface)."""

    def position_of(self, job_id: int) -> int | None: ...
    def eta_of(self, job_id: int) -> float | None: ...
    async def cancel(self, job_id: int) -> bool: ...


class JobHandle:
    """What :meth:`GenerationService.submit` returns: await the result, follow progress, cancel."""

    def __init__(
        self,
        owner: HandleOwner,
        job_id: int,
        request: GenerationRequest,
        deliver: Delivery | None,
    ) -> None:
        self._owner = owner
        self.job_id = job_id
        self.request = request
        self.deliver = deliver
        self._future: asyncio.Future[GenerationResult] = asyncio.get_running_loop().create_future()
        # Mark failures as retrieved: nobody has to await a handle they do not care about.
        self._future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._history: list[ProgressEvent] = []
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"<JobHandle job_id={self.job_id} user={self.request.user_key} done={self.done()}>"

    def done(self) -> bool:
        return self._future.done()

    async def result(self) -> GenerationResult:
        """The picture; raises :class:`JobFailed`, :class:`JobCancelled` or :class:`ServiceStopped`."""
        return await asyncio.shield(self._future)

    async def events(self) -> AsyncIterator[ProgressEvent]:
        """Every event of this job from the start (queued, position, started, step...), ending with the
        final one (done, failed or cancelled). Ends quietly if the service stops first."""
        index = 0
        while True:
            while index < len(self._history):
                event = self._history[index]
                index += 1
                yield event
                if event.final:
                    return
            if self._future.done():
                return
            self._changed.clear()
            await self._changed.wait()

    @property
    def message(self) -> str:
        """The latest note about the job for the user ("no worker serves 'diffusion' yet", "retrying"),
        or "" (none, or the job moved on since)."""
        for event in reversed(self._history):
            if event.kind in ("started", "step") or event.final:
                return ""
            if event.message:
                return event.message
        return ""

    def position(self) -> int | None:
        """How many jobs run before this one (0 while it runs); None once finished."""
        return self._owner.position_of(self.job_id)

    def eta_s(self) -> float | None:
        """Estimated seconds until the result; None once finished."""
        return self._owner.eta_of(self.job_id)

    async def cancel(self) -> bool:
        """Cancel the job. A queued job is dropped; a running one is stopped in the engine between steps
        (or thrown away when it finishes, for an engine that cannot stop). Returns False if it had already
        finished."""
        return await self._owner.cancel(self.job_id)

    # for the service
    def emit(self, event: ProgressEvent) -> None:
        if self._history and self._history[-1].final:
            return
        self._history.append(event)
        self._changed.set()

    def resolve(self, result: GenerationResult | None = None, error: BaseException | None = None) -> None:
        if self._future.done():
            return
        if error is not None:
            self._future.set_exception(error)
        else:
            assert result is not None
            self._future.set_result(result)
        self._changed.set()


class _Listener:
    """The service's ear on one batch (see :class:`generation.pool.BatchListener`)."""

    def __init__(self, service: GenerationService, jobs: dict[int, _Job], *, recorded: asyncio.Event) -> None:
        self._service = service
        self._jobs = jobs
        self._recorded = recorded  # set once the store has the batch's jobs running
        self.in_engine: tuple[int, ...] | None = None

    def update(self, message: BatchUpdate) -> None:
        if isinstance(message, ItemsStarted):
            self.in_engine = message.job_ids
            return
        job = self._jobs.get(message.job_id)
        if job is not None:
            job.handle.emit(
                ProgressEvent(job.job_id, "step", step=message.step, total_steps=message.total_steps)
            )

    def outcome(self, outcome: ItemOutcome, run_s: float) -> Awaitable[None]:
        return asyncio.ensure_future(self._finish(outcome, run_s))

    async def _finish(self, outcome: ItemOutcome, run_s: float) -> None:
        await self._recorded.wait()  # a result is stored only after "running" is
        job = self._jobs.get(outcome.job_id)
        if job is None or job.state in ("finishing", "finished"):
            await self._service.orphan(outcome, run_s)
            return
        # Outcomes that arrive together (a remote batch's results) are stored together: see _GroupCommit.
        await self._service._finish_outcome(job, outcome, run_s)


class _GroupCommit:
    """Pictures that arrive one by one (remote workers' results, each its own message) are stored in
    groups: the first goes to the store at once; those that arrive while that store call runs wait for it
    and then go together, in one :meth:`Bookkeeper.complete_all` (one transaction, one commit). A lone
    result waits for nothing; a busy store takes many results per commit."""

    def __init__(self, book: Bookkeeper) -> None:
        self._book = book
        self._waiting: list[tuple[int, dict[str, Any], asyncio.Future[Any]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def complete(self, job_id: int, result: dict[str, Any]) -> Any:
        """What the store answered for this job (its stored ids), or the exception it raised for it."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((job_id, result, answer))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain(), name="generation-group-commit")
        return await answer

    async def _drain(self) -> None:
        group: list[tuple[int, dict[str, Any], asyncio.Future[Any]]] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    answers = await self._book.complete_all([(job_id, result) for job_id, result, _ in group])
                except Exception as exc:
                    answers = [exc] * len(group)
                for (_, _, answer), value in zip(group, answers, strict=True):
                    if not answer.done():
                        answer.set_result(value)
        finally:
            self._draining = None
            # Only if this task was cancelled: nobody waits forever (the jobs stay "running" in the store).
            left, self._waiting = [*group, *self._waiting], []
            for _, _, answer in left:
                if not answer.done():
                    answer.set_result(RuntimeError("the picture could not be stored: the service stopped"))


# --- the service ----------------------------------------------------------------------------------------------


class GenerationService:
    def __init__(
        self,
        job_store: JobStore,
        *,
        engines: Sequence[str | EngineSpec] = ("chibi",),
        max_batch: int = 4,
        batch_window_s: float = 0.05,
        max_queued_per_user: int = 5,
        max_queued_total: int = 200,
        job_timeout_s: float = 60.0,
        max_attempts: int = 2,
        stale_after_s: float = 3600.0,
        worker_factory: WorkerFactory | None = None,
        pool: WorkerPool | None = None,
        metrics: ServiceMetrics | None = None,
        worker_start_timeout_s: float = 120.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if batch_window_s < 0:
            raise ValueError("batch_window_s must not be negative")
        if max_queued_per_user < 1 or max_queued_total < 1:
            raise ValueError("queue caps must be at least 1")
        if job_timeout_s <= 0:
            raise ValueError("job_timeout_s must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._store = job_store
        if not engines:
            raise ValueError("configure at least one engine")
        # The local worker builds its engines from specs; with a pool, workers elsewhere serve engines by
        # name (each worker says which), so plain names are enough.
        self._engine_specs = tuple(
            engine_spec(e) if pool is None or isinstance(e, EngineSpec) else EngineSpec(name=e, target="")
            for e in engines
        )
        #: The engines jobs may ask for: built by the local worker, or served by remote workers.
        self.engine_names = frozenset(s.name for s in self._engine_specs)
        self.max_batch = max_batch
        self.batch_window_s = batch_window_s
        self.max_queued_per_user = max_queued_per_user
        self.max_queued_total = max_queued_total
        self.job_timeout_s = job_timeout_s
        self.max_attempts = max_attempts
        self.stale_after_s = stale_after_s
        self.metrics = metrics if metrics is not None else ServiceMetrics()
        self._pool: WorkerPool = pool or LocalPool(
            self._engine_specs,
            worker_factory=worker_factory,
            start_timeout_s=worker_start_timeout_s,
            on_replace=self.metrics.worker_restarts.inc,
        )

        self._queue: FairQueue[_Job] = FairQueue()  # jobs waiting for a worker
        self._jobs: dict[int, _Job] = {}  # every job not finished yet (pending or running)
        self._unfinished_by_user: dict[str, int] = {}
        self._reserved: dict[str, int] = {}  # submits between the cap check and the queue
        self._running: dict[int, _Job] = {}  # jobs in a batch that a worker has or will have
        self._batches_in_flight = 0
        self._batch_started: float | None = None
        self._batch_ids = itertools.count(1)
        self._wake = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._book = Bookkeeper(job_store, self._stop_event)
        self._group_commit = _GroupCommit(self._book)
        self._accepting = False
        self._started = False
        self._stopped = False
        self._dispatcher: asyncio.Task[None] | None = None
        self._batch_tasks: set[asyncio.Task[None]] = set()
        self._finishers: set[asyncio.Task[None]] = set()
        self._cancels: set[asyncio.Task[None]] = set()  # CancelJobs on their way to the workers
        self._estimate = Estimator()  # seconds per batch and per item, for ETAs and "try again in ~N s"

    # --- life cycle -------------------------------------------------------------------------------------

    @property
    def worker_pid(self) -> int | None:
        """The local engine process's pid (None with remote workers)."""
        return getattr(self._pool, "pid", None)

    @property
    def pool(self) -> WorkerPool:
        return self._pool

    @property
    def running(self) -> bool:
        return self._accepting

    def workers(self) -> list[WorkerInfo]:
        """The live workers: the local one, or every ``chibify worker`` connected to the broker."""
        return self._pool.workers()

    async def start(self, *, recover: bool = True) -> list[JobHandle]:
        """Start the pool (the local worker, or the broker connection) and recover unfinished jobs.

        Returns a handle for every recovered job, including those failed because they were too old (their
        ``result()`` raises :class:`JobFailed` with a reason to deliver); ``handle.deliver`` says where.
        ``recover=False`` leaves unfinished jobs in the store alone (a console run beside a running bot
        must not take the bot's jobs).
        """
        if self._started:
            raise RuntimeError("the service was already started")
        self._started = True
        self._pool.attach(
            self,
            PoolLimits(
                job_timeout_s=self.job_timeout_s, max_attempts=self.max_attempts, max_batch=self.max_batch
            ),
        )
        await self._pool.start()
        try:
            handles = await self._recover() if recover else []
        except BaseException:
            await self._pool.stop(1.0)
            raise
        self._pool.begin()
        self._accepting = True
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="generation-dispatcher")
        self._wake.set()
        log.info(
            "generation service started: engines=%s max_batch=%d window=%.3fs recovered=%d pool=%s",
            ",".join(sorted(self.engine_names)),
            self.max_batch,
            self.batch_window_s,
            len(handles),
            type(self._pool).__name__,
        )
        return handles

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop intake, let the running batches finish within ``drain_timeout`` seconds, leave every other
        job queued in the store, and stop the worker. Waiting handles get :class:`ServiceStopped`."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        self._accepting = False
        self._stop_event.set()
        self._wake.set()
        waiting: set[asyncio.Task[None]] = set(self._batch_tasks)
        dispatcher = self._dispatcher
        if dispatcher is not None:
            waiting.add(dispatcher)
        if waiting:
            _done, pending = await asyncio.wait(waiting, timeout=drain_timeout)
            if pending:
                log.warning("running batches did not finish within %.1f s; they stay queued", drain_timeout)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            for task in _done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("dispatcher failed", exc_info=task.exception())
        if self._finishers:
            await asyncio.gather(*self._finishers, return_exceptions=True)
        for task in list(self._cancels):  # the workers stop anyway
            task.cancel()
        await asyncio.gather(*self._cancels, return_exceptions=True)
        # Batches that did not finish in time: with a local worker they go back to "queued" so they run
        # after the restart; with a broker that keeps this process's results they stay "running" (the
        # workers finish them, and the restart collects the results).
        interrupted = [job for job in self._running.values() if job.state == "running"]
        self._running.clear()
        if interrupted and not self._pool.keeps_results:
            kill = getattr(self._pool, "kill", None)
            if kill is not None:
                await kill()
            for job in interrupted:
                await self._book.quietly("requeue", job.job_id)
                job.state = "pending"
        left = len(self._jobs)
        stopped = ServiceStopped(STAYS_QUEUED)
        for job in list(self._jobs.values()):
            self._forget(job)
            job.handle.resolve(error=stopped)
        self._queue.clear()
        self._update_queue_gauge()
        await self._pool.stop(5.0)
        log.info("generation service stopped (%d jobs left queued)", left)

    async def __aenter__(self) -> GenerationService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- hooks for the pool (generation.pool.PoolHooks) ----------------------------------------------------

    def wake(self) -> None:
        """Room for a batch may have appeared, or the engines served changed."""
        self._wake.set()
        self._tell_unserved()

    async def orphan(self, outcome: ItemOutcome, run_s: float) -> None:
        """A result for a job this service does not track (a late duplicate, a job of an earlier run of
        this process): the store has the last word. ``complete`` is idempotent (no second avatar); a job
        the store holds finished some other way refuses it."""
        if outcome.cancelled:
            return
        try:
            if outcome.result is not None:
                request = GenerationRequest(user_key="user:0", spec=outcome.result.spec)
                stored = await self._book.retrying(
                    "complete", outcome.job_id, outcome.result.to_store(request)
                )
                log.info("job %d: a result for it was recorded (%s)", outcome.job_id, stored)
            else:
                await self._book.retrying("fail", outcome.job_id, clean_text(outcome.error or "it failed"))
        except Exception as exc:
            status = recorded_status(exc)
            if status is None:
                raise
            log.info("job %d: a late outcome was discarded (the store has it %s)", outcome.job_id, status)

    # --- submit -----------------------------------------------------------------------------------------

    async def submit(
        self, request: GenerationRequest, *, deliver: Delivery | None = None, user_limit: int | None = None
    ) -> JobHandle:
        """One job: :meth:`submit_many` with one request."""
        (handle,) = await self.submit_many([request], deliver=deliver, user_limit=user_limit)
        return handle

    async def submit_many(
        self,
        requests: Sequence[GenerationRequest],
        *,
        deliver: Delivery | None = None,
        user_limit: int | None = None,
    ) -> list[JobHandle]:
        """Admit one user's whole request (e.g. the four pictures of ``count:4``) or none of it.

        The caps are checked for all ``requests`` at once: the user's unfinished jobs plus these must stay
        within ``max_queued_per_user`` (and within ``user_limit``, e.g. a guild's per-member queue limit,
        when given), and all unfinished jobs plus these within ``max_queued_total``. With workers shared
        by several processes (a broker), the unfinished jobs are counted in the store, so the caps hold
        across processes. Past a cap it raises :class:`QueueFull` at once and writes nothing. The admitted
        jobs are written to the store in one call (all or none), then queued; the handles come back in the
        order of ``requests``.

        Raises :class:`ServiceStopped` when not running, ValueError for an engine that is not configured
        or for requests of different users.
        """
        if not self._accepting:
            raise ServiceStopped("the generator is not running right now; try again in a minute")
        requests = list(requests)
        if not requests:
            return []
        user = requests[0].user_key
        if any(r.user_key != user for r in requests):
            raise ValueError("one request is one user's: every job of it must have the same user_key")
        for request in requests:
            if request.engine not in self.engine_names:
                raise ValueError(
                    f"engine {request.engine!r} is not available "
                    f"(configured: {', '.join(sorted(self.engine_names))})"
                )
        counted = await self._book.count_unfinished(user) if self._pool.shared else None
        if not self._accepting:
            raise ServiceStopped("the generator is not running right now; try again in a minute")
        # Check and reserve with no await in between: concurrent requests cannot overcommit.
        self._admit(user, len(requests), user_limit, counted)
        self._reserved[user] = self._reserved.get(user, 0) + len(requests)
        ahead = self._head_start(requests)
        try:
            items = [(self._stored_request(r), user, r.kind) for r in requests]
            job_ids = await self._store.create_many(items, deliver=deliver.to_json() if deliver else None)
            if len(job_ids) != len(requests):
                raise RuntimeError(f"the job store made {len(job_ids)} jobs for {len(requests)} requests")
        except BaseException:
            if ahead is not None:
                await self._drop_head_start(ahead)
            raise
        finally:
            self._reserved[user] -= len(requests)
            if not self._reserved[user]:
                del self._reserved[user]
        handles = [JobHandle(self, job_id, r, deliver) for job_id, r in zip(job_ids, requests, strict=True)]
        if self._stop_event.is_set():
            # stop() began while the store wrote them: they stay queued there and run after the restart.
            if ahead is not None:
                await self._drop_head_start(ahead)
            for handle in handles:
                handle.resolve(error=ServiceStopped(STAYS_QUEUED))
            return handles
        now = time.monotonic()
        jobs = [_Job(h.job_id, h.request, deliver, h, submitted_at=now, enqueued_at=now) for h in handles]
        for job in jobs:
            self._track(job)
            self._enqueue(job)
            self.metrics.submitted.labels(kind=job.request.kind).inc()
        for job in jobs:
            position = self.position_of(job.job_id)
            job.last_position = position
            job.handle.emit(
                ProgressEvent(job.job_id, "queued", position=position, eta_s=self.eta_of(job.job_id))
            )
        self._tell_unserved()
        log.debug("jobs %s queued for %s", job_ids, user)
        return handles

    def _head_start(self, requests: Sequence[GenerationRequest]) -> GenerationRequest | None:
        """With nothing queued or running and an engine that draws one request per call, a lone request
        is drawn while its job row is written (the pool's ``head_start``; the local pool has one): its
        batch, dispatched once the row is there, takes that drawing over. The job is still recorded
        before anything of it is stored or reported, and a picture whose row never came is dropped."""
        if len(requests) != 1 or self._queue or self._running or self._batches_in_flight:
            return None
        request = requests[0]
        start = getattr(self._pool, "head_start", None)
        if start is None or not self._draws_alone(request.engine):
            return None
        return request if start(request) else None

    async def _drop_head_start(self, request: GenerationRequest) -> None:
        drop = getattr(self._pool, "drop_head_start", None)
        if drop is not None:
            await drop(request)

    def _stored_request(self, request: GenerationRequest) -> dict[str, Any]:
        data = request.to_json()
        if self._pool.owner is not None:
            data["owner"] = self._pool.owner  # which process collects its result (see _recover)
        return data

    def _admit(self, user: str, count: int, user_limit: int | None, counted: tuple[int, int] | None) -> None:
        """Raise :class:`QueueFull` unless ``count`` more jobs of ``user`` fit under every cap. ``counted``
        is (the user's, all) unfinished jobs in the store, when other processes share it."""
        limit = self.max_queued_per_user if user_limit is None else min(self.max_queued_per_user, user_limit)
        mine = self._unfinished_by_user.get(user, 0)
        total = len(self._jobs)
        if counted is not None:
            mine, total = max(mine, counted[0]), max(total, counted[1])
        mine += self._reserved.get(user, 0)
        total += sum(self._reserved.values())
        if mine + count > limit:
            self.metrics.rejected.labels(scope="user").inc()
            if count > limit:
                wait = max(1, math.ceil(self._estimate.item_s))
                raise QueueFull(
                    f"that is too many at once: you asked for {count} pictures, and at most {limit} "
                    "can wait for you",
                    retry_after_s=wait,
                    scope="user",
                )
            wait = self._retry_after_user(user, mine + count - limit)
            asked = f"; this asks for {count} more, and the limit is {limit}" if count > 1 else ""
            raise QueueFull(
                f"busy, try again in ~{wait} s (you already have {mine} pictures waiting{asked})",
                retry_after_s=wait,
                scope="user",
            )
        if total + count > self.max_queued_total:
            wait = self._retry_after_total(total + count)
            self.metrics.rejected.labels(scope="global").inc()
            raise QueueFull(
                f"busy, try again in ~{wait} s (the queue is full)", retry_after_s=wait, scope="global"
            )

    # --- queue bookkeeping (the fair queue itself is generation.fairqueue) ------------------------------------

    def _track(self, job: _Job) -> None:
        self._jobs[job.job_id] = job
        self._unfinished_by_user[job.user_key] = self._unfinished_by_user.get(job.user_key, 0) + 1

    def _forget(self, job: _Job) -> None:
        self._running.pop(job.job_id, None)
        if self._jobs.pop(job.job_id, None) is None:
            return
        left = self._unfinished_by_user.get(job.user_key, 1) - 1
        if left > 0:
            self._unfinished_by_user[job.user_key] = left
        else:
            self._unfinished_by_user.pop(job.user_key, None)

    def _enqueue(self, job: _Job, *, front: bool = False) -> None:
        job.state = "pending"
        self._queue.add(job, front=front)
        self._update_queue_gauge()
        self._wake.set()

    def _unqueue(self, job: _Job) -> None:
        self._queue.remove(job)
        self._update_queue_gauge()

    def _update_queue_gauge(self) -> None:
        self.metrics.queue_length.set(len(self._queue))

    def _take_batch(self, head: _Job) -> list[_Job]:
        batch = self._queue.take_batch(head, self.max_batch)
        for job in batch:
            job.state = "starting"
        self._update_queue_gauge()
        return batch

    def position_of(self, job_id: int) -> int | None:
        """How many jobs run before this one (0 while it runs); None once finished or unknown."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if job.state != "pending":
            return 0
        return self._queue.positions().get(job_id)

    def eta_of(self, job_id: int) -> float | None:
        """Estimated seconds until the job's result; None once finished or unknown."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        position = self._queue.positions().get(job_id, 0) if job.state == "pending" else None
        return self._estimate.eta_s(position, self._batch_started, time.monotonic())

    def _retry_after_user(self, user: str, need: int = 1) -> int:
        """Seconds until ``need`` of the user's unfinished jobs are done."""
        etas = [self.eta_of(j.job_id) for j in self._jobs.values() if j.user_key == user]
        return self._estimate.retry_after_user([e for e in etas if e is not None], need)

    def _retry_after_total(self, wanted: int) -> int:
        """Seconds until ``wanted`` unfinished jobs fit under the global cap."""
        return self._estimate.retry_after_total(
            wanted - self.max_queued_total, self._batch_started, time.monotonic()
        )

    def _announce_positions(self) -> None:
        positions = self._queue.positions()
        for job_id, position in positions.items():
            job = self._jobs.get(job_id)
            if job is not None and job.last_position != position:
                job.last_position = position
                job.handle.emit(
                    ProgressEvent(job_id, "position", position=position, eta_s=self.eta_of(job_id))
                )

    def _tell_unserved(self) -> None:
        """Tell each waiting job whose engine no live worker serves (once, until a worker serves it)."""
        served: dict[str, bool] = {}
        for job in list(self._jobs.values()):
            if job.state != "pending":
                continue
            engine = job.request.engine
            if engine not in served:
                served[engine] = self._pool.serves(engine)
            if served[engine]:
                job.told_unserved = False
            elif not job.told_unserved:
                job.told_unserved = True
                job.handle.emit(
                    ProgressEvent(
                        job.job_id,
                        "position",
                        position=self.position_of(job.job_id),
                        message=unserved_message(engine),
                    )
                )

    # --- recovery ------------------------------------------------------------------------------------------

    def _belongs_elsewhere(self, row: StoredJob) -> bool:
        """A job tagged by another bot process sharing the store (it recovers its own)."""
        owner = row.request.get("owner")
        if not isinstance(owner, str) or owner == self._pool.owner or self._pool.owner is None:
            return False
        return not owner.startswith("console-")

    async def _recover(self) -> list[JobHandle]:
        rows = sorted(await self._store.unfinished(), key=lambda r: (r.created_at, r.job_id))
        handles: list[JobHandle] = []
        adopted: list[_Job] = []
        now = datetime.now(UTC)
        for row in rows:
            if self._belongs_elsewhere(row):
                continue
            reason: str | None = None
            parsed: GenerationRequest | None = None
            try:
                parsed = GenerationRequest.from_json(row.request)
            except (KeyError, TypeError, ValueError) as exc:
                reason = f"the stored request could not be read ({describe_error(exc)})"
            else:
                age = (now - row.created_at).total_seconds()
                if age > self.stale_after_s:
                    reason = "the bot was offline and this request got too old; please ask again"
                elif row.request.get("has_init_image") and parsed.kind != "edit":
                    # a selfie's photo is never stored, so it is gone; an edit's picture was its parent's
                    # (still stored): the edit goes on from the parent's spec instead
                    reason = "the bot restarted before your photo was processed; please send it again"
                elif parsed.engine not in self.engine_names:
                    reason = f"the {parsed.engine} engine is no longer available"
            request = parsed or GenerationRequest(user_key=row.user_key or "unknown", spec={})
            deliver = delivery_of(row)
            handle = JobHandle(self, row.job_id, request, deliver)
            handles.append(handle)
            if reason is not None:
                reason = clean_text(reason)
                await self._store.fail(row.job_id, reason)
                handle.emit(ProgressEvent(row.job_id, "failed", message=reason))
                handle.resolve(error=JobFailed(row.job_id, reason))
                self.metrics.finished.labels(outcome="failed").inc()
                log.info("job %d user=%s recovered as failed: %s", row.job_id, request.user_key, reason)
                continue
            now_m = time.monotonic()
            job = _Job(row.job_id, request, deliver, handle, submitted_at=now_m, enqueued_at=-math.inf)
            if (
                row.status == "running"
                and row.request.get("owner") == self._pool.owner
                and await self._pool.locate(row.job_id, request.engine)
            ):
                # A worker has it (or its result is waiting for us): collect it, do not send it again.
                self._track(job)
                job.state = "starting"
                adopted.append(job)
                log.info(
                    "job %d user=%s is still with the workers; collecting it", row.job_id, request.user_key
                )
                continue
            if row.status == "running":
                await self._store.requeue(row.job_id)
            self._track(job)
            self._enqueue(job)
            handle.emit(ProgressEvent(row.job_id, "queued", position=self.position_of(row.job_id)))
            log.info("job %d user=%s recovered and queued again", row.job_id, request.user_key)
        if adopted:
            self._spawn_batch(adopted, resend=False)
        self._tell_unserved()
        return handles

    # --- dispatching ---------------------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while not self._stop_event.is_set():
            head = self._queue.peek(lambda job: self._pool.room(job.request.engine))
            if head is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.max_batch > 1 and not head.isolate and not self._draws_alone(head.request.engine):
                remaining = head.enqueued_at + self.batch_window_s - time.monotonic()
                if remaining > 0 and self._queue.compatible(head.batch_key()) < self.max_batch:
                    # Give compatible requests a moment to arrive; never longer than the window.
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), remaining)
                    continue
            batch = self._take_batch(head)
            if self._pool.serial:
                await self._guarded_batch(batch)
            else:
                self._pool.reserve(head.request.engine, len(batch))  # before any await: the next peek sees it
                self._spawn_batch(batch, reserved=True)

    def _draws_alone(self, engine: str) -> bool:
        """The engine draws one request per call (the chibi engine): company saves it no drawing time,
        so an idle worker gets a lone job at once instead of after ``batch_window_s``. Batches still form
        while the worker is busy (a full queue), which saves round trips and commits."""
        alone = getattr(self._pool, "draws_one_at_a_time", None)
        return bool(alone(engine)) if alone is not None else False

    def _spawn_batch(self, batch: list[_Job], *, resend: bool = True, reserved: bool = False) -> None:
        task = asyncio.create_task(
            self._guarded_batch(batch, resend=resend, reserved=reserved), name="generation-batch"
        )
        self._batch_tasks.add(task)
        task.add_done_callback(self._batch_tasks.discard)

    async def _guarded_batch(self, batch: list[_Job], *, resend: bool = True, reserved: bool = False) -> None:
        try:
            await self._run_batch(batch, resend=resend, reserved=reserved)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("batch of jobs %s failed unexpectedly", [j.job_id for j in batch])
            for job in batch:
                if job.state in ("starting", "running"):
                    await self._finish_failed(job, "something went wrong in the generator")

    async def _run_batch(self, batch: list[_Job], *, resend: bool = True, reserved: bool = False) -> None:
        handed = [False]
        try:
            await self._run_batch_inner(batch, resend=resend, reserved=reserved, handed=handed)
        except BaseException:
            if reserved and not handed[0]:
                self._pool.release(batch[0].request.engine, len(batch))
            raise

    async def _run_batch_inner(
        self, batch: list[_Job], *, resend: bool, reserved: bool, handed: list[bool]
    ) -> None:
        """Hand the batch to the pool and record its jobs running meanwhile, in one transaction: the
        worker starts drawing at once, and the store write overlaps the drawing. A result is recorded only
        after its job's "running" (the listener waits for it). A job the store will not mark running (the
        user deleted their data or cancelled meanwhile) is stopped in the worker (skipped, or its picture
        thrown away) and settled as the store has it. With remote workers a batch leaves the moment a
        worker is free, and no other bot's batch slips in ahead of it meanwhile."""
        batch_id = next(self._batch_ids)
        runnable: list[_Job] = []
        for job in batch:
            job.state = "running"
            job.attempts += 1
            if job.cancel_requested:
                await self._finish_cancelled(job)
                continue
            runnable.append(job)
        if reserved:
            handed[0] = True
            if len(runnable) < len(batch):  # the pool counts only the jobs it is given
                self._pool.release(batch[0].request.engine, len(batch) - len(runnable))
        if not runnable:
            return
        now = time.monotonic()
        for job in runnable:
            if job.started_at is None:
                job.started_at = now
                self.metrics.wait_seconds.observe(now - job.submitted_at)
            eta = round(self._estimate.batch_s, 2)
            job.handle.emit(ProgressEvent(job.job_id, "started", position=0, eta_s=eta))
            self._running[job.job_id] = job
        self._batch_started = now
        self._batches_in_flight += 1
        self._announce_positions()
        self.metrics.batch_size.observe(len(runnable))
        self.metrics.running.set(len(self._running))
        by_id = {job.job_id: job for job in runnable}
        marked = asyncio.Event()
        listener = _Listener(self, by_id, recorded=marked)
        items = tuple((job.job_id, job.request) for job in runnable)
        handed[0] = True
        try:
            run = asyncio.ensure_future(
                self._pool.run_batch(RunBatch(batch_id, items), listener, resend=resend)
            )
            try:
                if resend:
                    answers = await self._book.running_all([job.job_id for job in runnable])
                    for job, answer in zip(runnable, answers, strict=True):
                        if isinstance(answer, BaseException):
                            await self._pool.cancel([job.job_id])  # the worker skips it or drops it
                            if job.state not in ("finishing", "finished"):
                                await self._could_not_start(job, answer)
            except BaseException:
                run.cancel()
                raise
            finally:
                marked.set()
            report = await run
        finally:
            self._batches_in_flight -= 1
            if not self._batches_in_flight:
                self._batch_started = None
            self.metrics.running.set(len(self._running))
        if report.timed_out:
            self.metrics.failures.labels(reason="timeout").inc()
            await self._after_timeout(runnable, report.hung)
            return
        if report.crashed is not None:
            self.metrics.failures.labels(reason="worker_crash").inc()
            await self._after_crash(runnable)
            return
        if report.outcomes:
            self._estimate.learn(report.run_s, len(runnable))
            self.metrics.run_seconds.observe(report.run_s)
            task = asyncio.create_task(self._finish_batch(by_id, report), name=f"finish-batch-{batch_id}")
            self._finishers.add(task)
            task.add_done_callback(self._finishers.discard)

    async def _could_not_start(self, job: _Job, exc: BaseException) -> None:
        # e.g. the user deleted their data or cancelled meanwhile: that job cannot run, the rest can.
        log.warning("job %d could not start: %s", job.job_id, describe_error(exc))
        job.state = "running"
        recorded = recorded_status(exc)
        if recorded is not None:
            await self._settle_as_recorded(job, recorded, "it could not be started")
        else:
            await self._finish_failed(job, "it could not be started")

    async def _after_timeout(self, batch: list[_Job], hung_call: tuple[int, ...] | None) -> None:
        """The batch passed its deadline. The jobs of the engine call that hung are the suspects (all of
        the batch if the worker did not say): one suspect alone hung, and fails; several (an engine that
        draws a batch in one call) are each run again alone, once. Everyone else of the batch was drawn or
        not reached yet: they run again at once, each alone, ahead of everyone else."""
        for job in batch:
            self._running.pop(job.job_id, None)
        suspects = [job for job in batch if hung_call is None or job.job_id in hung_call] or batch
        too_long = f"{TOOK_TOO_LONG} (over {self.job_timeout_s:g} s)"
        retry: list[_Job] = []
        for job in batch:
            if job.state in ("finishing", "finished"):
                continue
            if job.cancel_requested:
                await self._finish_cancelled(job)
            elif len(suspects) == 1 and job is suspects[0]:
                log.warning("job %d hung; it fails", job.job_id)
                await self._finish_failed(job, too_long)
            else:
                retry.append(job)
        await self._retry_alone(retry)

    async def _after_crash(self, batch: list[_Job]) -> None:
        for job in batch:
            self._running.pop(job.job_id, None)
        retry: list[_Job] = []
        for job in batch:
            if job.state in ("finishing", "finished"):
                continue
            if job.cancel_requested:
                await self._finish_cancelled(job)
            elif job.attempts >= self.max_attempts:
                await self._finish_failed(job, CRASHED)
            else:
                retry.append(job)
        await self._retry_alone(retry)

    async def _retry_alone(self, retry: list[_Job]) -> None:
        """Queue each job again alone, ahead of everyone else: one bad request cannot sink its neighbours
        twice."""
        for job in reversed(retry):
            try:
                await self._book.retrying("requeue", job.job_id, done_when="queued")
            except Exception as exc:
                log.warning("job %d could not be requeued: %s", job.job_id, describe_error(exc))
                recorded = recorded_status(exc)
                if recorded is not None:
                    await self._settle_as_recorded(job, recorded, "it could not be retried")
                else:
                    await self._finish_failed(job, "it could not be retried")
                continue
            job.isolate = True
            job.enqueued_at = -math.inf
            self._enqueue(job, front=True)
            job.handle.emit(ProgressEvent(job.job_id, "queued", position=0, message="retrying"))
        if retry:
            log.info("retrying jobs %s one by one", [j.job_id for j in retry])

    # --- finishing: the handle learns only what the store recorded -------------------------------------------

    async def _finish_batch(self, by_id: dict[int, _Job], report: BatchReport) -> None:
        """Settle a batch's outcomes; its pictures are stored together, with one commit
        (:meth:`Bookkeeper.complete_all`)."""
        pictures: list[tuple[_Job, GenerationResult]] = []
        for outcome in report.outcomes:
            job = by_id.get(outcome.job_id)
            if job is None or job.state in ("finishing", "finished"):
                continue
            if job.cancel_requested or outcome.cancelled or outcome.result is None:
                await self._finish_outcome(job, outcome, report.run_s)
            else:
                job.state = "finishing"  # from here on a cancel is too late: the picture is being stored
                pictures.append((job, outcome.result))
        if not pictures:
            return
        try:
            answers = await self._book.complete_all(
                [(job.job_id, result.to_store(job.request)) for job, result in pictures]
            )
        except Exception:
            log.exception("could not store the pictures of jobs %s", [job.job_id for job, _ in pictures])
            answers = [RuntimeError("the pictures could not be stored")] * len(pictures)
        for (job, result), answer in zip(pictures, answers, strict=True):
            try:
                await self._stored(job, result, answer, report.run_s)
            except Exception:
                log.exception("could not finish job %d", job.job_id)
                if job.state != "finished":
                    await self._finish_failed(job, "something went wrong in the generator", report.run_s)

    async def _finish_outcome(self, job: _Job, outcome: ItemOutcome, run_s: float) -> None:
        if job.state in ("finishing", "finished"):
            return
        try:
            if job.cancel_requested or outcome.cancelled:
                await self._finish_cancelled(job)
            elif outcome.result is not None:
                await self._finish_done(job, outcome.result, run_s)
            else:
                await self._finish_failed(job, outcome.error or "the engine gave no picture", run_s)
        except Exception:
            log.exception("could not finish job %d", job.job_id)
            if job.state != "finished":
                await self._finish_failed(job, "something went wrong in the generator", run_s)

    async def _finish_done(self, job: _Job, result: GenerationResult, run_s: float) -> None:
        job.state = "finishing"
        stored: Any = await self._group_commit.complete(job.job_id, result.to_store(job.request))
        await self._stored(job, result, stored, run_s)

    async def _stored(self, job: _Job, result: GenerationResult, stored: Any, run_s: float) -> None:
        """Settle a job whose picture the store took (``stored``: what it returned) or did not (an
        exception: a refusal, or a fault that outlasted the retries)."""
        if isinstance(stored, BaseException):
            recorded = recorded_status(stored)
            if recorded is not None:
                # e.g. cancelled or failed meanwhile: whatever the store has, it is not this picture
                log.warning("job %d: the store kept it %s instead of done", job.job_id, recorded)
                await self._settle_as_recorded(job, recorded, SAVE_FAILED, run_s)
                return
            log.error(
                "job %d: its result could not be saved after %d tries: %s",
                job.job_id,
                STORE_TRIES,
                describe_error(stored),
            )
            await self._finish_failed(job, SAVE_FAILED, run_s)
            return
        final = dataclasses.replace(result, job_id=job.job_id, stored=stored)
        self._settle(job, "done", result=final, run_s=run_s)

    async def _finish_failed(self, job: _Job, reason: str, run_s: float | None = None) -> None:
        job.state = "finishing"
        reason = clean_text(reason)
        recorded = await self._book.until_recorded("fail", job.job_id, reason)
        await self._settle_as_recorded(job, recorded or "failed", reason, run_s)

    async def _finish_cancelled(self, job: _Job) -> None:
        job.state = "finishing"
        recorded = await self._book.until_recorded("cancel", job.job_id)
        await self._settle_as_recorded(job, recorded or "cancelled", "")

    async def _settle_as_recorded(
        self, job: _Job, status: str, reason: str, run_s: float | None = None
    ) -> None:
        """Resolve the handle with the status the store has for the job ("stopped": the store could not be
        reached before the service stopped, so the job runs again after the restart)."""
        if status == "failed":
            self._settle(job, "failed", reason=reason or "it failed", run_s=run_s)
        elif status in ("cancelled", GONE):
            self._settle(job, "cancelled")
        elif status == "stopped":
            self._settle(job, "stopped")
        else:
            # The store says done (or still queued/running): never tell the user it failed. The result is
            # delivered from the store after the next start.
            log.error("job %d: the store has it %s; leaving it to the next start", job.job_id, status)
            self._settle(job, "stopped")

    def _settle(
        self,
        job: _Job,
        outcome: str,
        *,
        result: GenerationResult | None = None,
        reason: str = "",
        run_s: float | None = None,
    ) -> None:
        job.state = "finished"
        self._forget(job)
        self.metrics.running.set(len(self._running))
        if outcome == "stopped":
            self._log_outcome(job, "stopped", run_s, "the job store could not be reached")
            job.handle.resolve(error=ServiceStopped(STAYS_QUEUED))
            return
        self.metrics.finished.labels(outcome=outcome).inc()
        self._log_outcome(job, outcome, run_s, reason)
        if outcome == "done":
            assert result is not None
            job.handle.emit(ProgressEvent(job.job_id, "done"))
            job.handle.resolve(result)
        elif outcome == "failed":
            job.handle.emit(ProgressEvent(job.job_id, "failed", message=reason))
            job.handle.resolve(error=JobFailed(job.job_id, reason))
        else:
            job.handle.emit(ProgressEvent(job.job_id, "cancelled"))
            job.handle.resolve(error=JobCancelled(job.job_id))

    def _log_outcome(self, job: _Job, outcome: str, run_s: float | None, reason: str = "") -> None:
        wait = (job.started_at - job.submitted_at) if job.started_at is not None else None
        log.info(
            "job %d user=%s kind=%s engine=%s outcome=%s wait=%s run=%s attempts=%d%s",
            job.job_id,
            job.user_key,
            job.request.kind,
            job.request.engine,
            outcome,
            f"{wait:.3f}s" if wait is not None else "-",
            f"{run_s:.3f}s" if run_s is not None else "-",
            job.attempts,
            f" reason={reason!r}" if reason else "",
        )

    async def cancel(self, job_id: int) -> bool:
        """Cancel a job (what :meth:`JobHandle.cancel` calls). A queued job is dropped. A running one is
        recorded cancelled at once and the worker told to stop it (skipped if not started, stopped in the
        engine between steps, or its picture thrown away). False if it had already finished."""
        job = self._jobs.get(job_id)
        if job is None or job.state in ("finishing", "finished"):
            return False
        if job.state == "pending":
            self._unqueue(job)
            await self._drop_head_start(job.request)  # drawn ahead of its batch: stop that too
            await self._finish_cancelled(job)
            self._announce_positions()
            return True
        job.cancel_requested = True
        if job.state == "running":
            # Recorded at once (a picture that comes later is thrown away: the job is finished), and the
            # worker told meanwhile: it skips the job, or stops the engine call between steps. The message
            # may wait behind a batch the worker has not read yet (a worker that hangs): nobody waits for it.
            task = asyncio.create_task(self._pool.cancel([job_id]), name=f"cancel-{job_id}")
            self._cancels.add(task)
            task.add_done_callback(self._cancels.discard)
            await self._finish_cancelled(job)
        return True
