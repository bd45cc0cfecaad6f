"""Cancel while queued or drawing, and photos sent by DM (answered at once, limited, their text the prompt,
another face on request), through the emulator with the real client and a real worker process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.client import ChibifyBot
from bot.studio import Actor
from tests.bot.conftest import custom_ids, has_image, reply_text, result_message
from tests.bot.test_e2e_reliability import jobs_of, wait_for, worker_paused
from tests.discord.emulator import DiscordEmulator
from tests.discord.models import InteractionHandle, User

pytestmark = pytest.mark.asyncio(loop_scope="module")

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "photos"


async def cancel_button(emulator: DiscordEmulator, handle: InteractionHandle) -> tuple[dict[str, Any], str]:
    """The progress message of ``handle`` once it shows a Cancel button, and that button's custom id."""

    def find() -> tuple[dict[str, Any], str] | None:
        for message in handle.messages:
            found = [c for c in custom_ids(message) if c.startswith("chibify:cancel:")]
            if found:
                return message, found[0]
        return None

    return await emulator.wait_until(find, 15, f"a Cancel button on {handle!r}")


def text_of(handle: InteractionHandle) -> str:
    return " ".join(str(m.get("content") or "") for m in handle.messages)


async def test_cancel_drops_queued_jobs_at_once_and_throws_a_running_one_away(
    emulator: DiscordEmulator, bot: ChibifyBot, app: App
) -> None:
    carol, dave = emulator.add_user("carol"), emulator.add_user("dave")
    with worker_paused(app):
        running = await emulator.slash(carol, "avatar", {"prompt": "drawing first"})
        running_msg, running_cancel = await cancel_button(emulator, running)
        assert "Drawing" in running_msg["content"]
        # a full batch more, so dave's request surely waits in the queue behind work taken by the worker
        filler = await emulator.slash(emulator.bob, "avatar", {"prompt": "filler", "count": 4})
        await cancel_button(emulator, filler)
        queued = await emulator.slash(dave, "avatar", {"prompt": "waits behind", "count": 2})
        queued_msg, queued_cancel = await cancel_button(emulator, queued)
        assert "In the queue: position" in queued_msg["content"]

        # someone else cannot press it (it is on an ephemeral message, but custom ids can be replayed)
        stranger = await emulator.click(carol, queued_msg["id"], queued_cancel)
        await stranger.followup(0)
        assert "someone else's" in emulator.messages[stranger.followup_ids[0]]["content"]

        click = await emulator.click(dave, queued_msg["id"], queued_cancel)
        assert (await click.response()).json["type"] == 6
        # queued jobs are dropped while the worker is still stopped
        await emulator.wait_until(lambda: "Cancelled" in text_of(queued), 15, "the queued request cancelled")
        assert not custom_ids(emulator.messages[int(queued_msg["id"])])  # no buttons left
        await wait_for(
            lambda: _all(app, dave.id, lambda j: str(j.status) == "cancelled" and j.delivered_at is not None),
            15,
            "dave's jobs cancelled and recorded delivered",
        )

        stop = await emulator.click(carol, running_msg["id"], running_cancel)
        await stop.response()
    # the running job finishes (or is stopped between steps) and is thrown away: carol is told, once
    await emulator.wait_until(lambda: "Cancelled" in text_of(running), 30, "the running request cancelled")
    assert not any(has_image(m) for m in running.messages)
    await wait_for(
        lambda: _all(app, carol.id, lambda j: str(j.status) == "cancelled" and j.delivered_at is not None),
        30,
        "carol's job cancelled and recorded delivered",
    )
    # nothing is left for the sweep to deliver later
    assert await bot.courier.sweep() == 0


async def test_cancel_pressed_after_a_restart_settles_the_recovered_jobs(
    emulator: DiscordEmulator, bot: ChibifyBot, app: App
) -> None:
    """The progress message outlives the process that posted it: after a restart its jobs are the ones the
    service recovered from SQL, and no live delivery follows them. Cancel says so on the message itself and
    records the jobs delivered, so the sweep never sends them."""
    from bot.delivery import new_group
    from generation.jobs import Delivery

    jo = emulator.add_user("jo")
    channel = emulator.guild.default_channel
    group = new_group()
    target = Delivery(
        group=group, user_id=jo.id, channel_id=channel.id, guild_id=emulator.guild.id, public=True
    )
    with worker_paused(app):
        blocker = await bot.studio.submit_create(
            Actor(discord_id=emulator.bob.id), "runs first", deliver=None
        )
        pending = await bot.studio.submit_create(
            Actor(discord_id=jo.id), "left queued", count=2, deliver=target
        )
        app.recovered.extend(pending.handles)  # what the restarted process found unfinished in SQL
        try:
            old = emulator.create_message(
                channel,
                {
                    "content": "In the queue: position 2.",
                    "components": [
                        {
                            "type": 1,
                            "components": [
                                {
                                    "type": 2,
                                    "style": 4,
                                    "label": "Cancel",
                                    "custom_id": f"chibify:cancel:{group}",
                                }
                            ],
                        }
                    ],
                },
                author=emulator.bot,
            )
            stranger = await emulator.click(emulator.bob, old["id"], f"chibify:cancel:{group}")
            await stranger.followup(0)
            assert pending.handles[0].position() is not None  # bob could not cancel jo's request
            click = await emulator.click(jo, old["id"], f"chibify:cancel:{group}")
            assert (await click.response()).json["type"] == 6
            await emulator.wait_until(
                lambda: emulator.messages[int(old["id"])]["content"].startswith("Cancelled"), 15, "Cancelled"
            )
            assert not custom_ids(emulator.messages[int(old["id"])])
            await wait_for(
                lambda: _all(
                    app, jo.id, lambda j: str(j.status) == "cancelled" and j.delivered_at is not None
                ),
                15,
                "jo's jobs cancelled and recorded delivered",
            )
        finally:
            for handle in pending.handles:
                app.recovered.remove(handle)
    await blocker.handles[0].result()
    assert await bot.courier.sweep() == 0


