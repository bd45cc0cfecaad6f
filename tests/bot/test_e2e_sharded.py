"""With CHIBIFY_SHARD_COUNT set, the bot runs as an AutoShardedBot and serves commands on every shard."""

from __future__ import annotations

import dataclasses

import pytest

from bot.app import App
from bot.client import ShardedChibifyBot, build_bot
from tests.bot.conftest import has_image, result_message
from tests.discord.emulator import DiscordEmulator

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_sharded_bot_answers_from_both_shards(emulator: DiscordEmulator, app: App) -> None:
    settings = app.settings.model_copy(update={"shard_count": 2})
    sharded_app = dataclasses.replace(app, settings=settings)
    first_shard = (emulator.guild.id >> 22) % 2
    second = emulator.add_guild("Second Guild", owner=emulator.bob, members=[emulator.alice, emulator.bob])
    while (second.id >> 22) % 2 == first_shard:  # Discord's rule: shard = (guild_id >> 22) % shard_count
        second = emulator.add_guild(
            "Another Guild", owner=emulator.bob, members=[emulator.alice, emulator.bob]
        )
    bot = build_bot(sharded_app, cooldown=(1000, 1.0))
    assert isinstance(bot, ShardedChibifyBot) and bot.shard_count == 2
    async with emulator.running(bot):
        assert sorted(bot.shards) == [0, 1]
        for guild in (emulator.guild, second):
            handle = await emulator.slash(
                emulator.alice, "avatar", {"prompt": "bunny ears"}, guild=guild, channel=guild.channels[0]
            )
            assert has_image(await result_message(handle))
            assert bot.get_guild(guild.id).shard_id == (guild.id >> 22) % 2  # type: ignore[union-attr]
