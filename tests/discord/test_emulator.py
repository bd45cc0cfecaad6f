"""The emulator against the real discord.py client: every flow a Chibify-like bot uses, end to end.

The bot here is test-only: a small CommandTree with a deferring slash command that answers with a file,
a persistent DynamicItem button and a select; a modal; autocomplete; context menus; a DM handler.
"""

from __future__ import annotations

import asyncio
import io
import re
import struct
import zlib
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.discord.emulator import DiscordEmulator


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A valid RGB PNG, built by hand so the test needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


RESULT_PNG = tiny_png(4, 4)
CATALOG = ["hat", "halo", "headphones", "glasses", "cat ears"]


class PickButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"pick:(?P<avatar>[0-9]+):(?P<n>[1-4])"
):
    """A persistent button: its state lives in the custom_id, so it works for any message, any time."""

    def __init__(self, avatar: int, n: int) -> None:
        super().__init__(discord.ui.Button(label=f"Pick {n}", custom_id=f"pick:{avatar}:{n}"))
        self.avatar, self.n = avatar, n

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> PickButton:
        return cls(int(match["avatar"]), int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"picked {self.n} of avatar {self.avatar}", ephemeral=True)


class ResultView(discord.ui.View):
    def __init__(self, avatar: int) -> None:
        super().__init__(timeout=None)
        for n in (1, 2):
            self.add_item(PickButton(avatar, n))

    @discord.ui.select(
        custom_id="style", options=[discord.SelectOption(label=s, value=s) for s in ("cute", "cool")]
    )
    async def style(self, interaction: discord.Interaction, select: discord.ui.Select[Any]) -> None:
        await interaction.response.edit_message(content=f"style: {select.values[0]}")


class NameModal(discord.ui.Modal, title="Name your avatar"):
    name: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Name", custom_id="name", max_length=32)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"named {self.name.value}")


def token_gone(exc: discord.HTTPException) -> bool:
    """The interaction token is dead: 401 50027 (past 15 minutes, as Discord answers) or 404."""
    return isinstance(exc, discord.NotFound) or (exc.status == 401 and exc.code == 50027)


