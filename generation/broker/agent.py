"""``chibify worker``: a generation worker on any machine, fed by NATS JetStream.

:class:`WorkerAgent` needs only the broker: no database, no Discord token, and it keeps nothing (a photo
is asked of the bot that sent the job, drawn in memory and dropped). It starts its engines once in a child
process behind a :class:`~generation.supervisor.Supervisor` (the same one the bot uses for its local
worker), says who it is (presence), then pulls:

* one job as soon as there is one, plus whatever compatible jobs are already waiting, up to
  ``max_batch``; jobs of one batch share an engine, model, size and steps, and a job delivered again
  (its earlier worker died or froze) runs alone;
* while it draws, every job it holds gets ``in_progress()`` every third of ``ack_wait``; a worker that
  stops (SIGKILL) or freezes (SIGSTOP) falls silent, and JetStream gives its jobs to another worker
  after ``ack_wait``. A frozen worker that wakes up finds its heartbeats lapsed and drops its late
  results (another worker has those jobs);
* a job delivered more than its ``max_attempts`` times (it kept killing workers) fails with a reason;
  an engine process that crashes sends its jobs back (each runs alone next time); a job past its deadline
  fails with "took too long" and its batch-mates go back;
* a cancelled job (cancel bucket, cancel subject) is skipped, or stopped in the engine between steps.

SIGTERM: stop pulling, finish and ack what it holds, say goodbye, exit. A broker restart is ridden out:
the connection reconnects, and publishes are retried until the broker has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import socket
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from generation.broker.config import BrokerConfig, check_name, connect
from generation.broker.pull import Puller
from generation.broker.setup import ensure_engine_consumer, ensure_streams
from generation.broker.wire import (
    EventMessage,
    JobMessage,
    PhotoRequest,
    ResultMessage,
    WireError,
    encode_presence,
)
from generation.jobs import (
    BatchProgress,
    BatchUpdate,
    EngineSpec,
    ItemOutcome,
    ItemsStarted,
    RunBatch,
    WorkerInfo,
)
from generation.supervisor import BatchReport, Supervisor, WorkerFactory
from generation.worker import describe_error

__all__ = ["WorkerAgent", "default_worker_id"]

log = logging.getLogger(__name__)

CRASHED = "the generator crashed while drawing it"
PHOTO_GONE = "the bot restarted before your photo was processed; please send it again"
#: How long one lingering pull waits before it is renewed.
POLL_S = 5.0
#: Cancelled job ids remembered from the cancel subject (the bucket has them all).
CANCEL_MEMORY = 10_000


def _pending(msg: Any) -> int:
    """How many more jobs the consumer had when this one was delivered (unknown: 1, so we ask)."""
    try:
        return int(msg.metadata.num_pending)
    except Exception:
        return 1


def default_worker_id() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40] or "worker"
    return f"{host}-{os.getpid()}"


@dataclass(eq=False)
class _Held:
    """One job message this worker holds."""

    msg: Any
    job: JobMessage
    deliveries: int
    engine: str
    done: bool = False


@dataclass(eq=False)
class _Holding:
    """The messages of one pull, and the heartbeat that keeps them ours."""

    held: list[_Held]
    ack_wait_s: float
    last_beat: float = field(default_factory=time.monotonic)
    lapsed: bool = False

    def stale(self) -> bool:
        """Did our heartbeats lapse (frozen past ack_wait)? Then JetStream gave these jobs to another
        worker: whatever we made of them is late."""
        return self.lapsed or time.monotonic() - self.last_beat > self.ack_wait_s


class WorkerAgent:
    def __init__(
        self,
        config: BrokerConfig,
        engines: Sequence[EngineSpec],
        *,
        max_batch: int = 4,
        worker_id: str | None = None,
        start_timeout_s: float = 120.0,
        worker_factory: WorkerFactory | None = None,
        default_timeout_s: float = 120.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if not engines:
            raise ValueError("a worker needs at least one engine")
        self.config = config
        self.names = config.names
        self.specs = tuple(engines)
        for spec in self.specs:
            check_name("engine name", spec.name)
        self.max_batch = max_batch
        self.worker_id = check_name("worker id", worker_id or default_worker_id())
        self._supervisor = Supervisor(
            self.specs,
            job_timeout_s=default_timeout_s,
            worker_factory=worker_factory,
            start_timeout_s=start_timeout_s,
        )
        self._nc: Any = None
        self._js: Any = None
        self._workers_kv: Any = None
        self._cancel_kv: Any = None
        self._pullers: dict[str, Puller] = {}
        self._state = "starting"
        self._served = 0
        self._started_at = time.time()
        self._cancelled: OrderedDict[int, None] = OrderedDict()
        self._holding: _Holding | None = None
        self._reconnected = False
        self._batch_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.ready = asyncio.Event()

    # --- presence ---------------------------------------------------------------------------------------

    def info(self) -> WorkerInfo:
        return WorkerInfo(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            engines=tuple(self._supervisor.engines),
            models=tuple(self._supervisor.models),
            state=self._state,  # type: ignore[arg-type]
            jobs_served=self._served,
            last_seen=time.time(),
            max_batch=self.max_batch,
            started_at=self._started_at,
            one_at_a_time=tuple(sorted(self._supervisor.one_at_a_time)),
        )

    async def _announce(self, *, gone: bool = False, bucket: bool = True) -> None:
        """Presence on the core subject (the bots listen), and in the bucket (``chibify workers`` and
        bots that start later read it; written by the heartbeat, not on every busy/idle change)."""
        payload = encode_presence(self.info(), heartbeat_s=self.config.heartbeat_s, gone=gone)
        with contextlib.suppress(Exception):
            await self._nc.publish(self.names.presence_subject, payload)
        if not bucket:
            return
        with contextlib.suppress(Exception):
            if gone:
                await self._workers_kv.delete(self.worker_id)
            else:
                await self._workers_kv.put(self.worker_id, payload)

    async def _on_reconnect(self) -> None:
        self._reconnected = True  # cancel messages may have been missed: ask the bucket from now on
        await self._announce()

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self._spawn(self._announce(bucket=state not in ("busy", "idle")), "presence")

    async def _presence_loop(self) -> None:
        while True:
            await self._announce()
            await asyncio.sleep(self.config.heartbeat_s)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- running ----------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, start the engines, serve until ``stop`` is set; then finish what it holds and leave.
        Raises :class:`~generation.broker.config.BrokerUnavailable` or
        :class:`~generation.worker.WorkerStartError` (with one line for a person)."""
        self._nc = await connect(
            self.config, name=f"chibify-worker-{self.worker_id}", on_reconnect=self._on_reconnect
        )
        try:
            self._js = self._nc.jetstream(timeout=10.0)
            self._workers_kv, self._cancel_kv = await ensure_streams(self._js, self.config)
            await self._nc.subscribe(self.names.cancel_subject, cb=self._on_cancel)
            self._spawn(self._presence_loop(), "presence-loop")
            await self._supervisor.start()  # engines load and warm up here
            for spec in self.specs:
                durable = await ensure_engine_consumer(
                    self._js, self.names, spec.name, ack_wait_s=self.config.ack_wait_s
                )
                puller = Puller(self._nc, self.names.jobs_stream, durable)
                await puller.start()
                self._pullers[spec.name] = puller
            self._set_state("idle")
            self.ready.set()
            log.info(
                "worker %s ready: engines %s, max batch %d, broker %s",
                self.worker_id,
                ",".join(self._supervisor.engines),
                self.max_batch,
                self.config.shown_url,
            )
            self._spawn(self._say_stopping(stop), "stop-notice")
            while not stop.is_set():
                messages = await self._next(stop)
                if messages:
                    self._set_state("busy")
                    await self._serve(messages)
                    self._set_state("idle")
            log.info("worker %s leaves: %d jobs served", self.worker_id, self._served)
        finally:
            await self._leave()

    async def _say_stopping(self, stop: asyncio.Event) -> None:
        await stop.wait()
        held = len(self._holding.held) if self._holding is not None else 0
        log.info("worker %s stopping: finishing the %d jobs in hand, taking no more", self.worker_id, held)

    async def _leave(self) -> None:
        self._set_state("stopping")
        for puller in self._pullers.values():
            for msg in puller.drop_backlog():
                with contextlib.suppress(Exception):
                    await msg.nak()
            await puller.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._announce(gone=True)
        await self._supervisor.stop(5.0)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.drain(), 5.0)
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def _next(self, stop: asyncio.Event) -> list[_Held]:
        """Wait for the first job of any engine this worker serves (or ``stop``), then take what else of
        that engine is already waiting, up to ``max_batch``."""
        waits = {
            asyncio.create_task(puller.wait_one(POLL_S), name=f"pull-{engine}"): engine
            for engine, puller in self._pullers.items()
        }
        stopper = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait({*waits, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*waits, stopper):
                if not task.done():
                    task.cancel()
            await asyncio.gather(*waits, stopper, return_exceptions=True)
        got: list[tuple[str, Any]] = []
        failed = False
        for task, engine in waits.items():
            if not task.done() or task.cancelled():
                continue
            error = task.exception()
            if error is None:
                got += [(engine, m) for m in task.result()]
            else:
                failed = True
                log.warning("pulling %s jobs failed: %s", engine, describe_error(error))
        if not got:
            if failed and not stop.is_set():
                await asyncio.sleep(0.2)  # the broker is away: do not spin
            return []
        first_engine = got[0][0]
        room = self.max_batch - sum(1 for e, _ in got if e == first_engine)
        if room > 0 and not stop.is_set() and _pending(got[-1][1]):
            with contextlib.suppress(Exception):
                got += [(first_engine, m) for m in await self._pullers[first_engine].take(room)]
        held: list[_Held] = []
        for engine, msg in got:
            try:
                job = JobMessage.decode(msg.data)
            except WireError as exc:
                log.error("a job message could not be read (%s); dropping it", exc)
                with contextlib.suppress(Exception):
                    await msg.term()
                continue
            held.append(_Held(msg, job, deliveries=int(msg.metadata.num_delivered), engine=engine))
        return held

    async def _heartbeat(self, holding: _Holding) -> None:
        period = max(0.1, holding.ack_wait_s / 3)
        while True:
            await asyncio.sleep(period)
            if holding.stale():
                holding.lapsed = True
                log.warning("this worker was stalled past ack_wait; its jobs went to another worker")
                return
            for h in holding.held:
                if not h.done:
                    with contextlib.suppress(Exception):
                        await h.msg.in_progress()
            holding.last_beat = time.monotonic()

    async def _serve(self, held: list[_Held]) -> None:
        holding = _Holding(held, self.config.ack_wait_s)
        self._holding = holding
        beat = asyncio.create_task(self._heartbeat(holding), name="heartbeat")
        try:
            runnable = await self._admit(holding)
            for group in self._groups(runnable):
                await self._run_group(holding, group)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            self._holding = None

    async def _admit(self, holding: _Holding) -> list[_Held]:
        """Settle what must not run: jobs that used up their attempts, cancelled jobs; fetch photos."""
        flagged = await asyncio.gather(*(self._flagged(h) for h in holding.held))
        runnable: list[_Held] = []
        for h, cancelled in zip(holding.held, flagged, strict=True):
            if h.deliveries > h.job.max_attempts:
                log.warning("job %d was delivered %d times; it fails", h.job.job_id, h.deliveries)
                await self._settle(holding, h, ItemOutcome(h.job.job_id, error=CRASHED))
            elif cancelled:
                await self._settle(holding, h, ItemOutcome(h.job.job_id, error="cancelled", cancelled=True))
            elif h.job.has_photo:
                photo = await self._photo(h.job)
                if photo is None and h.job.request.kind != "edit":
                    await self._settle(holding, h, ItemOutcome(h.job.job_id, error=PHOTO_GONE))
                else:  # an edit goes on from its parent's spec, as after a restart of the local worker
                    h.job = replace(h.job, request=replace(h.job.request, init_image=photo))
                    runnable.append(h)
            else:
                runnable.append(h)
        return runnable

    async def _flagged(self, h: _Held) -> bool:
        """Cancelled? The cancel subject tells a connected worker at once; the cancel bucket is asked for
        a job delivered again, or since this worker's connection was lost once (it may have missed one)."""
        job_id = h.job.job_id
        if job_id in self._cancelled:
            return True
        if h.deliveries == 1 and not self._reconnected:
            return False
        try:
            await self._cancel_kv.get(str(job_id))
            return True
        except (
            Exception
        ):  # KeyNotFoundError: not cancelled; anything else: run it (the bot has the last word)
            return False

    async def _photo(self, job: JobMessage) -> bytes | None:
        parts: list[bytes] = []
        chunks = 1
        index = 0
        while index < chunks:
            try:
                reply = await self._nc.request(
                    self.names.photo_subject(job.owner),
                    PhotoRequest(job.job_id, index).encode(),
                    timeout=10.0,
                )
            except Exception as exc:
                log.warning("job %d: its photo could not be fetched (%s)", job.job_id, describe_error(exc))
                return None
            if not reply.headers or "Chibify-Chunks" not in reply.headers:
                return None  # {"error": "gone"}: the bot no longer has it
            chunks = int(reply.headers["Chibify-Chunks"])
            parts.append(reply.data)
            index += 1
        return b"".join(parts)

    def _groups(self, runnable: list[_Held]) -> list[list[_Held]]:
        """Compatible jobs together (same engine, model, size, steps), up to max_batch; a job delivered
        again runs alone, so one that kills workers cannot take its neighbours with it twice."""
        groups: list[list[_Held]] = []
        open_groups: dict[Any, list[_Held]] = {}
        for h in runnable:
            if h.deliveries > 1:
                groups.append([h])
                continue
            key = h.job.request.batch_key()
            group = open_groups.get(key)
            if group is None or len(group) >= self.max_batch:
                group = []
                open_groups[key] = group
                groups.append(group)
            group.append(h)
        return groups

    async def _run_group(self, holding: _Holding, group: list[_Held]) -> None:
        group = [h for h in group if not h.done]
        if not group:
            return
        by_id = {h.job.job_id: h for h in group}
        batch = RunBatch(next(self._batch_ids), tuple((h.job.job_id, h.job.request) for h in group))
        timeout_s = min(h.job.timeout_s for h in group)

        def on_update(message: BatchUpdate) -> None:
            if isinstance(message, ItemsStarted):
                event = EventMessage("started", self.worker_id, message.job_ids)
                ids = message.job_ids
            elif isinstance(message, BatchProgress):
                event = EventMessage(
                    "step", self.worker_id, (message.job_id,), message.step, message.total_steps
                )
                ids = (message.job_id,)
            else:
                return
            for owner in {by_id[j].job.owner for j in ids if j in by_id}:
                self._spawn(self._nc.publish(self.names.events_subject(owner), event.encode()), "event")

        report: BatchReport = await self._supervisor.run(batch, on_update, timeout_s=timeout_s)
        if report.timed_out:
            suspects = [h for h in group if report.hung is None or h.job.job_id in report.hung] or group
            for h in group:
                if len(suspects) == 1 and h is suspects[0]:
                    log.warning("job %d hung; it fails", h.job.job_id)
                    reason = f"took too long (over {h.job.timeout_s:g} s)"
                    await self._settle(holding, h, ItemOutcome(h.job.job_id, error=reason), report.run_s)
                else:
                    await self._give_back(holding, h)
            return
        if report.crashed is not None:
            for h in group:
                if h.deliveries >= h.job.max_attempts:
                    await self._settle(holding, h, ItemOutcome(h.job.job_id, error=CRASHED), report.run_s)
                else:
                    await self._give_back(holding, h)
            return
        for outcome in report.outcomes:
            drawn = by_id.get(outcome.job_id)
            if drawn is not None:
                await self._settle(holding, drawn, outcome, report.run_s)
                self._served += 1

    async def _give_back(self, holding: _Holding, h: _Held) -> None:
        """Redeliver at once (to any worker; it will run alone there)."""
        h.done = True
        if holding.stale():
            return
        with contextlib.suppress(Exception):
            await h.msg.nak()

    async def _settle(self, holding: _Holding, h: _Held, outcome: ItemOutcome, run_s: float = 0.0) -> None:
        """Publish the outcome for the bot that sent the job, then ack the job (in that order: a worker
        that dies between the two leaves a duplicate, which the bot discards, never a gap)."""
        h.done = True
        if holding.stale():
            log.warning(
                "job %d: dropping its late outcome (this worker was stalled; another worker has the job)",
                h.job.job_id,
            )
            return
        result = outcome.result
        if result is not None and len(result.png) + 16_384 > int(self._nc.max_payload):
            result = None
            outcome = ItemOutcome(
                outcome.job_id,
                error=(
                    f"the picture ({len(outcome.result.png) // 1024} KB) is larger than the broker's "  # type: ignore[union-attr]
                    f"max_payload ({int(self._nc.max_payload) // 1024} KB)"
                ),
            )
        message = ResultMessage(
            job_id=h.job.job_id,
            worker=self.worker_id,
            run_s=run_s,
            result=result,
            error=outcome.error,
            cancelled=outcome.cancelled,
        )
        subject = self.names.result_subject(h.job.owner, h.job.job_id)
        delay = 0.1
        while True:
            try:
                await self._js.publish(
                    subject,
                    message.encode(),
                    timeout=5.0,
                    headers={"Nats-Msg-Id": f"{subject}.{h.msg.metadata.sequence.stream}.{h.deliveries}"},
                )
                break
            except Exception as exc:
                if holding.stale():
                    return
                log.warning(
                    "job %d: could not publish its result (%s); retrying", h.job.job_id, describe_error(exc)
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        with contextlib.suppress(Exception):
            await h.msg.ack()

    async def _on_cancel(self, msg: Any) -> None:
        try:
            ids = [int(j) for j in json.loads(msg.data)]
        except (TypeError, ValueError):
            return
        for job_id in ids:
            self._cancelled[job_id] = None
            while len(self._cancelled) > CANCEL_MEMORY:
                self._cancelled.popitem(last=False)
        holding = self._holding
        if holding is None:
            return
        mine = [h.job.job_id for h in holding.held if h.job.job_id in ids and not h.done]
        if mine:
            log.info("cancelling jobs %s", mine)
            await self._supervisor.cancel(mine)
