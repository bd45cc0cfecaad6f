"""/avatar end to end: the real bot, the emulator, a real chibi worker process, SQLite."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.client import ChibifyBot
from tests.bot.conftest import custom_ids, result_message
from tests.discord.emulator import DiscordEmulator

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_avatar_defers_then_shows_image_embed_and_buttons(
    emulator: DiscordEmulator, bot: ChibifyBot
) -> None:
    h = await emulator.slash(
        emulator.alice, "avatar", {"prompt": "pink twin tails, cat ears, glasses, smile"}
    )
    assert (await h.response()).json["type"] == 5  # deferred at once
    message = await result_message(h)
    png = emulator.attachment_bytes(message["attachments"][0])
    with Image.open(io.BytesIO(png)) as im:
        assert im.size[0] >= 256
    embed = message["embeds"][0]
    names = [f["name"] for f in embed["fields"]]
    assert "Understood" in names and "Seed" in names and "Avatar id" in names
    avatar_id = next(f["value"] for f in embed["fields"] if f["name"] == "Avatar id").strip("`")
    ids = custom_ids(message)
    for action in ("reroll", "vary", "edit", "fav", "del", "export"):
        assert f"chibify:{action}:{avatar_id}" in ids
    assert emulator.command_syncs >= 1
