"""The bot's side of the broker: :class:`NatsPool`, a :class:`~generation.pool.WorkerPool` whose workers are
``chibify worker`` processes on any machines.

* **Fair across machines.** The service's fair queue stays in the bot: a batch is published to JetStream
  only when a live worker serving its engine is idle (:meth:`NatsPool.room`), so the stream never holds
  more than about one batch per idle worker and one user's flood cannot get ahead of another user's job
  by more than a batch per worker. Workers say who they are, what they serve and whether they are busy
  (presence: a key-value bucket for whoever starts later, and a core subject for news).
* **Durable.** Jobs and results live in file-backed streams; each bot process has its own durable results
  consumer (``owner``), so a restarted bot collects what finished while it was down (the service asks
  :meth:`NatsPool.locate` at start-up before it sends a running job again). Results are acked only once
  the service recorded them.
* **Private.** A photo never goes to the broker's disk: the job says it has one, and the worker asks this
  process for it (in chunks); after a restart it is gone, as it is with the local worker.
* **Cancellation** is a key in the cancel bucket plus a message on the cancel subject; the worker skips the
  job or stops the engine between steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from generation.broker.config import BrokerConfig, BrokerUnavailable, check_name, connect
from generation.broker.pull import Puller
from generation.broker.setup import ensure_results_consumer, ensure_streams
from generation.broker.wire import (
    EventMessage,
    JobMessage,
    PhotoRequest,
    ResultMessage,
    WireError,
    decode_presence,
)
from generation.jobs import BatchProgress, ItemOutcome, ItemsStarted, RunBatch, WorkerInfo
from generation.pool import BatchListener, PoolHooks, PoolLimits
from generation.supervisor import BatchReport
from generation.worker import describe_error

__all__ = ["NatsPool", "console_owner"]

log = logging.getLogger(__name__)

#: Photo chunks stay this far under the broker's max_payload (room for headers and framing).
PHOTO_CHUNK_MARGIN = 4096


def _pending(msg: Any) -> int:
    """How many more messages the consumer had for us when this one was delivered."""
    try:
        return int(msg.metadata.num_pending)
    except Exception:
        return 1  # unknown: ask


def console_owner() -> str:
    """A fresh owner name for a short-lived process (the console): its results consumer is removed an hour
    after it stops."""
    return f"console-{secrets.token_hex(4)}"


@dataclass
class _Seen:
    info: WorkerInfo
    heartbeat_s: float
    at: float  # monotonic time of the last word from it


@dataclass(eq=False)
class _Flight:
    """One batch the service handed over: published (or adopted after a restart), waiting for outcomes."""

    batch: RunBatch
    engine: str
    listener: BatchListener
    open: set[int]
    unclaimed: set[int] = field(default_factory=set)  # published, not started by a worker yet
    run_s: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def settle(self, job_id: int) -> None:
        self.open.discard(job_id)
        if not self.open:
            self.done.set()


class NatsPool:
    serial = False
    shared = True

    def __init__(self, config: BrokerConfig, *, owner: str, durable: bool = True) -> None:
        self.config = config
        self.names = config.names
        self.owner = check_name("instance name", owner)
        #: A bot process (True) collects results after its restart; a console run (False) does not.
        self.keeps_results = durable
        self._hooks: PoolHooks | None = None
        self._limits = PoolLimits(job_timeout_s=60.0, max_attempts=2, max_batch=4)
        self._nc: Any = None
        self._js: Any = None
        self._cancel_kv: Any = None
        self._workers_kv: Any = None
        self._results: Puller | None = None
        self._seen: dict[str, _Seen] = {}
        self._unclaimed: dict[str, int] = {}
        self._flights: dict[int, _Flight] = {}  # job id -> its batch
        self._photos: dict[int, bytes] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subs: list[Any] = []
        self._closing = asyncio.Event()

    # --- life cycle -----------------------------------------------------------------------------------

    def attach(self, hooks: PoolHooks, limits: PoolLimits) -> None:
        self._hooks = hooks
        self._limits = limits

    async def start(self) -> None:
        self._nc = await connect(self.config, name=f"chibify-bot-{self.owner}")
        try:
            self._js = self._nc.jetstream(timeout=10.0)
            self._workers_kv, self._cancel_kv = await ensure_streams(self._js, self.config)
            await ensure_results_consumer(
                self._js,
                self.names,
                self.owner,
                inactive_threshold_s=None if self.keeps_results else 3600.0,
            )
            self._subs.append(await self._nc.subscribe(self.names.presence_subject, cb=self._on_presence))
            self._subs.append(
                await self._nc.subscribe(self.names.events_subject(self.owner), cb=self._on_event)
            )
            self._subs.append(
                await self._nc.subscribe(self.names.photo_subject(self.owner), cb=self._on_photo)
            )
            await self._load_presence()
            self._results = Puller(
                self._nc, self.names.results_stream, self.names.results_consumer(self.owner)
            )
            await self._results.start()
        except BrokerUnavailable:
            await self._close_connection()
            raise
        except Exception as exc:
            await self._close_connection()
            raise BrokerUnavailable(
                f"the broker at {self.config.shown_url} could not be set up: {describe_error(exc)}"
            ) from None
        self._spawn(self._age_workers(), "broker-presence")
        log.info(
            "broker pool started: %s, instance %s, %d live workers",
            self.config.shown_url,
            self.owner,
            len(self._seen),
        )

    def begin(self) -> None:
        """Start collecting results: after the service adopted the jobs the workers still have, so each
        of their results finds its handle."""
        self._spawn(self._collect_results(), "broker-results")

    async def stop(self, timeout_s: float) -> None:
        self._closing.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for flight in set(self._flights.values()):
            flight.done.set()
        self._flights.clear()
        self._photos.clear()
        if self._results is not None:
            await self._results.stop()
        await self._close_connection()

    async def _close_connection(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.drain(), 5.0)
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- workers ------------------------------------------------------------------------------------------

    async def _load_presence(self) -> None:
        from nats.js.errors import KeyNotFoundError, NoKeysError

        try:
            keys = await self._workers_kv.keys()
        except NoKeysError:
            return
        for key in keys:
            with contextlib.suppress(KeyNotFoundError, WireError):
                entry = await self._workers_kv.get(key)
                if entry.value:
                    self._note(entry.value)

    async def _on_presence(self, msg: Any) -> None:
        if self._note(msg.data) and self._hooks is not None:
            self._hooks.wake()

    def _note(self, data: bytes) -> bool:
        try:
            presence = decode_presence(data)
        except WireError as exc:
            log.debug("ignoring presence: %s", exc)
            return False
        worker_id = presence.info.worker_id
        if presence.gone:
            return self._seen.pop(worker_id, None) is not None
        before = self._seen.get(worker_id)
        self._seen[worker_id] = _Seen(presence.info, presence.heartbeat_s, time.monotonic())
        return (
            before is None
            or before.info.state != presence.info.state
            or before.info.engines != presence.info.engines
        )

    async def _age_workers(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            gone = [w for w, s in self._seen.items() if now - s.at > 3 * s.heartbeat_s + 1.0]
            for worker_id in gone:
                log.warning("worker %s went silent; taking it as gone", worker_id)
                del self._seen[worker_id]
            if gone and self._hooks is not None:
                self._hooks.wake()

    def workers(self) -> list[WorkerInfo]:
        return sorted((s.info for s in self._seen.values()), key=lambda i: i.worker_id)

    def serves(self, engine: str) -> bool:
        return any(engine in s.info.engines for s in self._seen.values())

    def draws_one_at_a_time(self, engine: str) -> bool:
        """Every live worker that serves the engine draws one request per engine call (they say so in
        their presence, ``WorkerInfo.one_at_a_time``): a lone job gains nothing from waiting for company,
        so the service sends it at once instead of after ``batch_window_s``. A worker that does not say
        (an older one) keeps the window."""
        serving = [s.info for s in self._seen.values() if engine in s.info.engines]
        return bool(serving) and all(engine in info.one_at_a_time for info in serving)

    def room(self, engine: str) -> bool:
        """Room for a batch of the engine? Each live worker that serves it may have one batch (its
        ``max_batch`` jobs) waiting in the stream: a worker finds its next batch there when it finishes
        one (no round trip between batches), and a newcomer's job waits behind at most one batch per
        worker. Counted in jobs (a worker may take jobs of several of our batches at once)."""
        slots = 0
        largest = 0
        for seen in self._seen.values():
            if engine in seen.info.engines:
                slots += max(1, seen.info.max_batch)
                largest = max(largest, seen.info.max_batch)
        need = max(1, min(self._limits.max_batch, largest))
        return slots > 0 and self._unclaimed.get(engine, 0) + need <= slots

    def reserve(self, engine: str, jobs: int) -> None:
        self._unclaimed[engine] = self._unclaimed.get(engine, 0) + jobs

    def release(self, engine: str, jobs: int) -> None:
        left = self._unclaimed.get(engine, 0) - jobs
        if left > 0:
            self._unclaimed[engine] = left
        else:
            self._unclaimed.pop(engine, None)
        if self._hooks is not None:
            self._hooks.wake()

    # --- batches ------------------------------------------------------------------------------------------

    async def run_batch(
        self, batch: RunBatch, listener: BatchListener, *, resend: bool = True
    ) -> BatchReport:
        """Publish the batch's jobs (one message each; ``resend=False``: jobs a worker already has, adopted
        after a restart) and wait until each has an outcome the service recorded, or was cancelled."""
        engine = batch.items[0][1].engine if batch.items else ""
        flight = _Flight(batch, engine, listener, {job_id for job_id, _ in batch.items})
        for job_id, _ in batch.items:
            self._flights[job_id] = flight
        try:
            if resend:
                flight.unclaimed = set(flight.open)  # the service reserved their room when it took them
                for job_id, request in batch.items:
                    if request.init_image is not None:
                        self._photos[job_id] = request.init_image
                    message = JobMessage(
                        job_id=job_id,
                        owner=self.owner,
                        request=request,
                        timeout_s=self._limits.job_timeout_s,
                        max_attempts=self._limits.max_attempts,
                    )
                    if not await self._publish(
                        self.names.job_subject(engine, job_id), message.encode(), job_id
                    ):
                        break  # stopping: the jobs stay "running" in the store and are looked for at restart
            await flight.done.wait()
        finally:
            self._claim(flight)
            for job_id, _ in batch.items:
                if self._flights.get(job_id) is flight:
                    del self._flights[job_id]
                self._photos.pop(job_id, None)
        return BatchReport(run_s=flight.run_s)

    async def _publish(self, subject: str, payload: bytes, job_id: int) -> bool:
        """Publish until JetStream stored it (one message id for every try, so a try whose answer was lost
        is not stored twice). False if the pool stops first."""
        msg_id = f"{self.owner}.{job_id}.{secrets.token_hex(4)}"
        delay = 0.1
        while not self._closing.is_set():
            try:
                await self._js.publish(subject, payload, timeout=5.0, headers={"Nats-Msg-Id": msg_id})
                return True
            except Exception as exc:
                log.warning(
                    "could not hand job %d to the broker (%s); trying again in %.1f s",
                    job_id,
                    describe_error(exc),
                    delay,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            delay = min(delay * 2, 5.0)
        return False

    def _claim(self, flight: _Flight, job_ids: Sequence[int] | None = None) -> None:
        """A worker started these jobs of the flight (None: all that are left): their room is free."""
        taken = set(flight.unclaimed) if job_ids is None else flight.unclaimed.intersection(job_ids)
        if taken:
            flight.unclaimed -= taken
            self.release(flight.engine, len(taken))

    async def _on_event(self, msg: Any) -> None:
        try:
            event = EventMessage.decode(msg.data)
        except WireError:
            return
        flights = {self._flights[j] for j in event.job_ids if j in self._flights}
        for flight in flights:
            self._claim(flight, event.job_ids)
            mine = tuple(j for j in event.job_ids if j in flight.open)
            if not mine:
                continue
            if event.kind == "started":
                flight.listener.update(ItemsStarted(flight.batch.batch_id, mine))
            elif event.kind == "step":
                for job_id in mine:
                    flight.listener.update(
                        BatchProgress(flight.batch.batch_id, job_id, event.step, event.total)
                    )

    async def _on_photo(self, msg: Any) -> None:
        if not msg.reply:
            return
        try:
            ask = PhotoRequest.decode(msg.data)
        except WireError:
            return
        photo = self._photos.get(ask.job_id)
        if photo is None:
            await self._nc.publish(msg.reply, json.dumps({"error": "gone"}).encode())
            return
        size = max(1024, int(self._nc.max_payload) - PHOTO_CHUNK_MARGIN)
        chunks = max(1, math.ceil(len(photo) / size))
        if not 0 <= ask.chunk < chunks:
            await self._nc.publish(msg.reply, json.dumps({"error": "no such chunk"}).encode())
            return
        part = photo[ask.chunk * size : (ask.chunk + 1) * size]
        await self._nc.publish(msg.reply, part, headers={"Chibify-Chunks": str(chunks)})

    # --- results ----------------------------------------------------------------------------------------

    async def _collect_results(self) -> None:
        assert self._results is not None
        while not self._closing.is_set():
            try:
                messages = await self._results.wait_one(5.0)
                for msg in messages:  # at once: the first result never waits for the rest
                    self._spawn(self._handle_result(msg), "broker-result")
                while messages and _pending(messages[-1]):
                    messages = await self._results.take(64)
                    for msg in messages:
                        self._spawn(self._handle_result(msg), "broker-result")
            except Exception as exc:
                if self._closing.is_set():
                    return
                log.warning("reading results failed: %s", describe_error(exc))
                await asyncio.sleep(0.5)

    async def _handle_result(self, msg: Any) -> None:
        try:
            result = ResultMessage.decode(msg.data)
        except WireError as exc:
            log.error("a result could not be read (%s); dropping it", exc)
            with contextlib.suppress(Exception):
                await msg.term()
            return
        outcome = ItemOutcome(
            result.job_id, result=result.result, error=result.error, cancelled=result.cancelled
        )
        self._photos.pop(result.job_id, None)  # drawn (or given up): nobody needs the photo any more
        try:
            flight = self._flights.get(result.job_id)
            if flight is not None and result.job_id in flight.open:
                flight.run_s = max(flight.run_s, result.run_s)
                self._claim(flight, (result.job_id,))
                await flight.listener.outcome(outcome, result.run_s)
                flight.settle(result.job_id)
            elif self._hooks is not None:
                await self._hooks.orphan(outcome, result.run_s)
        except Exception as exc:
            log.warning(
                "job %d: its result could not be recorded yet (%s)", result.job_id, describe_error(exc)
            )
            with contextlib.suppress(Exception):
                await msg.nak(delay=1.0)
            return
        with contextlib.suppress(Exception):
            await msg.ack()

    # --- cancel and recovery --------------------------------------------------------------------------

    async def cancel(self, job_ids: Sequence[int]) -> None:
        """Flag the jobs cancelled for every worker (key-value, read before a job starts) and tell the one
        drawing them (core subject, stops the engine between steps). The batch no longer waits for them."""
        for job_id in job_ids:
            flight = self._flights.get(job_id)
            if flight is not None:
                self._claim(flight, (job_id,))
                flight.settle(job_id)
            self._photos.pop(job_id, None)
        if self._nc is None:
            return
        try:
            for job_id in job_ids:
                await self._cancel_kv.put(str(job_id), b"1")
            await self._nc.publish(self.names.cancel_subject, json.dumps(list(job_ids)).encode())
        except Exception as exc:
            log.warning(
                "could not tell the workers about cancelled jobs %s: %s", list(job_ids), describe_error(exc)
            )

    async def locate(self, job_id: int, engine: str) -> bool:
        """Is the job still with the broker (waiting or with a worker), or its result waiting for us?"""
        from nats.js.errors import NotFoundError

        for stream, subject in (
            (self.names.jobs_stream, self.names.job_subject(engine, job_id)),
            (self.names.results_stream, self.names.result_subject(self.owner, job_id)),
        ):
            try:
                await self._js.get_last_msg(stream, subject)
                return True
            except NotFoundError:
                continue
        return False
