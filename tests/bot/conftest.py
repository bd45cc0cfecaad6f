"""End-to-end fixtures for the bot: one real App (SQLite in a temp dir, a real chibi worker process) per
test module, a fresh local Discord emulator and a real ChibifyBot logged in to it per test.

Every test module using these sets ``pytestmark = pytest.mark.asyncio(loop_scope="module")`` so the
module-scoped App (its worker process and database pool) lives in the same event loop as the tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.app import App, open_app
from bot.client import ChibifyBot
from bot.settings import Settings
from storage import migrate
from tests.discord.emulator import DiscordEmulator
from tests.discord.models import LOADING, InteractionHandle


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "discord_token": "emulator-bot-token",
        "queue_max_per_user": 8,
        "batch_window_ms": 10,
        "job_timeout_s": 60.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = make_settings(tmp_path_factory.mktemp("chibify-bot"))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate.upgrade(settings.resolved_database_url)
    return settings


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(app_settings: Settings) -> AsyncIterator[App]:
    async with open_app(app_settings) as opened:
        yield opened


@pytest_asyncio.fixture(loop_scope="module")
async def emulator() -> AsyncIterator[DiscordEmulator]:
    emu = DiscordEmulator()
    await emu.start()
    try:
        with emu.patch_discord():
            yield emu
    finally:
        await emu.close()
    emu.assert_clean()


BotFactory = Callable[..., ChibifyBot]


@pytest.fixture
def make_bot(app: App) -> BotFactory:
    def make(**options: Any) -> ChibifyBot:
        options.setdefault("cooldown", (1000, 1.0))
        return ChibifyBot(app, **options)

    return make


@pytest_asyncio.fixture(loop_scope="module")
async def bot(emulator: DiscordEmulator, make_bot: BotFactory) -> AsyncIterator[ChibifyBot]:
    async with emulator.running(make_bot()) as client:
        yield client


def has_image(message: dict[str, Any] | None) -> bool:
    return bool(message and message.get("attachments") and message.get("embeds"))


async def result_message(handle: InteractionHandle, within: float = 30.0) -> dict[str, Any]:
    """The message of this interaction (original or a followup) that carries the result picture."""

    def find() -> dict[str, Any] | None:
        for message in handle.messages:
            if has_image(message):
                return message
        return None

    return await handle.emulator.wait_until(find, within, f"a result picture for {handle!r}")


async def result_file(handle: InteractionHandle, within: float = 30.0) -> dict[str, Any]:
    """The message of this interaction that carries a file (an export)."""

    def find() -> dict[str, Any] | None:
        return next((m for m in handle.messages if m.get("attachments")), None)

    return await handle.emulator.wait_until(find, within, f"a file for {handle!r}")


async def reply_text(handle: InteractionHandle, within: float = 15.0) -> str:
    """The first non-"thinking" text the bot answered with (callback message or edited original)."""

    def find() -> str | None:
        if handle.callback is not None and handle.callback_type == 4:
            data = (handle.callback.json or {}).get("data") or {}
            text = data.get("content") or " ".join(
                e.get("description") or "" for e in data.get("embeds") or []
            )
            if text:
                return str(text)
        for message in handle.messages:
            if message["flags"] & LOADING:
                continue
            text = message.get("content") or " ".join(
                e.get("description") or "" for e in message.get("embeds") or []
            )
            if text and not text.startswith(("In the queue", "排队中", "Drawing", "正在")):
                return str(text)
        return None

    return await handle.emulator.wait_until(find, within, f"a text reply to {handle!r}")


def custom_ids(message: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(components: list[dict[str, Any]]) -> None:
        for c in components:
            if c.get("custom_id"):
                found.append(c["custom_id"])
            walk(c.get("components") or [])

    walk(message.get("components") or [])
    return found
