"""PostgreSQL backends terminated while the bot works: no job is left running, and none is reported failed to
its user and later delivered as a success (not even after a restart)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.app import open_app
from bot.client import ChibifyBot
from storage import migrate
from storage.models import Job, User
from tests.bot.conftest import has_image, make_settings
from tests.bot.test_e2e_reliability import wait_for, worker_paused
from tests.conftest import PostgresServer
from tests.discord.emulator import DiscordEmulator
from tests.discord.models import InteractionHandle
from tests.discord.models import User as TestUser

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

USERS = 8
COUNT = 2


@contextlib.contextmanager
def terminating_backends(server: PostgresServer, database: str) -> Iterator[list[int]]:
    """Kill every other connection to ``database`` over and over, from a thread, until the block ends."""
    stop = threading.Event()
    killed: list[int] = []

    def run() -> None:
        conn = server._connect()
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = %s AND pid <> pg_backend_pid()",
                        (database,),
                    )
                    killed.append(int(cur.fetchone()[0]))
                    stop.wait(0.02)
        finally:
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join(10)


def outcome_of(handle: InteractionHandle) -> str | None:
    """ "done" once the result picture is shown, "failed" once a final text is, else None."""
    for message in handle.messages:
        if has_image(message):
            return "done"
        text = str(message.get("content") or "")
        if text and not text.startswith(("In the queue", "Drawing")):
            return "failed"
    return None


async def test_terminated_backends_leave_no_job_running_and_no_late_success(
    emulator: DiscordEmulator, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    database = postgres_server.create_database("chibify_faults")
    try:
        url = postgres_server.url_for(database)
        await migrate.upgrade(url)
        settings = make_settings(tmp_path / "data", database_url=url, queue_max_per_user=8)
        settings.data_dir.mkdir(parents=True)
        users = [emulator.add_user(f"pg{i}") for i in range(USERS)]
        outcomes: dict[int, str] = {}

        async with open_app(settings) as app:
            bot = ChibifyBot(app, cooldown=(1000, 1.0), sweep_every_s=0.5)
            async with emulator.running(bot):
                with worker_paused(app):  # every request admitted first; the faults hit running jobs
                    handles = [
                        await emulator.slash(u, "avatar", {"prompt": "pink hair", "count": COUNT})
                        for u in users
                    ]

                    async def all_queued() -> bool:
                        async with app.storage.transaction() as s:
                            n = await s.scalar(sa.select(sa.func.count()).select_from(Job))
                        return n == USERS * COUNT

                    await wait_for(all_queued, 60, "every job queued")
                    with terminating_backends(postgres_server, database) as killed:
                        await emulator.wait_until(lambda: len(killed) > 3 or None, 30, "the killer running")
                with terminating_backends(postgres_server, database) as killed_more:
                    await emulator.wait_until(lambda: sum(killed_more) > 5 or None, 60, "backends killed")
                assert sum(killed) + sum(killed_more) > 0, "no backend was terminated: nothing was tested"

                def answered() -> bool | None:
                    return all(outcome_of(h) for h in handles) or None

                await emulator.wait_until(answered, 120, "a final answer to every request")
                for u, h in zip(users, handles, strict=True):
                    outcomes[u.id] = outcome_of(h) or ""

            async with app.storage.transaction() as s:
                jobs = list(await s.scalars(sa.select(Job)))
        assert not [j.id for j in jobs if str(j.status) in ("running", "queued")]
        by_user: dict[int, list[Job]] = {}
        async with open_app(settings) as app:
            async with app.storage.transaction() as s:
                discord_ids = dict((await s.execute(sa.select(User.id, User.discord_id))).tuples().all())
            for j in jobs:
                by_user.setdefault(discord_ids[j.user_id], []).append(j)
            for discord_id, told in outcomes.items():
                statuses = {str(j.status) for j in by_user.get(discord_id, [])}
                if told == "failed":
                    assert statuses <= {"failed", "cancelled"}, (told, statuses)
                else:
                    assert "done" in statuses, (told, statuses)

            # a restart: the courier sweeps; nobody told "failed" gets a success later
            before = {u.id: len(_images_for(emulator, u)) for u in users}
            bot = ChibifyBot(app, cooldown=(1000, 1.0), sweep_every_s=0.2)
            async with emulator.running(bot):
                await bot.courier.sweep()
                async with app.storage.transaction() as s:
                    after_jobs = list(await s.scalars(sa.select(Job)))
                assert all(j.delivered_at is not None for j in after_jobs)
            for u in users:
                if outcomes[u.id] == "failed":
                    assert len(_images_for(emulator, u)) == before[u.id]
    finally:
        postgres_server.drop_database(database)


def _images_for(emulator: DiscordEmulator, user: TestUser) -> list[dict[str, Any]]:
    dm = emulator.dm_channel(user).id
    return [
        m
        for m in emulator.messages.values()
        if has_image(m)
        and (f"<@{user.id}>" in str(m.get("content") or "") or int(m.get("channel_id") or 0) == dm)
    ]
