"""`python -m bot`'s run(): a job left unfinished by a previous process is delivered after the restart, and
SIGTERM stops the bot cleanly (intake closed, service drained, client closed)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from bot.__main__ import run
from generation.jobs import GenerationRequest
from generation.spec import AvatarSpec
from storage import JobStatus, Storage, jobs, migrate
from storage.jobstore import SqlJobStore
from tests.bot.conftest import has_image, make_settings
from tests.discord.emulator import DiscordEmulator

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_unfinished_job_is_delivered_after_restart_then_sigterm_stops(
    emulator: DiscordEmulator, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    await migrate.upgrade(settings.resolved_database_url)
    channel = emulator.guild.channels[0]
    alice = emulator.alice

    # A job the previous bot process accepted but never ran (it died): queued in the database.
    storage = await Storage.open(settings.resolved_database_url, settings.data_dir)
    try:
        request = GenerationRequest(
            user_key=f"discord:{alice.id}",
            spec=AvatarSpec(seed=5, items=("crown",)).to_json(),
            prompt="crown",
        )
        job_id = await SqlJobStore(storage).create(
            request.to_json(),
            request.user_key,
            kind="prompt",
            deliver={"channel_id": channel.id, "user_id": alice.id, "public": True, "language": "en"},
        )
    finally:
        await storage.close()

    runner = asyncio.create_task(run(settings))
    message = await emulator.wait_for_message(
        channel, lambda m: has_image(m) and f"<@{alice.id}>" in m.get("content", ""), within=60.0
    )
    assert message["attachments"]

    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(runner, timeout=60.0) == 0

    storage = await Storage.open(settings.resolved_database_url, settings.data_dir)
    try:
        async with storage.transaction() as s:
            job = await jobs.get_job_by_id(s, job_id)
        assert job.status == JobStatus.DONE and job.avatar_id is not None
    finally:
        await storage.close()
