"""Nothing lost, nothing bypassed: the real bot against the emulator, with a real worker process.

- a token that dies (401/50027) while the job is queued: the result (or the failure) arrives by DM or by a
  channel post, and the job is recorded as delivered;
- 12 users x count:4 against a total cap of 20: exactly 5 requests are admitted whole;
- every entry point (slash commands, buttons, the edit modal, the message menu, DM photos) against every
  limit (allowed channels, daily limit, per-member queue, cooldown): refused in one line, nothing queued;
- the edit modal opened before a restart still works after it;
- delete and /forget remove the bot's public messages that showed the avatars.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from bot.app import App, open_app
from bot.client import ChibifyBot
from storage import users
from storage.models import Job
from tests.bot.conftest import BotFactory, has_image, make_settings, reply_text, result_message
from tests.discord.emulator import DiscordEmulator
from tests.discord.models import InteractionHandle, User

pytestmark = pytest.mark.asyncio(loop_scope="module")

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "photos"


@contextlib.contextmanager
def worker_paused(app: App) -> Iterator[None]:
    """SIGSTOP the worker process: jobs stay queued until the block ends (SIGCONT)."""
    assert app.service is not None and app.service.worker_pid is not None
    pid = app.service.worker_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def jobs_of(app: App, discord_id: int) -> list[Job]:
    async with app.storage.transaction() as s:
        user = await users.get_user(s, discord_id=discord_id)
        if user is None:
            return []
        rows = await s.scalars(sa.select(Job).where(Job.user_id == user.id).order_by(Job.id))
        return list(rows)


async def wait_for(predicate: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def all_delivered(app: App, discord_id: int) -> bool:
    jobs = await jobs_of(app, discord_id)
    return bool(jobs) and all(j.delivered_at is not None for j in jobs)


# --- tokens that die while the job waits -----------------------------------------------------------------


async def test_token_dies_while_queued_private_result_arrives_by_dm(
    emulator: DiscordEmulator, app: App, bot: ChibifyBot
) -> None:
    user = emulator.add_user("dora")
    with worker_paused(app):
        h = await emulator.slash(user, "avatar", {"prompt": "green hair, crown"})
        await h.response()
        emulator.expire(h)
    dm = await emulator.wait_for_message(emulator.dm_channel(user), has_image, within=60)
    assert dm["attachments"]
    await wait_for(lambda: all_delivered(app, user.id), 30, "the job recorded as delivered")
    (job,) = await jobs_of(app, user.id)
    assert job.interaction_token is None  # the credential is dropped once delivered
    assert [int(dm["channel_id"]), int(dm["id"])] in [list(m) for m in job.messages]


async def test_token_dies_while_queued_public_result_posted_in_channel(
    emulator: DiscordEmulator, app: App, bot: ChibifyBot
) -> None:
    user = emulator.add_user("eli")
    await app.studio.update_preferences(_actor(user), public_results=True)
    channel = emulator.guild.default_channel
    with worker_paused(app):
        h = await emulator.slash(user, "avatar", {"prompt": "blue hair, glasses"})
        await h.response()
        emulator.expire(h)
    posted = await emulator.wait_for_message(
        channel, lambda m: has_image(m) and f"<@{user.id}>" in m.get("content", ""), within=60
    )
    assert posted["attachments"]
    await wait_for(lambda: all_delivered(app, user.id), 30, "the job recorded as delivered")


async def test_public_result_falls_back_to_dm_when_the_channel_refuses(
    emulator: DiscordEmulator, app: App, bot: ChibifyBot
) -> None:
    user = emulator.add_user("fay")
    await app.studio.update_preferences(_actor(user), public_results=True)
    channel = emulator.guild.default_channel
    emulator.refuse_posts(channel)
    try:
        with worker_paused(app):
            h = await emulator.slash(user, "avatar", {"prompt": "red hair"})
            await h.response()
            emulator.expire(h)
        dm = await emulator.wait_for_message(emulator.dm_channel(user), has_image, within=60)
        assert dm["attachments"]
    finally:
        emulator.allow_posts(channel)
    await wait_for(lambda: all_delivered(app, user.id), 30, "the job recorded as delivered")


@pytest.mark.skipif(not (PHOTOS / "obama.jpg").exists(), reason="shared photos missing")
async def test_failure_after_the_token_died_is_delivered_too(
    emulator: DiscordEmulator, app: App, bot: ChibifyBot
) -> None:
    user = emulator.add_user("gus")
    blank = _blank_png()
    with worker_paused(app):
        h = await emulator.slash(user, "chibify", {"photo": emulator.upload("blank.png", blank)})
        await h.response()
        emulator.expire(h)
    dm = await emulator.wait_for_message(
        emulator.dm_channel(user), lambda m: bool(m.get("content")), within=60
    )
    assert "face" in dm["content"].lower()
    await wait_for(lambda: all_delivered(app, user.id), 30, "the failed job recorded as delivered")
    (job,) = await jobs_of(app, user.id)
    assert str(job.status) == "failed"


async def test_private_result_with_a_live_token_replaces_the_thinking_message(
    emulator: DiscordEmulator, app: App, bot: ChibifyBot
) -> None:
    user = emulator.add_user("hana")
    h = await emulator.slash(user, "avatar", {"prompt": "pink hair"})
    message = await result_message(h)
    assert message["id"] == str(h.original_message_id) or int(message["id"]) == h.original_message_id
    await wait_for(lambda: all_delivered(app, user.id), 30, "the job recorded as delivered")


# --- one gate, whole requests -------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def capped_app(tmp_path: Path) -> AsyncIterator[App]:
    from storage import migrate

    settings = make_settings(tmp_path / "capped", queue_max_total=20, queue_max_per_user=8)
    settings.data_dir.mkdir(parents=True)
    await migrate.upgrade(settings.resolved_database_url)
    async with open_app(settings) as opened:
        yield opened


async def test_twelve_users_count_four_against_a_cap_of_twenty(
    emulator: DiscordEmulator, capped_app: App
) -> None:
    bot = ChibifyBot(capped_app, cooldown=(1000, 1.0))
    users = [emulator.add_user(f"u{i}") for i in range(12)]
    async with emulator.running(bot):
        with worker_paused(capped_app):
            handles = await asyncio.gather(
                *(emulator.slash(u, "avatar", {"prompt": "cat ears", "count": 4}) for u in users)
            )
            busy: list[InteractionHandle] = []
            for h in handles:
                await h.response()
            admitted_users: list[User] = []

            async def settled() -> bool:
                busy.clear()
                admitted_users.clear()
                for u, h in zip(users, handles, strict=True):
                    jobs = await jobs_of(capped_app, u.id)
                    text = _last_text(h)
                    if text and "busy" in text:
                        busy.append(h)
                    elif len(jobs) == 4:
                        admitted_users.append(u)
                return len(busy) + len(admitted_users) == len(users)

            await wait_for(settled, 30, "every request admitted or refused")
            assert len(admitted_users) == 5 and len(busy) == 7
            for u, h in zip(users, handles, strict=True):
                if h in busy:
                    assert await jobs_of(capped_app, u.id) == []  # refused whole: no job row at all
        for u, h in zip(users, handles, strict=True):
            if u in admitted_users:
                grid = await result_message(h, within=60)
                assert grid["attachments"]


# --- every entry point against every limit ----------------------------------------------------------------

Entry = Callable[[DiscordEmulator, User, str, dict[str, Any]], Awaitable[InteractionHandle | None]]


async def _slash_avatar(emu: DiscordEmulator, user: User, avatar_id: str, msg: dict[str, Any]) -> Any:
    return await emu.slash(user, "avatar", {"prompt": "silver hair", "count": 2})


async def _slash_edit(emu: DiscordEmulator, user: User, avatar_id: str, msg: dict[str, Any]) -> Any:
    return await emu.slash(user, "edit", {"avatar": avatar_id, "add": "crown"})


async def _reroll(emu: DiscordEmulator, user: User, avatar_id: str, msg: dict[str, Any]) -> Any:
    return await emu.click(user, msg["id"], f"chibify:reroll:{avatar_id}")


async def _vary(emu: DiscordEmulator, user: User, avatar_id: str, msg: dict[str, Any]) -> Any:
    return await emu.click(user, msg["id"], f"chibify:vary:{avatar_id}")


async def _modal(emu: DiscordEmulator, user: User, avatar_id: str, msg: dict[str, Any]) -> Any:
    click = await emu.click(user, msg["id"], f"chibify:edit:{avatar_id}")
    await click.modal()
    return await emu.modal_submit(user, click, {"change": "add a crown"})


async def _slash_chibify(emu: DiscordEmulator, user: User, avatar_id: str, msg: dict[str, Any]) -> Any:
    photo = (PHOTOS / "obama.jpg").read_bytes()
    return await emu.slash(user, "chibify", {"photo": emu.upload("me.jpg", photo)})


async def _menu(emu: DiscordEmulator, user: User, avatar_id: str, msg: dict[str, Any]) -> Any:
    photo = (PHOTOS / "obama.jpg").read_bytes()
    posted = await emu.post_message(user, emu.guild.default_channel, "me", [emu.upload("me.jpg", photo)])
    return await emu.message_context(user, "Chibify", posted)


ENTRY_POINTS: dict[str, Entry] = {
    "/avatar": _slash_avatar,
    "/edit": _slash_edit,
    "reroll button": _reroll,
    "variations button": _vary,
    "edit modal": _modal,
    "/chibify": _slash_chibify,
    "message menu": _menu,
}

LIMITS = {
    "allowed channels": "not enabled in this channel",
    "daily limit": "daily limit",
    "member queue": "in the making here",
    "cooldown": "Slow down",
}


@pytest.mark.parametrize("limit", list(LIMITS))
async def test_every_entry_point_against_every_limit(
    emulator: DiscordEmulator, app: App, make_bot: BotFactory, limit: str
) -> None:
    guild_id = emulator.guild.id
    user = emulator.add_user(f"limited-{limit.replace(' ', '-')}")
    cooldown = (1, 3600.0) if limit == "cooldown" else (1000, 1.0)
    async with emulator.running(make_bot(cooldown=cooldown)):
        first = await emulator.slash(user, "avatar", {"prompt": "short black hair"})
        message = await result_message(first)
        avatar_id = _avatar_id(message)
        before = len(await jobs_of(app, user.id))
        changes: dict[str, Any] = {}
        if limit == "allowed channels":
            other = next(c for c in emulator.guild.channels if c.id != emulator.guild.default_channel.id)
            changes = {"allowed_channels": [other.id]}
        elif limit == "daily limit":
            changes = {"per_user_daily_limit": 1}
        elif limit == "member queue":
            changes = {"max_queued_per_user": 1}
        await app.studio.update_guild_config(guild_id, **changes)
        blocker: InteractionHandle | None = None
        try:
            with worker_paused(app):
                if limit == "member queue":  # one job of theirs waits in the queue
                    await app.studio.update_guild_config(guild_id, max_queued_per_user=5)
                    blocker = await emulator.slash(user, "avatar", {"prompt": "a hat"})
                    await wait_for(lambda: _count_is(app, user.id, before + 1), 30, "the blocking job queued")
                    await app.studio.update_guild_config(guild_id, max_queued_per_user=1)
                    before += 1
                for name, entry in ENTRY_POINTS.items():
                    if name in ("/chibify", "message menu") and not (PHOTOS / "obama.jpg").exists():
                        continue
                    h = await entry(emulator, user, avatar_id, message)
                    assert h is not None
                    text = await reply_text(h)
                    assert LIMITS[limit] in text, f"{name} under {limit}: {text!r}"
                    assert "\n" not in text
                    assert len(await jobs_of(app, user.id)) == before, f"{name} queued a job under {limit}"
        finally:
            await app.studio.update_guild_config(
                guild_id, allowed_channels=[], per_user_daily_limit=None, max_queued_per_user=None
            )
        if blocker is not None:
            await result_message(blocker, within=60)
        if limit == "cooldown":  # DM photos go through the same gate
            photo = _blank_png()
            await emulator.dm_message(user, "", [emulator.upload("me.png", photo)])
            dm = await emulator.wait_for_message(
                emulator.dm_channel(user), lambda m: "Slow down" in (m.get("content") or ""), within=30
            )
            assert dm
            assert len(await jobs_of(app, user.id)) == before


# --- the edit modal survives a restart ------------------------------------------------------------------------


async def test_edit_modal_opened_before_a_restart_works_after_it(
    emulator: DiscordEmulator, app: App, make_bot: BotFactory
) -> None:
    user = emulator.add_user("ivy")
    async with emulator.running(make_bot()):
        first = await emulator.slash(user, "avatar", {"prompt": "brown hair"})
        message = await result_message(first)
        avatar_id = _avatar_id(message)
        click = await emulator.click(user, message["id"], f"chibify:edit:{avatar_id}")
        await click.modal()
    async with emulator.running(make_bot()):  # a new process: nothing of the old one in memory
        submit = await emulator.modal_submit(user, click, {"change": "add cat ears"})
        child = await result_message(submit)
        assert _avatar_id(child) != avatar_id


# --- delete and /forget remove what was posted --------------------------------------------------------------


async def test_delete_and_forget_remove_the_public_messages(
    emulator: DiscordEmulator, app: App, bot: ChibifyBot
) -> None:
    user = emulator.add_user("jun")
    await app.studio.update_preferences(_actor(user), public_results=True)
    channel = emulator.guild.default_channel

    async def public_result(prompt: str) -> dict[str, Any]:
        await emulator.slash(user, "avatar", {"prompt": prompt})
        return await emulator.wait_for_message(
            channel,
            lambda m: has_image(m) and f"<@{user.id}>" in m.get("content", "") and prompt in str(m["embeds"]),
            within=60,
        )

    first = await public_result("orange hair")
    second = await public_result("purple hair")
    await wait_for(lambda: all_delivered(app, user.id), 30, "both delivered")
    h = await emulator.slash(user, "delete", {"id": _avatar_id(first)})
    assert "Removed 1 message" in await reply_text(h)
    assert int(first["id"]) not in emulator.messages
    assert int(second["id"]) in emulator.messages
    ask = await emulator.slash(user, "forget", {})
    question = await ask.original()  # the deferred reply becomes the question with its two buttons
    yes = await emulator.click(user, question["id"], "chibify:forget:yes")
    await yes.response()

    def report() -> dict[str, Any] | None:
        message = emulator.messages[int(question["id"])]
        return message if str(message.get("content", "")).startswith("Done") else None

    done = await emulator.wait_until(report, 15, "the forget report")
    assert "1 messages" in done["content"]
    assert int(second["id"]) not in emulator.messages


# --- helpers ------------------------------------------------------------------------------------------------


def _actor(user: User) -> Any:
    from bot.studio import Actor

    return Actor(discord_id=user.id)


def _avatar_id(message: dict[str, Any]) -> str:
    field = next(f for f in message["embeds"][0]["fields"] if f["name"] in ("Avatar id", "头像编号"))
    return str(field["value"]).strip("`")


async def _count_is(app: App, discord_id: int, count: int) -> bool:
    return len(await jobs_of(app, discord_id)) == count


def _last_text(handle: InteractionHandle) -> str | None:
    for message in reversed(handle.messages):
        if message.get("content"):
            return str(message["content"])
    return None


def _blank_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 180, 160)).save(out, "PNG")
    return out.getvalue()