async def _all(app: App, discord_id: int, check: Any) -> bool:
    jobs = await jobs_of(app, discord_id)
    return bool(jobs) and all(check(j) for j in jobs)


# --- photos by DM -------------------------------------------------------------------------------------------


def dm_messages(emulator: DiscordEmulator, user: User) -> list[dict[str, Any]]:
    return [
        m
        for m in emulator.channel_messages(emulator.dm_channel(user))
        if m["author"]["id"] == str(emulator.bot.id)
    ]


async def test_dm_without_a_photo_gets_a_hint(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    erin = emulator.add_user("erin")
    await emulator.dm_message(erin, "hello?")
    reply = await emulator.wait_for_message(emulator.dm_channel(erin))
    assert "Send me a photo of a face" in reply["content"]


@pytest.mark.skipif(not (PHOTOS / "obama.jpg").exists(), reason="shared photos missing")
async def test_dm_photo_is_answered_at_once_with_its_text_as_the_prompt(
    emulator: DiscordEmulator, bot: ChibifyBot, app: App
) -> None:
    frank = emulator.add_user("frank")
    channel = emulator.dm_channel(frank)
    photo = (PHOTOS / "obama.jpg").read_bytes()
    with worker_paused(app):
        sent = await emulator.dm_message(frank, "add cat ears", [emulator.upload("me.jpg", photo)])
        typing = await emulator.wait_for_request("POST", "/channels/{channel_id}/typing")
        assert typing.params["channel_id"] == str(channel.id)
        working = await emulator.wait_for_message(
            channel, lambda m: "Working on it" in m["content"], within=15
        )
        assert "position" in working["content"] or "drawing now" in working["content"]
        assert any(c.startswith("chibify:cancel:") for c in custom_ids(working))
        assert not any(m["attachments"] for m in dm_messages(emulator, frank))  # nothing drawn yet
    result = await emulator.wait_for_message(channel, has_image, after=int(sent["id"]), within=60)
    assert "not kept" in result["content"] and "add cat ears" in result["content"]
    avatar_id = next(f["value"] for f in result["embeds"][0]["fields"] if f["name"] == "Avatar id").strip("`")
    avatar, _ = await bot.studio.show(Actor(discord_id=frank.id), avatar_id)
    assert avatar.prompt == "add cat ears" and "cat_ears" in avatar.spec["items"]
    await emulator.wait_until(
        lambda: int(working["id"]) not in emulator.messages, 10, "the progress message gone"
    )


@pytest.mark.skipif(not (PHOTOS / "obama.jpg").exists(), reason="shared photos missing")
async def test_dm_photos_in_flight_are_limited(emulator: DiscordEmulator, bot: ChibifyBot, app: App) -> None:
    gina = emulator.add_user("gina")
    channel = emulator.dm_channel(gina)
    photo = (PHOTOS / "obama.jpg").read_bytes()
    with worker_paused(app):
        for n in range(2):
            await emulator.dm_message(gina, "", [emulator.upload(f"me{n}.jpg", photo)])
        await emulator.wait_until(
            lambda: len([m for m in dm_messages(emulator, gina) if "Working on it" in m["content"]]) == 2,
            20,
            "two photos in the making",
        )
        await emulator.dm_message(gina, "", [emulator.upload("me2.jpg", photo)])
        refused = await emulator.wait_for_message(channel, lambda m: "already have 2 photos" in m["content"])
        assert not refused["attachments"]
        # the Cancel button of a DM's progress message works too
        working = next(m for m in dm_messages(emulator, gina) if "Working on it" in m["content"])
        cancel_id = next(c for c in custom_ids(working) if c.startswith("chibify:cancel:"))
        await (await emulator.click(gina, working["id"], cancel_id)).response()
        await emulator.wait_for_message(
            channel, lambda m: "Cancelled: nothing was made" in m["content"], within=15
        )
    results = await emulator.wait_until(
        lambda: len([m for m in dm_messages(emulator, gina) if has_image(m)]) == 1 or None, 60, "one result"
    )
    assert results
    await emulator.wait_until(
        lambda: not any(str(gina.id) in key for key in bot.studio.photos_in_flight),
        10,
        "gina's photos counted out",
    )


@pytest.mark.skipif(not (PHOTOS / "obama.jpg").exists(), reason="shared photos missing")
async def test_the_photo_limit_is_one_count_across_dm_and_slash_commands(
    emulator: DiscordEmulator, bot: ChibifyBot, app: App
) -> None:
    """The limit lives in the studio's gate: photos in the making by DM count against /chibify too, and
    the refused photo is never downloaded."""
    hana = emulator.add_user("hana")
    photo = (PHOTOS / "obama.jpg").read_bytes()
    with worker_paused(app):
        for n in range(2):
            await emulator.dm_message(hana, "", [emulator.upload(f"dm{n}.jpg", photo)])
        await emulator.wait_until(
            lambda: len([m for m in dm_messages(emulator, hana) if "Working on it" in m["content"]]) == 2,
            20,
            "two photos in the making",
        )
        third = await emulator.slash(hana, "chibify", {"photo": emulator.upload("third.jpg", photo)})
        assert "already have 2 photos" in await reply_text(third)
        assert not [r for r in emulator.requests if r.path.endswith("third.jpg")]
    await emulator.wait_until(
        lambda: len([m for m in dm_messages(emulator, hana) if has_image(m)]) == 2 or None, 60, "two results"
    )
    await emulator.wait_until(
        lambda: not any(str(hana.id) in key for key in bot.studio.photos_in_flight), 10, "counted out"
    )
    again = await emulator.slash(hana, "chibify", {"photo": emulator.upload("again.jpg", photo)})
    await result_message(again, within=60)


@pytest.mark.skipif(not (PHOTOS / "two_people.jpg").exists(), reason="shared photos missing")
async def test_two_faces_say_which_was_drawn_and_offer_the_other(
    emulator: DiscordEmulator, bot: ChibifyBot
) -> None:
    hana = emulator.add_user("hana")
    channel = emulator.dm_channel(hana)
    photo = (PHOTOS / "two_people.jpg").read_bytes()
    sent = await emulator.dm_message(hana, "", [emulator.upload("us.jpg", photo)])
    first = await emulator.wait_for_message(channel, has_image, after=int(sent["id"]), within=90)
    notes = str(first["embeds"])
    assert "I found 2 faces and drew face" in notes
    select_id = next(c for c in custom_ids(first) if c.startswith("chibify:face:"))
    assert select_id == f"chibify:face:{channel.id}:{sent['id']}:2"
    used = 1 if "drew face 1" in notes else 2
    other = 3 - used
    pick = await emulator.select(hana, first["id"], select_id, [str(other)])
    second = await emulator.wait_for_message(channel, has_image, after=int(first["id"]), within=90)
    assert f"drew face {other}" in str(second["embeds"])
    first_id = next(f["value"] for f in first["embeds"][0]["fields"] if f["name"] == "Avatar id")
    second_id = next(f["value"] for f in second["embeds"][0]["fields"] if f["name"] == "Avatar id")
    assert first_id != second_id
    pointer = await pick.original()
    assert second["id"] in pointer["content"]


@pytest.mark.skipif(not (PHOTOS / "two_people.jpg").exists(), reason="shared photos missing")
async def test_another_face_needs_the_photo_still_there(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    ivy = emulator.add_user("ivy")
    channel = emulator.dm_channel(ivy)
    sent = await emulator.dm_message(
        ivy, "", [emulator.upload("us.jpg", (PHOTOS / "two_people.jpg").read_bytes())]
    )
    first = await emulator.wait_for_message(channel, has_image, after=int(sent["id"]), within=90)
    select_id = next(c for c in custom_ids(first) if c.startswith("chibify:face:"))
    emulator.delete_message(int(sent["id"]))  # the user deleted their photo
    pick = await emulator.select(ivy, first["id"], select_id, ["1"])
    gone = await pick.original(within=15)
    assert "no longer in this chat" in gone["content"]
    assert len([m for m in dm_messages(emulator, ivy) if has_image(m)]) == 1


@pytest.mark.skipif(not (PHOTOS / "two_people.jpg").exists(), reason="shared photos missing")
async def test_message_menu_offers_the_other_face_too(emulator: DiscordEmulator, bot: ChibifyBot) -> None:
    channel = emulator.guild.default_channel
    posted = await emulator.post_message(
        emulator.alice, channel, "us", [emulator.upload("us.jpg", (PHOTOS / "two_people.jpg").read_bytes())]
    )
    menu = await emulator.message_context(emulator.alice, "Chibify", posted)
    first = await result_message(menu, within=90)
    select_id = next(c for c in custom_ids(first) if c.startswith("chibify:face:"))
    assert select_id == f"chibify:face:{channel.id}:{posted['id']}:2"
    other = "1" if "drew face 2" in str(first["embeds"]) else "2"
    pick = await emulator.select(emulator.alice, first["id"], select_id, [other])
    second = await result_message(pick, within=90)
    assert f"drew face {other}" in str(second["embeds"])
    # someone else's photo cannot be drawn from through a replayed select
    steal = await emulator.select(emulator.bob, first["id"], select_id, ["1"])
    assert "belongs to someone else" in await reply_text(steal)
