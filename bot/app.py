"""Builds and owns the long-lived parts: storage, the generation service and the studio.

Both entry points (``python -m bot`` and the ``chibify`` console) use :func:`open_app`, so there is one
place that decides how the parts are made and in which order they are closed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.errors import Unavailable
from bot.settings import Settings
from bot.studio import Studio
from generation.service import GenerationService, JobHandle
from storage import DatabaseBehind, Storage
from storage.jobstore import SqlJobStore

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    storage: Storage
    service: GenerationService | None
    studio: Studio
    # Jobs recovered from the store at start (the bot delivers them to handle.deliver's channel or DM).
    recovered: list[JobHandle] = field(default_factory=list)


def engines_for(settings: Settings) -> tuple[str, ...]:
    """The chibi engine always runs; the diffusion engine only when configured."""
    return ("chibi",) if settings.engine == "chibi" else ("chibi", settings.engine)


async def open_storage(settings: Settings) -> Storage:
    try:
        return await Storage.open(settings.resolved_database_url, settings.data_dir)
    except DatabaseBehind as exc:
        raise Unavailable(str(exc).rstrip("."), "") from None


@asynccontextmanager
async def open_app(settings: Settings, *, generate: bool = True, recover: bool = True) -> AsyncIterator[App]:
    """Storage, then the service (its worker process starts here), then the studio; closed in reverse.

    ``generate=False`` opens storage only (history, show, delete: no worker process to start).
    ``recover=False`` (the console) leaves other processes' unfinished jobs alone: only the bot
    process recovers jobs after a restart.
    """
    storage = await open_storage(settings)
    try:
        if not generate:
            yield App(settings, storage, None, Studio(storage, None, default_engine=settings.engine))
            return
        service = GenerationService(
            SqlJobStore(storage),
            engines=engines_for(settings),
            max_batch=settings.batch_max,
            batch_window_s=settings.batch_window_ms / 1000,
            max_queued_per_user=settings.queue_max_per_user,
            max_queued_total=settings.queue_max_total,
            job_timeout_s=settings.job_timeout_s,
        )
        recovered = await service.start(recover=recover)
        try:
            studio = Studio(storage, service, default_engine=settings.engine)
            yield App(settings, storage, service, studio, recovered)
        finally:
            await service.stop(drain_timeout=settings.job_timeout_s)
    finally:
        await storage.close()
