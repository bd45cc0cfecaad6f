"""Fixtures of the generation service tests: a migrated database on SQLite and on PostgreSQL (every test
that asks for ``storage`` runs on both), and ``make_service`` for started services that are stopped at
the end. Helpers the tests share are in :mod:`tests.generation.service_kit`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from generation.broker.config import BrokerConfig
from generation.service import GenerationService, JobStore
from storage import Storage
from storage.jobstore import SqlJobStore
from tests.generation.nats_kit import NatsServer, WorkerProcess, running_nats
from tests.generation.service_kit import DEADLINE_S, FAKE, SEQ, MakeService

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: SQLite file or the local PostgreSQL (see tests/conftest.py)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def storage(db_url: str, tmp_path: Path) -> AsyncIterator[Storage]:
    st = await Storage.open(db_url, tmp_path / "data")
    try:
        yield st
    finally:
        await st.close()


@pytest.fixture
async def make_service(storage: Storage) -> AsyncIterator[MakeService]:
    """``await make_service(**options)``: a started service on ``storage`` (or on ``job_store=``) with the
    fault engines ``fake`` (a batch per call), ``seq`` (one request per call) and ``synthetic``."""
    services: list[GenerationService] = []

    async def make(
        store: Storage | None = None, *, job_store: JobStore | None = None, **options: Any
    ) -> GenerationService:
        options.setdefault("engines", (FAKE, SEQ, "synthetic"))
        options.setdefault("job_timeout_s", DEADLINE_S)
        service = GenerationService(job_store or SqlJobStore(store or storage), **options)
        services.append(service)
        await service.start()
        return service

    yield make
    for service in services:
        await service.stop(drain_timeout=1.0)


@pytest.fixture
async def services() -> AsyncIterator[list[GenerationService]]:
    """A list to put started services in; each is stopped at the end of the test."""
    made: list[GenerationService] = []
    yield made
    for service in made:
        await service.stop(drain_timeout=0.5)


# --- the broker: a nats-server of this session's own (tests/generation/nats_kit.py) ---------------------------


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """JetStream on a random port with a temporary store; never the shared server on 4222."""
    with running_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
def spawn_worker() -> Iterator[Callable[..., WorkerProcess]]:
    """``spawn_worker(config, engines, worker_id=..., max_batch=...)``: a real ``chibify worker`` process,
    killed at the end of the test."""
    workers: list[WorkerProcess] = []

    def spawn(config: BrokerConfig, engines: str, *, worker_id: str, max_batch: int = 4) -> WorkerProcess:
        worker = WorkerProcess(config, engines, worker_id=worker_id, max_batch=max_batch)
        workers.append(worker)
        return worker

    yield spawn
    for worker in workers:
        worker.close()
