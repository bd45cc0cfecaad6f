"""The real bot process (``python -m bot`` through tests/discord/launch.py) SIGKILLed in the middle of
delivering, then started again: every finished job reaches its user exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from storage import Storage, migrate
from storage.models import Job
from tests.bot.conftest import has_image, make_settings
from tests.discord.emulator import DiscordEmulator
from tests.discord.models import InteractionHandle, User

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
USERS = 12
COUNT = 4


def start_bot(emulator: DiscordEmulator, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIBIFY_")}
    env.update(
        emulator.process_env(),
        PYTHONPATH=str(ROOT),
        CHIBIFY_DATA_DIR=str(data_dir),
        CHIBIFY_DISCORD_TOKEN="emulator-bot-token",
        CHIBIFY_QUEUE_MAX_PER_USER="8",
        CHIBIFY_BATCH_WINDOW_MS="10",
    )
    with log.open("ab") as out:
        # its own process group: SIGKILL takes the worker down with it, as a crashed host would
        return subprocess.Popen(
            [sys.executable, "-m", "tests.discord.launch", "bot"],
            cwd=data_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def results_for(emulator: DiscordEmulator, user: User, handle: InteractionHandle) -> list[dict[str, Any]]:
    """Every message that shows this user's result: the interaction's own, DMs and channel posts."""
    found = [m for m in handle.messages if has_image(m)]
    found += [m for m in emulator.channel_messages(emulator.dm_channel(user)) if has_image(m)]
    for channel in emulator.guild.channels:
        found += [
            m
            for m in emulator.channel_messages(channel)
            if has_image(m) and f"<@{user.id}>" in (m.get("content") or "")
        ]
    return found


async def test_sigkill_mid_delivery_then_restart_delivers_each_job_once(
    emulator: DiscordEmulator, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    await migrate.upgrade(settings.resolved_database_url)
    log = tmp_path / "bot.log"
    users = [emulator.add_user(f"crash{i}") for i in range(USERS)]

    bot = start_bot(emulator, settings.data_dir, log)
    try:
        await emulator.wait_until(lambda: emulator.commands[None] or None, 120, "the bot synced its commands")
        handles = [
            await emulator.slash(u, "avatar", {"prompt": f"cat ears, seed {i}", "count": COUNT})
            for i, u in enumerate(users)
        ]

        def three_delivered() -> bool | None:
            done = sum(1 for u, h in zip(users, handles, strict=True) if results_for(emulator, u, h))
            if done >= 3:
                # killed right here, before the emulator answers anything more
                os.killpg(bot.pid, signal.SIGKILL)
                return True
            return None

        await emulator.wait_until(three_delivered, 120, "three results")
        bot.wait(30)
    finally:
        if bot.poll() is None:
            os.killpg(bot.pid, signal.SIGKILL)
            bot.wait(30)

    storage = await Storage.open(settings.resolved_database_url, settings.data_dir)
    try:
        async with storage.transaction() as s:
            before = list(await s.scalars(sa.select(Job)))
        assert len(before) == USERS * COUNT
        undelivered_before = [j for j in before if j.delivered_at is None]
        assert undelivered_before, "the kill came too late to test anything"

        bot = start_bot(emulator, settings.data_dir, log)
        try:

            def everyone_served() -> bool | None:
                return all(results_for(emulator, u, h) for u, h in zip(users, handles, strict=True)) or None

            await emulator.wait_until(everyone_served, 120, "every user's result after the restart")

            async def all_recorded() -> bool:
                async with storage.transaction() as s:
                    jobs = list(await s.scalars(sa.select(Job)))
                return all(j.delivered_at is not None and str(j.status) == "done" for j in jobs)

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while not await all_recorded():
                assert loop.time() < deadline, "jobs not recorded as delivered"
                await asyncio.sleep(0.1)
            # and nothing more arrives: each request shows exactly one result message
            for u, h in zip(users, handles, strict=True):
                shown = results_for(emulator, u, h)
                assert len(shown) == 1, (u.username, len(shown))
        finally:
            bot.send_signal(signal.SIGTERM)
            try:
                assert bot.wait(60) == 0
            finally:
                if bot.poll() is None:
                    os.killpg(bot.pid, signal.SIGKILL)
    finally:
        await storage.close()
    assert "Traceback" not in log.read_text(errors="replace")
