"""The bot with CHIBIFY_BROKER_URL set, end to end: a nats-server of this module's own, a real
``chibify worker`` process serving the chibi engine, the real bot logged in to the Discord emulator. The bot
starts no worker of its own; /avatar is drawn on the remote worker, and /queue lists the live workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from bot.app import App, open_app
from bot.client import ChibifyBot
from bot.cogs.admin import workers_text
from bot.settings import Settings
from storage import migrate
from tests.bot.conftest import has_image, make_settings, reply_text, result_message
from tests.discord.emulator import DiscordEmulator
from tests.generation.broker_kit import wait_for
from tests.generation.nats_kit import NatsServer, WorkerProcess, running_nats

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with running_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app_settings(tmp_path_factory: pytest.TempPathFactory, nats: NatsServer) -> Settings:
    config = nats.config(heartbeat_s=0.5)
    settings = make_settings(
        tmp_path_factory.mktemp("chibify-bot"),
        broker_url=config.url,
        broker_prefix=config.prefix,
        broker_heartbeat_s=config.heartbeat_s,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate.upgrade(settings.resolved_database_url)
    return settings


@pytest.fixture(scope="module")
def worker(app_settings: Settings) -> Iterator[WorkerProcess]:
    config = app_settings.broker()
    assert config is not None
    process = WorkerProcess(config, "chibi", worker_id="gpu-1")
    yield process
    process.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(app_settings: Settings, worker: WorkerProcess) -> AsyncIterator[App]:
    async with open_app(app_settings) as opened:
        assert opened.service is not None
        service = opened.service
        await wait_for(lambda: any(w.worker_id == "gpu-1" for w in service.workers()), "the worker")
        yield opened


async def test_avatar_is_drawn_by_the_remote_worker(
    emulator: DiscordEmulator, bot: ChibifyBot, app: App, worker: WorkerProcess
) -> None:
    assert app.service is not None and app.service.worker_pid is None  # no local worker
    message = await result_message(await emulator.slash(emulator.alice, "avatar", {"prompt": "cat ears"}))
    assert has_image(message)
    await wait_for(lambda: any(w.jobs_served >= 1 for w in app.service.workers()), "the worker's count")


async def test_queue_lists_the_live_workers(emulator: DiscordEmulator, bot: ChibifyBot, app: App) -> None:
    text = await reply_text(await emulator.slash(emulator.bob, "queue", {}))
    assert "nothing in the queue" in text
    assert "Workers (1):" in text and "`gpu-1`" in text and "chibi" in text
    assert "绘图进程（1）" in workers_text(app.service, "zh")


async def test_no_workers_is_said_plainly() -> None:
    assert workers_text(None, "en") == "No worker is connected: pictures wait until one is."
