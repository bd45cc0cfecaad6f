"""Deleting one avatar of a grid keeps the others on the message: the real bot against the emulator.

A public grid of four is posted in the channel. The owner opens one (1-4), deletes it with its Delete button:
the grid message stays, re-drawn with the other three (a new picture, their ids, their buttons). /delete
takes off the next ones; the last avatar left gets a single result's controls; deleting it deletes the
message.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from PIL import Image

from bot.app import App
from bot.client import ChibifyBot
from bot.studio import Actor
from tests.bot.conftest import custom_ids, has_image, reply_text, result_message
from tests.bot.test_e2e_reliability import all_delivered, wait_for
from tests.discord.emulator import DiscordEmulator

pytestmark = pytest.mark.asyncio(loop_scope="module")


def ids_field(message: dict[str, Any]) -> list[str]:
    """The avatar ids the message's embed names, in order (``1: id`` for a grid, ``id`` for one)."""
    field = next(f for f in message["embeds"][0]["fields"] if f["name"] in ("Avatar id", "Avatar ids"))
    return [part.split(": ")[-1] for part in re.findall(r"`([^`]+)`", field["value"])]


def seeds_field(message: dict[str, Any]) -> str:
    return str(next(f["value"] for f in message["embeds"][0]["fields"] if f["name"] == "Seed"))


def picture_size(emulator: DiscordEmulator, message: dict[str, Any]) -> tuple[int, int]:
    (attachment,) = message["attachments"]
    with Image.open(io.BytesIO(emulator.attachment_bytes(attachment))) as image:
        return image.size


async def test_deleting_one_avatar_of_a_grid_keeps_the_others(
    emulator: DiscordEmulator, app: App, bot: ChibifyBot
) -> None:
    user = emulator.add_user("grid-owner")
    await app.studio.update_preferences(Actor(discord_id=user.id), public_results=True)
    channel = emulator.guild.default_channel
    await emulator.slash(user, "avatar", {"prompt": "cat girl, pink hair", "count": 4, "seed": 7})
    posted = await emulator.wait_for_message(
        channel, lambda m: has_image(m) and f"<@{user.id}>" in m.get("content", ""), within=60
    )
    await wait_for(lambda: all_delivered(app, user.id), 30, "the grid recorded as delivered")
    grid_id = int(posted["id"])
    ids = ids_field(posted)
    assert len(ids) == 4 and seeds_field(posted) == "7, 8, 9, 10"
    content = posted["content"]

    # Open the second one and press its Delete button.
    opened = await result_message(await emulator.click(user, grid_id, f"chibify:pick2:{ids[1]}"))
    deleted = await emulator.click(user, opened["id"], f"chibify:del:{ids[1]}")
    text = await reply_text(deleted)
    assert f"Deleted {ids[1]}" in text and "Took it off 1 message" in text and "Removed" not in text

    def redrawn(count: int) -> dict[str, Any] | None:
        message = emulator.messages.get(grid_id)
        return message if message is not None and len(ids_field(message)) == count else None

    three = await emulator.wait_until(lambda: redrawn(3), 15, "the grid re-drawn with three avatars")
    left = [ids[0], ids[2], ids[3]]
    assert ids_field(three) == left
    assert seeds_field(three) == "7, 9, 10"
    assert three["content"] == content  # the text stays
    assert picture_size(emulator, three) == (1024, 1024)  # a fresh 2x2 grid picture
    controls = custom_ids(three)
    assert [c for c in controls if c.startswith("chibify:pick")] == [
        f"chibify:pick{n}:{avatar}" for n, avatar in enumerate(left, 1)
    ]
    assert f"chibify:again3:{left[0]}" in controls
    assert f"chibify:export:{'.'.join(left)}" in controls
    assert not any(ids[1] in c for c in controls)

    # The re-drawn buttons work: open the (new) second one.
    reopened = await result_message(await emulator.click(user, grid_id, f"chibify:pick2:{left[1]}"))
    assert ids_field(reopened) == [left[1]]

    # /delete takes off the next two; one avatar is left, with a single result's controls.
    for avatar in left[:2]:
        assert "Took it off 1 message" in await reply_text(
            await emulator.slash(user, "delete", {"id": avatar})
        )
    one = await emulator.wait_until(lambda: redrawn(1), 15, "the message re-drawn with one avatar")
    assert ids_field(one) == [left[2]]
    assert picture_size(emulator, one) != (1024, 1024)
    assert f"chibify:del:{left[2]}" in custom_ids(one)
    assert not any(c.startswith("chibify:pick") for c in custom_ids(one))

    # The last one goes: so does the message.
    last = await reply_text(await emulator.slash(user, "delete", {"id": left[2]}))
    assert "Removed 1 message" in last
    assert grid_id not in emulator.messages
