"""Builds and owns the long-lived parts: storage, the generation service and the studio.

Both entry points (``python -m bot`` and the ``chibify`` console) use :func:`open_app`, so there is one
place that decides how the parts are made and in which order they are closed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import Unavailable
from bot.settings import Settings
from bot.studio import Studio
from generation.engines import ENGINE_REGISTRY
from generation.jobs import EngineSpec
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


def engines_for(settings: Settings) -> tuple[str | EngineSpec, ...]:
    """The chibi engine always runs; the diffusion engine only when configured, with its model."""
    if settings.engine == "chibi":
        return ("chibi",)
    from generation.diffusion.config import DiffusionConfig, DiffusionConfigError  # no torch import here
    from generation.training.shipped import DIFFUSION_FOLDER, GAN_FOLDER

    if settings.engine == "gan":
        folder = settings.gan_model or str(GAN_FOLDER)
        if not (Path(folder) / "gan.json").is_file():
            raise Unavailable(
                f"no GAN model in {folder}.", "Set CHIBIFY_GAN_MODEL to a folder made by `chibify train gan`."
            )
        return ("chibi", EngineSpec(name="gan", target=ENGINE_REGISTRY["gan"], options=(("model", folder),)))
    model = settings.diffusion_model
    if not model:
        if not (DIFFUSION_FOLDER / "model_index.json").is_file():
            raise Unavailable(
                "CHIBIFY_ENGINE=diffusion needs a model and this install has no shipped one.",
                "Set CHIBIFY_DIFFUSION_MODEL to a local diffusers folder (see docs/diffusion.md), or use CHIBIFY_ENGINE=chibi.",
            )
        model = str(DIFFUSION_FOLDER)
    options = {**settings.diffusion_options, "model": model}
    if settings.diffusion_allow_download:
        options["allow_download"] = "true"
    try:
        config = DiffusionConfig.from_options(options)
    except DiffusionConfigError as exc:
        raise Unavailable(f"bad diffusion setting: {exc}.", "Check CHIBIFY_DIFFUSION_OPTIONS.") from None
    return ("chibi", config.engine_spec())


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
            # a diffusion model loads and warms up before the first job: give it time
            worker_start_timeout_s=120.0 if settings.engine == "chibi" else 900.0,
        )
        recovered = await service.start(recover=recover)
        try:
            studio = Studio(storage, service, default_engine=settings.engine)
            yield App(settings, storage, service, studio, recovered)
        finally:
            await service.stop(drain_timeout=settings.job_timeout_s)
    finally:
        await storage.close()