class MiniChibify(commands.Bot):
    """A miniature Chibify: enough surface to exercise every emulated flow."""

    def __init__(self, *, client_kind: type[commands.Bot] | None = None, **options: Any) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            guild_ready_timeout=0,
            **options,
        )
        self.release_slow = asyncio.Event()
        self.delivered: list[str] = []
        self.posted: list[discord.Message] = []
        self._add_commands()

    async def setup_hook(self) -> None:
        self.add_dynamic_items(PickButton)
        await self.tree.sync()

    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None and not message.author.bot and message.attachments:
            data = await message.attachments[0].read()
            await message.channel.send(f"got your photo: {len(data)} bytes")

    def _add_commands(self) -> None:
        tree = self.tree

        @tree.command(name="avatar", description="Make a chibi avatar")
        @app_commands.describe(prompt="What to draw")
        async def avatar(
            interaction: discord.Interaction,
            prompt: str,
            count: app_commands.Range[int, 1, 4] = 1,
            photo: discord.Attachment | None = None,
        ) -> None:
            await interaction.response.defer(thinking=True)
            size = len(await photo.read()) if photo else 0
            zh = interaction.locale is discord.Locale.chinese
            text = f"已生成 {count} 个：{prompt}" if zh else f"made {count}: {prompt} (photo {size} bytes)"
            embed = discord.Embed(title="Chibi", description=prompt).add_field(name="seed", value="42")
            await interaction.followup.send(
                text, file=discord.File(io.BytesIO(RESULT_PNG), "avatar.png"), embed=embed, view=ResultView(7)
            )

        @tree.command(name="edit", description="Edit an avatar")
        async def edit(interaction: discord.Interaction, add: str) -> None:
            await interaction.response.send_message(f"added {add}", ephemeral=True)

        @edit.autocomplete("add")
        async def edit_add(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=c, value=c) for c in CATALOG if c.startswith(current)]

        profile = app_commands.Group(name="profile", description="Your profile")

        @profile.command(name="name", description="Name your avatar")
        async def profile_name(interaction: discord.Interaction, hint: str | None = None) -> None:
            modal = NameModal(custom_id="name-modal")
            modal.name.default = hint
            await interaction.response.send_modal(modal)

        tree.add_command(profile)

        @tree.context_menu(name="Chibify")
        async def chibify(interaction: discord.Interaction, message: discord.Message) -> None:
            await interaction.response.defer()
            data = await message.attachments[0].read()
            await interaction.edit_original_response(content=f"chibified {len(data)} bytes")

        @tree.context_menu(name="Avatar of")
        async def avatar_of(interaction: discord.Interaction, member: discord.Member) -> None:
            await interaction.response.send_message(f"avatar of {member.name}", ephemeral=True)

        @tree.command(name="tidy", description="Answers, follows up, edits and deletes")
        async def tidy(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("one")
            second = await interaction.followup.send("two", wait=True)
            await second.edit(content="two, edited")
            await interaction.delete_original_response()
            await interaction.user.send("tidied up")

        @tree.command(name="slow", description="Waits, then delivers")
        async def slow(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            await self.release_slow.wait()
            try:
                await interaction.followup.send("done")
                self.delivered.append("followup")
                return
            except discord.HTTPException as exc:
                if not token_gone(exc):
                    raise
            assert interaction.channel is not None and isinstance(
                interaction.channel, discord.abc.Messageable
            )
            try:
                await interaction.channel.send(
                    f"{interaction.user.mention} done (the interaction had expired)"
                )
                self.delivered.append("channel")
                return
            except discord.Forbidden:
                pass
            await interaction.user.send("done (the interaction had expired and the channel refused)")
            self.delivered.append("dm")

        @tree.command(name="post", description="Posts in the channel and DMs, then deletes both")
        async def post(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("posting", ephemeral=True)
            assert isinstance(interaction.channel, discord.abc.Messageable)
            public = await interaction.channel.send("public result")
            private = await interaction.user.send("private result")
            self.posted.extend([public, private])


# --- login, sync, slash command with attachment, button, select -------------------------------------------


async def test_login_sync_and_the_slash_command_flow(emulator: DiscordEmulator) -> None:
    async with emulator.running(MiniChibify()) as bot:
        routes = [(r.method, r.route) for r in emulator.requests]
        assert routes[:2] == [("GET", "/users/@me"), ("GET", "/oauth2/applications/@me")]
        stored = {c["name"]: c for c in emulator.commands[None].values()}
        assert set(stored) == {"avatar", "edit", "profile", "Chibify", "Avatar of", "tidy", "slow", "post"}
        assert stored["Chibify"]["type"] == 3 and stored["Avatar of"]["type"] == 2
        assert bot.user is not None and bot.user.id == emulator.bot.id

        selfie = emulator.upload("selfie.png", tiny_png(8, 8))
        handle = await emulator.slash(
            emulator.alice, "avatar", {"prompt": "猫耳女孩", "count": 2, "photo": selfie}, locale="zh-CN"
        )
        callback = await handle.response()
        assert callback.json["type"] == 5 and (await handle.original(finished=False))["flags"] & 128
        result = await handle.followup()
        assert result["content"] == "已生成 2 个：猫耳女孩"
        assert [a["filename"] for a in result["attachments"]] == ["avatar.png"]
        assert emulator.attachment_bytes(result["attachments"][0]) == RESULT_PNG
        assert result["embeds"][0]["title"] == "Chibi"
        followup_request = next(
            r for r in handle.requests if r.method == "POST" and (r.route or "").startswith("/webhooks")
        )
        assert followup_request.files[0].data == RESULT_PNG

        click = await emulator.click(emulator.bob, result["id"], "pick:7:2")
        picked = await click.original()
        assert picked["content"] == "picked 2 of avatar 7" and picked["flags"] & 64

        chosen = await emulator.select(emulator.alice, result["id"], "style", ["cool"])
        assert (await chosen.response()).json["type"] == 7
        assert emulator.messages[int(result["id"])]["content"] == "style: cool"

        # The same command in a DM: a user, no member, channel type 1.
        in_dm = await emulator.slash(emulator.bob, "avatar", {"prompt": "dog"}, dm=True)
        assert (await in_dm.followup())["content"] == "made 1: dog (photo 0 bytes)"
        assert "member" not in in_dm.payload and in_dm.payload["channel"]["type"] == 1


async def test_autocomplete_modal_context_menus_and_dm(emulator: DiscordEmulator) -> None:
    async with emulator.running(MiniChibify()):
        typing = await emulator.autocomplete(emulator.alice, "edit", "add", "h")
        assert [c["value"] for c in await typing.choices()] == ["hat", "halo", "headphones"]

        opened = await emulator.slash(emulator.alice, "profile name", {"hint": "Mo"})
        assert opened.payload["data"]["options"] == [
            {"name": "name", "type": 1, "options": [{"name": "hint", "type": 3, "value": "Mo"}]}
        ]
        modal = await opened.modal()
        assert modal["custom_id"] == "name-modal"
        assert modal["components"][0]["components"][0]["value"] == "Mo"
        submitted = await emulator.modal_submit(emulator.alice, opened, {"name": "Mochi"})
        assert (await submitted.original())["content"] == "named Mochi"
        with pytest.raises(ValueError, match="required"):
            await emulator.modal_submit(emulator.alice, opened, {})

        photo = emulator.upload("cat.png", tiny_png(5, 5))
        posted = await emulator.post_message(emulator.bob, emulator.guild.default_channel, "look", [photo])
        menu = await emulator.message_context(emulator.alice, "Chibify", posted)
        assert (await menu.original())["content"] == f"chibified {len(photo.data)} bytes"

        who = await emulator.user_context(emulator.alice, "Avatar of", emulator.bob)
        assert (await who.original())["content"] == "avatar of bob"

        dm = await emulator.dm_message(emulator.alice, attachments=[emulator.upload("me.png", tiny_png())])
        reply = await emulator.wait_for_message(emulator.dm_channel(emulator.alice), after=int(dm["id"]))
        assert reply["content"] == f"got your photo: {len(tiny_png())} bytes"


async def test_guild_sync_followup_edit_delete_and_dm(emulator: DiscordEmulator) -> None:
    async with emulator.running(MiniChibify()) as bot:
        guild = discord.Object(emulator.guild.id)
        bot.tree.copy_global_to(guild=guild)
        synced = await bot.tree.sync(guild=guild)
        assert {c.name for c in synced} == {c["name"] for c in emulator.commands[emulator.guild.id].values()}

        handle = await emulator.slash(emulator.alice, "tidy")
        assert handle.payload["data"]["guild_id"] == str(emulator.guild.id)
        reply = await emulator.wait_for_message(emulator.dm_channel(emulator.alice))
        assert reply["content"] == "tidied up"
        assert handle.original_message_id not in emulator.messages  # deleted
        assert (await handle.followup())["content"] == "two, edited"
        routes = [(r.method, r.route) for r in handle.requests]
        assert ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}") in routes
        assert ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original") in routes
        assert any(r.route == "/users/@me/channels" for r in emulator.requests)


async def test_twenty_users_at_once_each_get_their_own_result(emulator: DiscordEmulator) -> None:
    users = [emulator.add_user(f"user{i}") for i in range(20)]
    async with emulator.running(MiniChibify()):
        handles = await asyncio.gather(*(emulator.slash(u, "avatar", {"prompt": u.username}) for u in users))
        results = await asyncio.gather(*(h.followup() for h in handles))
    for user, handle, result in zip(users, handles, results, strict=True):
        assert result["content"] == f"made 1: {user.username} (photo 0 bytes)"
        assert result["interaction_metadata"]["user"]["id"] == str(user.id) and handle.callback_type == 5


async def test_a_persistent_button_works_after_a_restart(emulator: DiscordEmulator) -> None:
    async with emulator.running(MiniChibify()):
        result = await (await emulator.slash(emulator.alice, "avatar", {"prompt": "fox"})).followup()
    async with emulator.running(MiniChibify()):
        click = await emulator.click(emulator.alice, result["id"], "pick:7:1")
        assert (await click.original())["content"] == "picked 1 of avatar 7"
    assert emulator.gateway.count("identify") == 2


async def test_enforce_nonce_returns_the_earlier_message(emulator: DiscordEmulator) -> None:
    """As on Discord: a repeated post with the same nonce and enforce_nonce shows one message."""
    channel = emulator.guild.default_channel
    url = f"{emulator.api_base}/channels/{channel.id}/messages"
    headers = {"Authorization": f"Bot {emulator.token}"}
    async with aiohttp.ClientSession() as session:
        ids = []
        for body in (
            {"content": "once", "nonce": "c123", "enforce_nonce": True},
            {"content": "once", "nonce": "c123", "enforce_nonce": True},
            {"content": "again", "nonce": "c123"},
        ):
            async with session.post(url, json=body, headers=headers) as response:
                assert response.status == 200
                ids.append((await response.json())["id"])
    assert ids[0] == ids[1] != ids[2]
    assert [m["content"] for m in emulator.channel_messages(channel)].count("once") == 1


# --- validation -------------------------------------------------------------------------------------------


async def test_schema_validation_rejects_an_invalid_body(emulator: DiscordEmulator) -> None:
    channel = emulator.guild.default_channel
    url = f"{emulator.api_base}/channels/{channel.id}/messages"
    headers = {"Authorization": f"Bot {emulator.token}"}
    async with aiohttp.ClientSession() as session:
        body = {"content": "hi", "embeds": [{"title": "x" * 300}]}
        async with session.post(url, json=body, headers=headers) as response:
            assert response.status == 400
            assert response.headers["Content-Type"] == "application/json"
            error = await response.json()
        async with session.post(url, json={"content": "fine"}, headers=headers) as response:
            assert response.status == 200
    assert error["code"] == 50035 and "title" in error["errors"]["embeds"]["0"]
    (violation,) = emulator.take_violations()
    assert violation.route == "/channels/{channel_id}/messages" and "embeds[0].title" in violation.errors[0]

    async with emulator.running(MiniChibify()) as bot:
        target = bot.get_channel(channel.id)
        assert isinstance(target, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as raised:
            await target.send(embed=discord.Embed(title="y" * 257))
        assert raised.value.status == 400 and raised.value.code == 50035
    assert len(emulator.take_violations()) == 1


# --- REST faults ------------------------------------------------------------------------------------------


async def test_429_with_via_is_retried_and_500_too(emulator: DiscordEmulator) -> None:
    route = "/channels/{channel_id}/messages"
    async with emulator.running(MiniChibify()) as bot:
        channel = bot.get_channel(emulator.guild.default_channel.id)
        assert isinstance(channel, discord.TextChannel)
        emulator.fail_next(route, method="POST", status=429, times=2, retry_after=0.01)
        sent = await channel.send("after the rate limit")
        statuses = [r.status for r in emulator.requests if r.route == route]
        assert statuses == [429, 429, 200]
        assert emulator.messages[sent.id]["content"] == "after the rate limit"

        emulator.fail_next(route, method="POST", status=500)
        await channel.send("after a server error")
        assert [r.status for r in emulator.requests if r.route == route][-2:] == [500, 200]


async def test_expired_token_makes_the_bot_post_to_the_channel(emulator: DiscordEmulator) -> None:
    async with emulator.running(MiniChibify()) as bot:
        handle = await emulator.slash(emulator.alice, "slow")
        await handle.response()
        handle.expire()
        bot.release_slow.set()
        thinking = await handle.original(finished=False)
        channel = emulator.guild.default_channel
        message = await emulator.wait_for_message(channel, after=int(thinking["id"]))
        assert message["content"].startswith(f"<@{emulator.alice.id}> done")
        rejected = next(r for r in handle.requests if r.status >= 400)
        assert rejected.route == "/webhooks/{webhook_id}/{webhook_token}"
        assert (rejected.status, rejected.response["code"]) == (401, 50027)
        assert rejected.response["message"] == "Invalid Webhook Token"
        await emulator.wait_until(lambda: bot.delivered == ["channel"], 5.0, "the bot to note its fallback")

        # Discord gives a bot 3 s to answer; the emulator's deadline is a knob (0 here: always too late).
        emulator.callback_deadline = 0.0
        late = await emulator.slash(emulator.bob, "edit", {"add": "hat"})
        refused = await emulator.wait_for_request(
            "POST",
            "/interactions/{interaction_id}/{interaction_token}/callback",
            predicate=lambda r: late.token in r.path,
        )
        assert refused.status == 404 and refused.response["code"] == 10062
        assert emulator.late_callbacks == [late]
        emulator.late_callbacks.clear()  # provoked on purpose; otherwise the fixture fails the test


async def test_an_expired_token_answers_every_webhook_call_401_50027(emulator: DiscordEmulator) -> None:
    async with emulator.running(MiniChibify()):
        handle = await emulator.slash(emulator.alice, "tidy")
        second = await handle.followup(0)  # "two, edited": a followup with its own id
        await emulator.wait_for_message(emulator.dm_channel(emulator.alice))  # tidy is done
        live = await emulator.slash(emulator.bob, "edit", {"add": "hat"})
        await live.original()
    assert emulator.expire(handle.token) is handle  # by the token string, as a restarted bot knows it
    app, token = emulator.application_id, handle.token
    webhook = f"{emulator.api_base}/webhooks/{app}/{token}"
    callback = f"{emulator.api_base}/interactions/{handle.id}/{token}/callback"
    calls = [
        ("POST", webhook, {"content": "late"}),
        ("GET", f"{webhook}/messages/@original", None),
        ("PATCH", f"{webhook}/messages/@original", {"content": "late"}),
        ("DELETE", f"{webhook}/messages/@original", None),
        ("GET", f"{webhook}/messages/{second['id']}", None),
        ("PATCH", f"{webhook}/messages/{second['id']}", {"content": "late"}),
        ("DELETE", f"{webhook}/messages/{second['id']}", None),
    ]
    answers = []
    async with aiohttp.ClientSession() as session:
        for method, url, body in calls:
            async with session.request(method, url, json=body) as response:
                assert response.headers["Content-Type"] == "application/json"
                answers.append((response.status, await response.json()))
        # A token never issued is unknown (404 10015), not expired.
        async with session.post(
            f"{emulator.api_base}/webhooks/{app}/never-issued", json={"content": "x"}
        ) as r:
            unknown_token = (r.status, (await r.json())["code"])
        # Responding after the token died: 10062 Unknown interaction; responding twice: 40060.
        async with session.post(callback, json={"type": 4, "data": {"content": "late"}}) as r:
            late_callback = (r.status, (await r.json())["code"])
        again = f"{emulator.api_base}/interactions/{live.id}/{live.token}/callback"
        async with session.post(again, json={"type": 4, "data": {"content": "twice"}}) as r:
            twice = (r.status, await r.json())
    assert answers == [(401, {"message": "Invalid Webhook Token", "code": 50027})] * len(calls)
    assert emulator.messages[int(second["id"])]["content"] == "two, edited"  # nothing changed
    assert unknown_token == (404, 10015)
    assert late_callback == (404, 10062)
    assert twice == (400, {"message": "Interaction has already been acknowledged.", "code": 40060})
    with pytest.raises(ValueError, match="no interaction"):
        emulator.expire("never-issued")


async def test_token_dies_on_ack_and_the_channel_refuses_so_the_result_goes_by_dm(
    emulator: DiscordEmulator,
) -> None:
    channel = emulator.guild.default_channel
    emulator.expire_on_ack = lambda h: h.user is emulator.alice
    emulator.refuse_posts(channel)
    async with emulator.running(MiniChibify()) as bot:
        handle = await emulator.slash(emulator.alice, "slow")
        assert (await handle.response()).status == 200 and handle.expired  # accepted, then gone
        bot.release_slow.set()
        dm = await emulator.wait_for_message(emulator.dm_channel(emulator.alice))
        assert dm["content"].startswith("done (the interaction had expired")
        await emulator.wait_until(lambda: bot.delivered == ["dm"], 5.0, "the bot to note its fallback")
        failed = [(r.route, r.status, r.response["code"]) for r in emulator.requests if r.status >= 400]
        assert failed == [
            ("/webhooks/{webhook_id}/{webhook_token}", 401, 50027),
            ("/channels/{channel_id}/messages", 403, 50001),
        ]
        assert not [m for m in emulator.channel_messages(channel) if m["content"].startswith("<@")]

        # Bob's token is not expired by the predicate; once the channel allows posts again nothing is refused.
        emulator.allow_posts(channel)
        bob = await emulator.slash(emulator.bob, "slow")
        assert (await bob.followup())["content"] == "done" and not bob.expired
        await emulator.wait_until(lambda: bot.delivered == ["dm", "followup"], 5.0, "bob's followup")

        # A DM the user closed: 403 50007, as Discord answers.
        emulator.refuse_posts(emulator.dm_channel(emulator.bob))
        user = await bot.fetch_user(emulator.bob.id)
        with pytest.raises(discord.Forbidden) as refused:
            await user.send("hello?")
        assert refused.value.code == 50007


async def test_bot_messages_in_channels_and_dms_are_recorded_and_deletable(emulator: DiscordEmulator) -> None:
    channel = emulator.guild.default_channel
    async with emulator.running(MiniChibify()) as bot:
        handle = await emulator.slash(emulator.alice, "post")
        ephemeral = await handle.original()
        assert ephemeral["flags"] & 64
        await emulator.wait_until(lambda: len(bot.posted) == 2, 5.0, "both posts")
        public, private = bot.posted
        dm_channel = emulator.dm_channel(emulator.alice)
        assert any(r.route == "/users/@me/channels" and r.status == 200 for r in emulator.requests)
        assert [m["content"] for m in emulator.channel_messages(dm_channel)] == ["private result"]
        assert emulator.messages[public.id]["channel_id"] == str(channel.id)

        # An ephemeral message is not in the channel: only its interaction token reaches it.
        target = bot.get_channel(channel.id)
        assert isinstance(target, discord.TextChannel)
        with pytest.raises(discord.NotFound):
            await target.fetch_message(int(ephemeral["id"]))
        assert [m.id async for m in target.history()] == [public.id]

        await public.delete()
        await private.delete()
        assert public.id not in emulator.messages and private.id not in emulator.messages
        deletes = [r for r in emulator.requests if r.method == "DELETE"]
        assert [(r.route, r.status) for r in deletes] == [
            ("/channels/{channel_id}/messages/{message_id}", 204)
        ] * 2
        with pytest.raises(discord.NotFound) as gone:
            await public.delete()
        assert gone.value.code == 10008


# --- gateway faults ---------------------------------------------------------------------------------------


async def _works(emulator: DiscordEmulator, word: str) -> None:
    handle = await emulator.slash(emulator.alice, "edit", {"add": word})
    assert (await handle.original())["content"] == f"added {word}"


async def test_gateway_reconnect_invalid_session_and_close_are_survived(emulator: DiscordEmulator) -> None:
    gw = emulator.gateway
    async with emulator.running(MiniChibify()):
        assert gw.count("identify") == 1
        assert [s["s"] for s in next(iter(gw.sessions.values())).backlog][:2] == [1, 2]

        await gw.send_reconnect()
        # Dispatched while the client is away: replayed on RESUME with its original sequence number.
        missed = await emulator.slash(emulator.alice, "edit", {"add": "hat"}, wait_connected=False)
        await gw.wait_for("resumed", count=1)
        assert (await missed.original())["content"] == "added hat"
        assert gw.events[[e.kind for e in gw.events].index("resume")].detail is not None
        await _works(emulator, "halo")

        await gw.invalidate_session(resumable=True)
        await gw.wait_for("resumed", count=2)
        await _works(emulator, "glasses")

        await gw.invalidate_session(resumable=False)
        await gw.wait_for("ready", count=2)
        assert gw.count("identify") == 2
        await _works(emulator, "headphones")

        await gw.close(4000)
        await gw.wait_for("resumed", count=3)
        await _works(emulator, "cat ears")
        resumed_on = [e.detail for e in gw.events if e.kind == "connect"]
        assert sum(path.startswith("/resume") for path in resumed_on) >= 3


# --- sharding ---------------------------------------------------------------------------------------------


class ShardedMiniBot(commands.AutoShardedBot):
    def __init__(self, **options: Any) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            guild_ready_timeout=0,
            **options,
        )

    async def setup_hook(self) -> None:
        @self.tree.command(name="ping", description="Ping")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message(
                f"pong from shard {interaction.guild and interaction.guild.shard_id}"
            )


@pytest.mark.parametrize("shard_count", [2, None], ids=["configured", "from-gateway-bot"])
async def test_auto_sharded_client_with_two_shards(
    emulator: DiscordEmulator, shard_count: int | None
) -> None:
    emulator.recommended_shards = 2
    second = emulator.add_guild("Second", owner=emulator.bob, members=[emulator.bob])
    async with emulator.running(ShardedMiniBot(shard_count=shard_count)) as bot:
        assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
        identifies = [e.detail["shard"] for e in emulator.gateway.events if e.kind == "identify"]
        assert sorted(identifies) == [[0, 2], [1, 2]]
        asked = any(r.route == "/gateway/bot" for r in emulator.requests)
        assert asked is (shard_count is None)
        for guild in (emulator.guild, second):
            handle = await emulator.slash(emulator.bob, "ping", guild=guild)
            expected = (guild.id >> 22) % 2
            assert (await handle.original())["content"] == f"pong from shard {expected}"
