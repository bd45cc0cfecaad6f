"""Every command and button path through the emulator with the real client and a real worker process."""

from __future__ import annotations

import asyncio
import io
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from bot.client import ChibifyBot
from tests.bot.conftest import BotFactory, custom_ids, has_image, reply_text, result_file, result_message
from tests.discord.emulator import DiscordEmulator
from tests.discord.models import EPHEMERAL

pytestmark = pytest.mark.asyncio(loop_scope="module")

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "photos"


def avatar_id_of(message: dict) -> str:
    field = next(f for f in message["embeds"][0]["fields"] if f["name"] in ("Avatar id", "头像编号"))
    return field["value"].strip("`")


async def make_avatar(
    emulator: DiscordEmulator, user, prompt: str = "short black hair, smile"
) -> tuple[str, dict]:
    h = await emulator.slash(user, "avatar", {"prompt": prompt})
    message = await result_message(h)
    return avatar_id_of(message), message


def png_header(width: int, height: int, body: bytes = b"\x00") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(body))
        + chunk(b"IEND", b"")
    )


async def test_grid_of_four_then_pick(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    h = await emulator.slash(
        emulator.alice, "avatar", {"prompt": "cat girl, pink hair", "count": 4, "seed": 7}
    )
    message = await result_message(h)
    ids = custom_ids(message)
    picks = [c for c in ids if c.startswith("chibify:pick")]
    assert len(picks) == 4 and any(c.startswith("chibify:reroll:") for c in ids)
    seeds = next(f["value"] for f in message["embeds"][0]["fields"] if f["name"] == "Seed")
    assert seeds == "7, 8, 9, 10"
    click = await emulator.click(emulator.alice, message["id"], picks[2])
    picked = await result_message(click)
    assert picked["embeds"][0]["fields"][0]["value"].strip("`") == picks[2].split(":", 2)[2]


async def test_buttons_reroll_vary_fav_stickers_delete(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    avatar_id, message = await make_avatar(emulator, emulator.alice)
    reroll = await emulator.click(emulator.alice, message["id"], f"chibify:reroll:{avatar_id}")
    assert avatar_id_of(await result_message(reroll)) != avatar_id
    vary = await emulator.click(emulator.alice, message["id"], f"chibify:vary:{avatar_id}")
    varied = await result_message(vary)
    assert len([c for c in custom_ids(varied) if c.startswith("chibify:pick")]) == 4
    fav = await emulator.click(emulator.alice, message["id"], f"chibify:fav:{avatar_id}")
    assert "now a favourite" in await reply_text(fav)
    stickers = await emulator.select(
        emulator.alice, message["id"], f"chibify:export:{avatar_id}", ["stickers:0"]
    )
    sent = await result_file(stickers)
    data = emulator.attachment_bytes(sent["attachments"][0])
    assert zipfile.ZipFile(io.BytesIO(data)).namelist()
    delete = await emulator.click(emulator.alice, message["id"], f"chibify:del:{avatar_id}")
    assert "Deleted" in await reply_text(delete)
    show = await emulator.slash(emulator.alice, "show", {"id": avatar_id})
    assert "no avatar" in (await reply_text(show)).lower()


async def test_edit_button_opens_modal_and_makes_a_child(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    avatar_id, message = await make_avatar(emulator, emulator.alice)
    click = await emulator.click(emulator.alice, message["id"], f"chibify:edit:{avatar_id}")
    modal = await click.modal()
    assert modal["custom_id"] == f"chibify:editmodal:{avatar_id}"
    submit = await emulator.modal_submit(emulator.alice, click, {"change": "add a crown"})
    child = await result_message(submit)
    child_id = avatar_id_of(child)
    assert child_id != avatar_id
    assert any(f["name"] == "Changed" for f in child["embeds"][0]["fields"])


async def test_edit_command_with_autocomplete(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    avatar_id, _ = await make_avatar(emulator, emulator.bob, "blue hair, glasses")
    choices = await (await emulator.autocomplete(emulator.bob, "edit", "avatar", "")).choices()
    assert choices[0]["value"] == avatar_id
    items = await (await emulator.autocomplete(emulator.bob, "edit", "add", "ha")).choices()
    assert any(c["value"] == "hat" or "hat" in c["name"].lower() for c in items)
    zh_items = await (await emulator.autocomplete(emulator.bob, "edit", "add", "", locale="zh-CN")).choices()
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in c["name"]) for c in zh_items)
    expr = await (await emulator.autocomplete(emulator.bob, "edit", "expression", "wi")).choices()
    assert expr
    h = await emulator.slash(emulator.bob, "edit", {"add": items[0]["value"], "expression": expr[0]["value"]})
    child = await result_message(h)
    assert avatar_id_of(child) != avatar_id
    nothing = await emulator.slash(emulator.bob, "edit", {})
    assert "Nothing to change" in await reply_text(nothing)


async def test_history_pages_and_open(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    carol = emulator.add_user("carol")
    for i in range(2):
        h = await emulator.slash(
            carol, "avatar", {"prompt": "red hair, smile", "count": 4, "seed": 100 + i * 4}
        )
        await result_message(h)
    await result_message(await emulator.slash(carol, "avatar", {"prompt": "green hair", "count": 2}))
    h = await emulator.slash(carol, "history", {})
    page1 = await result_message(h)
    assert page1["flags"] & EPHEMERAL
    assert "page 1 of 2" in page1["embeds"][0]["title"]
    next_id = next(c for c in custom_ids(page1) if c.startswith("chibify:hist:2:"))
    nxt = await emulator.click(carol, page1["id"], next_id)
    assert (await nxt.response()).json["type"] == 6  # acknowledged at once; the page changes after
    page2 = await emulator.wait_until(
        lambda: (
            "page 2 of 2" in emulator.messages[int(page1["id"])]["embeds"][0]["title"]
            and emulator.messages[int(page1["id"])]
        ),
        15,
        "page 2",
    )
    select_id = next(c for c in custom_ids(page2) if c.startswith("chibify:open:"))
    option = next(
        o["value"] for c in page2["components"] for o in (c.get("components") or [{}])[0].get("options", [])
    )
    opened = await emulator.select(carol, page2["id"], select_id, [option])
    shown = await result_message(opened)
    assert f"chibify:edit:{option}" in custom_ids(shown) and shown["flags"] & EPHEMERAL


async def test_show_delete_forget_with_confirmation(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    dave = emulator.add_user("dave")
    avatar_id, _ = await make_avatar(emulator, dave)
    shown = await result_message(await emulator.slash(dave, "show", {"id": avatar_id}))
    assert avatar_id in json.dumps(shown["embeds"])
    second, _ = await make_avatar(emulator, dave)
    assert "Deleted" in await reply_text(await emulator.slash(dave, "delete", {"id": second}))
    ask = await emulator.slash(dave, "forget", {})
    message = await ask.original()
    assert custom_ids(message) == ["chibify:forget:yes", "chibify:forget:no"]
    yes = await emulator.click(dave, message["id"], "chibify:forget:yes")
    await yes.response()
    report = await emulator.wait_until(
        lambda: "avatars" in (emulator.messages[int(message["id"])]["content"] or "") or None,
        15,
        "the forget report",
    )
    assert report
    assert "no avatars" in (await reply_text(await emulator.slash(dave, "show", {"id": avatar_id}))).lower()


async def test_queue_settings_config_help(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    assert "nothing in the queue" in await reply_text(await emulator.slash(emulator.bob, "queue", {}))
    assert "/avatar" in await reply_text(await emulator.slash(emulator.bob, "help", {}))
    text = await reply_text(
        await emulator.slash(emulator.bob, "settings", {"language": "zh", "public": True})
    )
    assert "语言" in text
    public = await emulator.slash(emulator.bob, "avatar", {"prompt": "cat ears"})
    channel = emulator.guild.default_channel
    result = await emulator.wait_for_message(
        channel, lambda m: has_image(m) and f"<@{emulator.bob.id}>" in m["content"], within=30
    )
    assert not result["flags"] & EPHEMERAL
    pointer = await public.original()  # the thinking message now points to the public post
    assert result["id"] in pointer["content"]
    await reply_text(await emulator.slash(emulator.bob, "settings", {"language": "en", "public": False}))
    art = emulator.guild.channels[1]
    not_admin = await emulator.slash(emulator.bob, "config", {"queue_limit": 3})
    # the emulator gives everyone every permission, so bob counts as an admin here
    assert "Queue limit per member: 3" in await reply_text(not_admin)
    cfg = await emulator.slash(emulator.alice, "config", {"channel_add": art})
    assert f"<#{art.id}>" in await reply_text(cfg)
    refused = await emulator.slash(emulator.alice, "avatar", {"prompt": "cat"})
    assert "not enabled in this channel" in await reply_text(refused)
    await result_message(await emulator.slash(emulator.alice, "avatar", {"prompt": "cat"}, channel=art))
    await reply_text(
        await emulator.slash(emulator.alice, "config", {"clear_channels": True, "queue_limit": 8})
    )
    # A daily limit counts what the member already made in this guild today (bob made one above).
    await reply_text(await emulator.slash(emulator.alice, "config", {"daily_limit": 1}))
    over = await emulator.slash(emulator.bob, "avatar", {"prompt": "cat"})
    assert "daily limit" in await reply_text(over)
    await reply_text(await emulator.slash(emulator.alice, "config", {"daily_limit": 1000}))
    await result_message(await emulator.slash(emulator.bob, "avatar", {"prompt": "cat"}))


async def test_zh_cn_names_synced_and_reply_in_chinese(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    synced = emulator.commands[None]
    avatar = next(c for c in synced.values() if c["name"] == "avatar")
    assert avatar["name_localizations"]["zh-CN"] == "头像"
    assert avatar["description_localizations"]["zh-CN"] == "根据描述生成萌版头像"
    h = await emulator.slash(
        emulator.alice, "avatar", {"prompt": "粉色双马尾猫耳少女，戴眼镜"}, locale="zh-CN"
    )
    message = await result_message(h)
    names = [f["name"] for f in message["embeds"][0]["fields"]]
    assert "已理解" in names and "头像编号" in names
    help_text = await reply_text(await emulator.slash(emulator.alice, "help", {}, locale="zh-CN"))
    assert "萌版头像" in help_text


async def test_someone_elses_avatar_is_refused_politely(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    avatar_id, message = await make_avatar(emulator, emulator.alice)
    for action in ("del", "reroll", "edit"):
        h = await emulator.click(emulator.bob, message["id"], f"chibify:{action}:{avatar_id}")
        assert "belongs to someone else" in await reply_text(h)
    show = await emulator.slash(emulator.bob, "show", {"id": avatar_id})
    assert "no avatar" in (await reply_text(show)).lower()
    still = await emulator.slash(emulator.alice, "show", {"id": avatar_id})
    await result_message(still)


async def test_bad_photos_get_clear_errors(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    cases = [
        (emulator.upload("notes.txt", b"hello", "text/plain"), "not a photo"),
        (
            emulator.upload("huge.png", b"\x89PNG" + b"\x00" * (10 * 1024 * 1024 + 1), "image/png"),
            "limit is 10 MB",
        ),
        (
            emulator.upload("broken.png", b"\x89PNG\r\n\x1a\nthis is not really a png", "image/png"),
            "not a picture",
        ),
        (emulator.upload("bomb.png", png_header(40_000, 40_000), "image/png"), "too large"),
    ]
    for attachment, expected in cases:
        h = await emulator.slash(emulator.alice, "chibify", {"photo": attachment})
        text = await reply_text(h)
        assert expected in text, text
        message = (h.callback.json or {}).get("data") or h.messages[0]
        assert message["flags"] & EPHEMERAL
    huge_downloads = [r for r in emulator.requests if r.path.endswith("huge.png")]
    assert not huge_downloads  # refused before downloading


@pytest.mark.skipif(not (PHOTOS / "obama.jpg").exists(), reason="shared photos missing")
async def test_selfie_slash_context_menu_and_dm(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    photo = (PHOTOS / "obama.jpg").read_bytes()
    h = await emulator.slash(emulator.alice, "chibify", {"photo": emulator.upload("me.jpg", photo)})
    message = await result_message(h, within=60)
    assert "not kept" in json.dumps(message["embeds"])
    # what the analysis read, in words, from the stored spec
    assert re.search(r"From your photo: [a-z].*hair", json.dumps(message["embeds"])), message["embeds"]
    posted = await emulator.post_message(
        emulator.alice, emulator.guild.default_channel, "me", [emulator.upload("me.jpg", photo)]
    )
    menu = await emulator.message_context(emulator.alice, "Chibify", posted)
    await result_message(menu, within=60)
    await emulator.dm_message(emulator.bob, "", [emulator.upload("me.jpg", photo)])
    dm = await emulator.wait_for_message(
        emulator.dm_channel(emulator.bob), lambda m: bool(m["attachments"]), within=60
    )
    assert "not kept" in dm["content"]


async def test_expired_token_result_goes_to_channel_or_dm(
    emulator: DiscordEmulator, make_bot: BotFactory
) -> None:
    async with emulator.running(make_bot(progress_first_s=0.0)) as slow:
        slow.progress_first_s = 0.0
        # private result: DM
        h = await emulator.slash(emulator.alice, "avatar", {"prompt": "silver hair, crown"})
        await h.response()
        h.expire()
        dm = await emulator.wait_for_message(
            emulator.dm_channel(emulator.alice), lambda m: bool(m["attachments"]), within=30
        )
        assert f"<@{emulator.alice.id}>" in dm["content"] and "expired" in dm["content"]
        # public result: the channel, with a mention
        await reply_text(await emulator.slash(emulator.bob, "settings", {"public": True}))
        h = await emulator.slash(emulator.bob, "avatar", {"prompt": "orange hair"})
        await h.response()
        h.expire()
        post = await emulator.wait_for_message(
            emulator.guild.default_channel,
            lambda m: bool(m["attachments"]) and f"<@{emulator.bob.id}>" in m["content"],
            within=30,
        )
        assert custom_ids(post)
        await reply_text(await emulator.slash(emulator.bob, "settings", {"public": False}))


async def test_429_and_reconnect_during_a_job(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    emulator.fail_next("/webhooks/{webhook_id}/{webhook_token}/messages/@original", method="PATCH", times=2)
    h = await emulator.slash(emulator.alice, "avatar", {"prompt": "twin buns, panda hat", "count": 2})
    await h.response()
    await emulator.gateway.send_reconnect()
    await emulator.gateway.wait_for("resumed")
    await result_message(h)
    assert any(r.status == 429 for r in emulator.requests)
    after = await emulator.slash(emulator.alice, "avatar", {"prompt": "cat ears"})
    await result_message(after)


async def test_button_works_after_restart(emulator: DiscordEmulator, make_bot: BotFactory) -> None:
    async with emulator.running(make_bot()) as first:
        avatar_id, message = await make_avatar(emulator, emulator.alice)
        syncs = emulator.command_syncs
        del first
    async with emulator.running(make_bot()):
        assert emulator.command_syncs == syncs  # definitions unchanged: no re-sync
        click = await emulator.click(emulator.alice, message["id"], f"chibify:reroll:{avatar_id}")
        assert avatar_id_of(await result_message(click)) != avatar_id


async def test_twenty_users_at_once_each_get_their_own(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    users = [emulator.add_user(f"user{i}") for i in range(20)]
    handles = await asyncio.gather(
        *(emulator.slash(u, "avatar", {"prompt": f"hair number {i}, smile"}) for i, u in enumerate(users))
    )
    messages = await asyncio.gather(*(result_message(h, within=90) for h in handles))
    ids = [avatar_id_of(m) for m in messages]
    assert len(set(ids)) == 20
    for user, avatar_id in zip(users, ids, strict=True):
        shown = await emulator.slash(user, "show", {"id": avatar_id})
        await result_message(shown)
