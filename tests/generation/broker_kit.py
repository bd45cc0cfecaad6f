"""Helpers of the broker tests: services whose workers are real ``chibify worker`` processes reached through
the session's own nats-server. Nothing sleeps to wait: helpers poll with a deadline or wait on events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from generation.broker.config import BrokerConfig
from generation.broker.pool import NatsPool
from generation.service import GenerationService, JobHandle
from storage import Storage
from storage.jobstore import SqlJobStore
from tests.generation.service_kit import DEADLINE_S

#: The fault engines (tests/generation/fake_engines.py) under the names the requests use.
FAKE_ENGINES = (
    "fake=tests.generation.fake_engines:FaultyEngine,seq=tests.generation.fake_engines:OneAtATimeEngine"
)

MakeBrokerService = Callable[..., Awaitable[GenerationService]]


async def start_broker_service(
    storage: Storage,
    config: BrokerConfig,
    *,
    owner: str = "bot",
    recover: bool = True,
    **options: Any,
) -> tuple[GenerationService, list[JobHandle]]:
    """A started service whose workers are reached through the broker, and the handles it recovered."""
    options.setdefault("engines", ("fake", "seq", "synthetic", "diffusion"))
    options.setdefault("job_timeout_s", DEADLINE_S)
    options.setdefault("batch_window_s", 0.0)
    service = GenerationService(
        SqlJobStore(storage), pool=NatsPool(config, owner=owner, durable=recover), **options
    )
    recovered = await service.start(recover=recover)
    return service, recovered


async def broker_service(storage: Storage, config: BrokerConfig, **options: Any) -> GenerationService:
    service, _ = await start_broker_service(storage, config, **options)
    return service


async def serving(
    services: list[GenerationService],
    storage: Storage,
    config: BrokerConfig,
    workers: tuple[str, ...],
    **options: Any,
) -> GenerationService:
    """A started broker service (stopped at the end of the test through ``services``) that already sees
    these workers live and idle."""
    service = await broker_service(storage, config, **options)
    services.append(service)
    await wait_workers(service, *workers)
    return service


async def wait_for(predicate: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_workers(service: GenerationService, *worker_ids: str, idle: bool = True) -> None:
    """Until the service sees these workers live (and idle)."""

    def seen() -> bool:
        live = {w.worker_id: w for w in service.workers()}
        return all(w in live and (not idle or live[w].state == "idle") for w in worker_ids)

    await wait_for(seen, f"workers {worker_ids}")
