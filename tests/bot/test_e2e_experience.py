"""What users of image bots expect, through the emulator: per-image grid controls, exports under the
upload limit (PNGTuber set included), autocomplete from your own avatars, user installs (DMs, group DMs),
the age-restricted rule, allowed channels with threads, and messages in the reader's language."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import pytest
from PIL import Image

from bot.client import ChibifyBot
from tests.bot.conftest import has_image, reply_text, result_file, result_message
from tests.discord.emulator import DiscordEmulator
from tests.discord.models import EPHEMERAL

pytestmark = pytest.mark.asyncio(loop_scope="module")


def avatar_ids_of(message: dict[str, Any]) -> list[str]:
    field = next(f for f in message["embeds"][0]["fields"] if f["name"] in ("Avatar id", "Avatar ids"))
    return [part.split(": ")[-1] for part in re.findall(r"`([^`]+)`", field["value"])]


def components(message: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for row in message.get("components") or []:
        found.extend(row.get("components") or [])
    return found


def select_options(message: dict[str, Any], prefix: str) -> list[str]:
    select = next(c for c in components(message) if str(c.get("custom_id", "")).startswith(prefix))
    return [o["value"] for o in select["options"]]


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


# --- grids --------------------------------------------------------------------------------------------------


async def test_grid_offers_per_image_variations_and_rerolls(
    emulator: DiscordEmulator, bot: ChibifyBot
) -> None:
    h = await emulator.slash(
        emulator.alice, "avatar", {"prompt": "pink hair, cat ears", "count": 4, "seed": 40}
    )
    grid = await result_message(h)
    ids = avatar_ids_of(grid)
    assert len(ids) == 4
    rows = [[c.get("custom_id") or c.get("label") for c in row["components"]] for row in grid["components"]]
    assert rows[0] == [f"chibify:pick{n}:{ids[n - 1]}" for n in range(1, 5)]
    assert rows[1] == [f"chibify:vary:{i}" for i in ids]
    assert rows[2] == [f"chibify:reroll:{i}" for i in ids] + [f"chibify:again4:{ids[0]}"]
    assert rows[3] == [f"chibify:export:{'.'.join(ids)}"]
    labels = [c["label"] for c in grid["components"][1]["components"] + grid["components"][2]["components"]]
    assert labels[:8] == ["V1", "V2", "V3", "V4", "R1", "R2", "R3", "R4"]

    # V3: four variations of image 3 (a new grid whose parent is image 3)
    v3 = await emulator.click(emulator.alice, grid["id"], f"chibify:vary:{ids[2]}")
    varied = await result_message(v3)
    varied_ids = avatar_ids_of(varied)
    assert len(varied_ids) == 4 and not set(varied_ids) & set(ids)
    shown = await result_message(await emulator.slash(emulator.alice, "show", {"id": varied_ids[0]}))
    assert shown["embeds"][0]["description"] == "pink hair, cat ears"

    # R2: one new take on image 2's prompt
    r2 = await emulator.click(emulator.alice, grid["id"], f"chibify:reroll:{ids[1]}")
    retake = await result_message(r2)
    assert len(avatar_ids_of(retake)) == 1 and avatar_ids_of(retake)[0] not in ids

    # the whole grid again: four new ones
    again = await emulator.click(emulator.alice, grid["id"], f"chibify:again4:{ids[0]}")
    fresh = avatar_ids_of(await result_message(again))
    assert len(fresh) == 4 and not set(fresh) & set(ids)


# --- exports ------------------------------------------------------------------------------------------------


async def test_export_select_sends_each_format(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    h = await emulator.slash(emulator.alice, "avatar", {"prompt": "short black hair, glasses"})
    message = await result_message(h)
    avatar_id = avatar_ids_of(message)[0]
    select_id = f"chibify:export:{avatar_id}"
    values = select_options(message, select_id)
    assert {
        "png:2048",
        "transparent:1024",
        "circle:512",
        "svg:0",
        "gif:256",
        "apng:256",
        "stickers:0",
    } <= set(values)
    assert "pngtuber:512" in values

    png = await result_file(await emulator.select(emulator.alice, message["id"], select_id, ["png:1024"]))
    assert png["flags"] & EPHEMERAL
    assert png_size(emulator.attachment_bytes(png["attachments"][0])) == (1024, 1024)

    clear = await result_file(
        await emulator.select(emulator.alice, message["id"], select_id, ["transparent:512"])
    )
    with Image.open(io.BytesIO(emulator.attachment_bytes(clear["attachments"][0]))) as im:
        assert im.mode == "RGBA" and im.getpixel((0, 0))[3] == 0

    svg = await result_file(await emulator.select(emulator.alice, message["id"], select_id, ["svg:0"]))
    assert emulator.attachment_bytes(svg["attachments"][0]).startswith(b"<svg")

    tuber = await result_file(
        await emulator.select(emulator.alice, message["id"], select_id, ["pngtuber:512"])
    )
    assert tuber["attachments"][0]["filename"].endswith(".zip")
    names = zipfile.ZipFile(io.BytesIO(emulator.attachment_bytes(tuber["attachments"][0]))).namelist()
    pngs = [n for n in names if n.endswith(".png")]
    assert len(pngs) == 20  # 5 expressions x eyes open/closed x mouth closed/open
    for state in ("neutral", "happy", "sad", "angry", "surprised"):
        for frame in ("idle", "talk", "idle_blink", "talk_blink"):
            assert f"{avatar_id}-pngtuber/{state}/{state}_{frame}.png" in names
    assert f"{avatar_id}-pngtuber/README.txt" in names


async def test_sticker_buttons_of_older_results_still_work(
    emulator: DiscordEmulator, bot: ChibifyBot
) -> None:
    """Results posted before the export select had a Stickers button; it keeps working for days."""
    h = await emulator.slash(emulator.alice, "avatar", {"prompt": "star hair clip"})
    avatar_id = avatar_ids_of(await result_message(h))[0]
    old = emulator.create_message(
        emulator.guild.default_channel,
        {
            "content": f"<@{emulator.alice.id}> Here you go!",
            "components": [
                {
                    "type": 1,
                    "components": [
                        {
                            "type": 2,
                            "style": 2,
                            "label": "Stickers",
                            "custom_id": f"chibify:stickers:{avatar_id}",
                        }
                    ],
                }
            ],
        },
        author=emulator.bot,
    )
    click = await emulator.click(emulator.alice, old["id"], f"chibify:stickers:{avatar_id}")
    sent = await result_file(click)
    names = zipfile.ZipFile(io.BytesIO(emulator.attachment_bytes(sent["attachments"][0]))).namelist()
    assert f"{avatar_id}/stickers/smile.png" in names and f"{avatar_id}/sheet.png" in names
    other = await emulator.click(emulator.bob, old["id"], f"chibify:stickers:{avatar_id}")
    assert "belongs to someone else" in await reply_text(other)


async def test_exports_stay_under_the_upload_limit(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    h = await emulator.slash(emulator.bob, "avatar", {"prompt": "red hair, crown", "count": 2})
    grid = await result_message(h)
    ids = avatar_ids_of(grid)
    select_id = f"chibify:export:{'.'.join(ids)}"
    both = await result_file(await emulator.select(emulator.bob, grid["id"], select_id, ["png:256"]))
    assert [a["filename"] for a in both["attachments"]] == [f"{i}.png" for i in ids]

    emulator.attachment_size_limit = 600 * 1024  # e.g. a small server's upload limit
    big = await emulator.select(emulator.bob, grid["id"], select_id, ["png:2048"])
    sent = await result_file(big)
    assert "Sent at" in sent["content"] and "600 KB" in sent["content"]
    total = sum(len(emulator.attachment_bytes(a)) for a in sent["attachments"])
    assert total <= 600 * 1024
    assert png_size(emulator.attachment_bytes(sent["attachments"][0]))[0] < 2048

    emulator.attachment_size_limit = 20 * 1024  # nothing fits: a clear message, no refused upload
    tiny = await emulator.select(emulator.bob, grid["id"], select_id, ["stickers:0"])
    text = await reply_text(tiny, within=30)
    assert "over this chat's 20 KB upload limit" in text
    assert not emulator.oversized_uploads


# --- autocomplete -------------------------------------------------------------------------------------------


async def test_show_delete_and_edit_remove_autocomplete_from_your_own(
    emulator: DiscordEmulator, bot: ChibifyBot
) -> None:
    carol = emulator.add_user("carol")
    h = await emulator.slash(carol, "avatar", {"prompt": "blue hair, witch hat, glasses"})
    carols = avatar_ids_of(await result_message(h))[0]
    for command in ("show", "delete"):
        choices = await (await emulator.autocomplete(carol, command, "id", "")).choices()
        assert choices[0]["value"] == carols and "witch hat" in choices[0]["name"]
        typed = await (await emulator.autocomplete(carol, command, "id", carols[:5])).choices()
        assert [c["value"] for c in typed] == [carols]
    others = await emulator.autocomplete(emulator.bob, "show", "id", carols[:5])
    await others.response()
    assert others.choices_sent == []  # bob sees only his own avatars

    removable = await (await emulator.autocomplete(carol, "edit", "remove", "")).choices()
    assert {c["value"] for c in removable} == {"witch_hat", "round_glasses"}
    chosen = await (
        await emulator.autocomplete(carol, "edit", "remove", "gla", options={"avatar": carols})
    ).choices()
    assert [c["value"] for c in chosen] == ["round_glasses"]


# --- user installs and contexts -----------------------------------------------------------------------------


async def test_commands_install_to_users_and_work_in_dms_and_group_dms(
    emulator: DiscordEmulator, bot: ChibifyBot
) -> None:
    synced = {c["name"]: c for c in emulator.commands[None].values()}
    for name in (
        "avatar",
        "edit",
        "chibify",
        "history",
        "show",
        "delete",
        "forget",
        "settings",
        "help",
        "Chibify",
    ):
        assert sorted(synced[name]["integration_types"]) == [0, 1], name
        assert sorted(synced[name]["contexts"]) == [0, 1, 2], name
    assert synced["config"]["integration_types"] == [0] and synced["config"]["contexts"] == [0]

    dm = await emulator.slash(emulator.alice, "avatar", {"prompt": "green hair"}, dm=True)
    assert has_image(await result_message(dm))

    group = emulator.group_dm(emulator.alice)
    private = await emulator.slash(emulator.alice, "avatar", {"prompt": "twin buns"}, channel=group)
    assert private.payload["context"] == 2
    assert has_image(await result_message(private))
    # public results in a group DM the bot cannot post in: a follow-up, never a lost result
    await reply_text(await emulator.slash(emulator.alice, "settings", {"public": True}, dm=True))
    public = await emulator.slash(emulator.alice, "avatar", {"prompt": "bob cut"}, channel=group)
    result = await result_message(public)
    assert not result["flags"] & EPHEMERAL
    await reply_text(await emulator.slash(emulator.alice, "settings", {"public": False}, dm=True))


# --- age-restricted channels --------------------------------------------------------------------------------


async def test_policy_off_applies_only_in_age_restricted_channels(
    emulator: DiscordEmulator, bot: ChibifyBot
) -> None:
    guild = emulator.guild
    adult = await emulator.create_channel(guild, "after-dark", nsfw=True)
    await emulator.wait_until(lambda: bot.get_channel(adult.id), 5, "the new channel in the cache")
    await reply_text(await emulator.slash(emulator.alice, "config", {"policy": "off"}))
    try:
        refused = await emulator.slash(emulator.alice, "avatar", {"prompt": "sexy cat girl"})
        assert "sexual content" in await reply_text(refused)
        in_dm = await emulator.slash(emulator.alice, "avatar", {"prompt": "sexy cat girl"}, dm=True)
        assert "sexual content" in await reply_text(in_dm)
        allowed = await emulator.slash(emulator.alice, "avatar", {"prompt": "sexy cat girl"}, channel=adult)
        assert has_image(await result_message(allowed))
        config = await reply_text(await emulator.slash(emulator.alice, "config", {}))
        assert "age-restricted channels only" in config
    finally:
        await reply_text(await emulator.slash(emulator.alice, "config", {"policy": "standard"}))


# --- allowed channels and threads ---------------------------------------------------------------------------


async def test_allowed_channels_list_is_short_and_threads_follow_their_parent(
    emulator: DiscordEmulator, bot: ChibifyBot
) -> None:
    guild = emulator.guild
    art = guild.channels[1]
    many = [await emulator.create_channel(guild, f"room-{i}") for i in range(90)]
    await emulator.wait_until(lambda: all(bot.get_channel(c.id) for c in many), 5, "channels cached")
    try:
        for channel in [art, *many]:
            await reply_text(await emulator.slash(emulator.alice, "config", {"channel_add": channel}))
        text = await reply_text(await emulator.slash(emulator.alice, "config", {}))
        assert "and 81 more" in text and len(text) < 2000
        refused = await emulator.slash(emulator.bob, "avatar", {"prompt": "cat"})
        answer = await reply_text(refused)
        assert "not enabled in this channel" in answer and "and 81 more" in answer and len(answer) < 2000

        thread = await emulator.create_thread(art, "show-and-tell", owner=emulator.bob)
        await emulator.wait_until(lambda: bot.get_channel(thread.id), 5, "the thread in the cache")
        in_thread = await emulator.slash(emulator.bob, "avatar", {"prompt": "cat ears"}, channel=thread)
        assert has_image(await result_message(in_thread))
        outside = await emulator.create_thread(guild.default_channel, "off-topic", owner=emulator.bob)
        await emulator.wait_until(lambda: bot.get_channel(outside.id), 5, "the other thread")
        no = await emulator.slash(emulator.bob, "avatar", {"prompt": "cat ears"}, channel=outside)
        assert "not enabled in this channel" in await reply_text(no)
    finally:
        await reply_text(await emulator.slash(emulator.alice, "config", {"clear_channels": True}))


# --- words --------------------------------------------------------------------------------------------------


async def test_errors_speak_the_readers_language_without_console_hints(
    emulator: DiscordEmulator, bot: ChibifyBot
) -> None:
    dave = emulator.add_user("dave")
    none_yet = await reply_text(await emulator.slash(dave, "edit", {"add": "hat"}))
    assert none_yet.startswith("You have no avatars yet") and "/avatar" in none_yet
    assert "chibify avatar" not in none_yet
    await result_message(await emulator.slash(dave, "avatar", {"prompt": "brown hair"}))
    nothing = await reply_text(await emulator.slash(dave, "edit", {}))
    assert nothing.startswith("Nothing to change") and "--" not in nothing
    zh = await reply_text(await emulator.slash(dave, "edit", {}, locale="zh-CN"))
    assert zh.startswith("没有要修改的内容") and "--" not in zh
    missing = await reply_text(await emulator.slash(dave, "show", {"id": "nope"}, locale="zh-CN"))
    assert "你的历史中没有头像" in missing and "/历史" in missing
    tw = await reply_text(await emulator.slash(dave, "help", {}, locale="zh-TW"))
    assert "繁體中文" in tw and "萌版头像" in tw
    cn = await reply_text(await emulator.slash(dave, "help", {}, locale="zh-CN"))
    assert "繁體中文" not in cn


# --- interactions Discord no longer takes -------------------------------------------------------------------


@pytest.mark.parametrize("code", [10062, 40060])
async def test_dead_interactions_end_quietly(
    emulator: DiscordEmulator, bot: ChibifyBot, caplog: pytest.LogCaptureFixture, code: int
) -> None:
    """10062 (unknown interaction: too late, or gone) and 40060 (already acknowledged elsewhere): one log
    line, no traceback, and nothing more is sent with that token."""
    route = "/interactions/{interaction_id}/{interaction_token}/callback"
    status = 404 if code == 10062 else 400
    emulator.fail_next(route, method="POST", status=status, code=code)
    caplog.set_level("INFO", logger="bot.client")
    h = await emulator.slash(emulator.alice, "history", {})
    await emulator.wait_until(
        lambda: any("can no longer be answered" in r.getMessage() for r in caplog.records), 10, "the log line"
    )
    assert [r.route for r in h.requests] == [route]  # no retry, no error message sent after it
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING") and r.name.startswith("bot")]
    assert h.callback is None
    # the bot goes on answering everyone else
    assert "/avatar" in await reply_text(await emulator.slash(emulator.alice, "help", {}))
