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
from generation.broker.config import BrokerConfig, BrokerUnavailable
from generation.engines import ENGINE_REGISTRY, USER_ENGINES
from generation.jobs import EngineSpec
from generation.pool import WorkerPool
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
    """The engines of the local worker: the chibi engine always; diffusion or GAN when configured."""
    if settings.engine == "chibi":
        return ("chibi",)
    return ("chibi", engine_spec_for(settings.engine, settings))


def engine_spec_for(name: str, settings: Settings) -> str | EngineSpec:
    """How a worker builds the engine ``name`` with this installation's settings (the diffusion and GAN
    models, their options); anything else is an engine string for :func:`generation.engines.engine_spec`
    (a registry name, ``name(key=value,...)``, ``name=module:factory``)."""
    if name not in ("diffusion", "gan"):
        return name
    from generation.diffusion.config import DiffusionConfig, DiffusionConfigError  # no torch import here
    from generation.training.shipped import DIFFUSION_FOLDER, GAN_FOLDER

    if name == "gan":
        folder = settings.gan_model or str(GAN_FOLDER)
        if not (Path(folder) / "gan.json").is_file():
            raise Unavailable(
                f"no GAN model in {folder}.", "Set CHIBIFY_GAN_MODEL to a folder made by `chibify train gan`."
            )
        return EngineSpec(name="gan", target=ENGINE_REGISTRY["gan"], options=(("model", folder),))
    model = settings.diffusion_model
    if not model:
        if not (DIFFUSION_FOLDER / "model_index.json").is_file():
            raise Unavailable(
                "the diffusion engine needs a model and this install has no shipped one.",
                "Set CHIBIFY_DIFFUSION_MODEL to a local diffusers folder (see docs/diffusion.md), or use the chibi engine.",
            )
        model = str(DIFFUSION_FOLDER)
    options = {**settings.diffusion_options, "model": model}
    if settings.diffusion_allow_download:
        options["allow_download"] = "true"
    try:
        config = DiffusionConfig.from_options(options)
    except DiffusionConfigError as exc:
        raise Unavailable(f"bad diffusion setting: {exc}.", "Check CHIBIFY_DIFFUSION_OPTIONS.") from None
    return config.engine_spec()


def broker_for(settings: Settings) -> BrokerConfig | None:
    try:
        return settings.broker()
    except ValueError as exc:
        raise Unavailable(f"bad broker setting: {exc}.", "Check CHIBIFY_BROKER_*.") from None


async def open_storage(settings: Settings) -> Storage:
    try:
        return await Storage.open(settings.resolved_database_url, settings.data_dir)
    except DatabaseBehind as exc:
        raise Unavailable(str(exc).rstrip("."), "") from None


@asynccontextmanager
async def open_app(settings: Settings, *, generate: bool = True, recover: bool = True) -> AsyncIterator[App]:
    """Storage, then the service (its worker process starts here, or with ``CHIBIFY_BROKER_URL`` its
    connection to the broker), then the studio; closed in reverse.

    ``generate=False`` opens storage only (history, show, delete: no worker process to start).
    ``recover=False`` (the console) leaves other processes' unfinished jobs alone: only the bot
    process recovers jobs after a restart.
    """
    storage = await open_storage(settings)
    try:
        if not generate:
            yield App(settings, storage, None, Studio(storage, None, default_engine=settings.engine))
            return
        broker = broker_for(settings)
        pool: WorkerPool | None = None
        engines: tuple[str | EngineSpec, ...]
        if broker is None:  # the embedded default: one local worker process
            engines = engines_for(settings)
        else:  # workers anywhere, through NATS JetStream: this process starts none
            from generation.broker.pool import NatsPool, console_owner

            engines = USER_ENGINES
            owner = settings.instance if recover else console_owner()
            pool = NatsPool(broker, owner=owner, durable=recover)
        service = GenerationService(
            SqlJobStore(storage),
            engines=engines,
            max_batch=settings.batch_max,
            batch_window_s=settings.batch_window_ms / 1000,
            max_queued_per_user=settings.queue_max_per_user,
            max_queued_total=settings.queue_max_total,
            job_timeout_s=settings.job_timeout_s,
            pool=pool,
            # a diffusion model loads and warms up before the first job: give it time
            worker_start_timeout_s=120.0 if settings.engine == "chibi" else 900.0,
        )
        try:
            recovered = await service.start(recover=recover)
        except BrokerUnavailable as exc:
            raise Unavailable(
                f"{exc}.", "Start NATS (docs/scaling.md) or unset CHIBIFY_BROKER_URL."
            ) from None
        try:
            studio = Studio(storage, service, default_engine=settings.engine)
            yield App(settings, storage, service, studio, recovered)
        finally:
            await service.stop(drain_timeout=settings.job_timeout_s)
    finally:
        await storage.close()
