"""Defer first, everywhere: every command, button, select, modal and autocomplete is answered within
Discord's 3 seconds even when every database statement takes a second longer.

The emulator refuses a callback after ``callback_deadline`` (3 s, Discord's rule) and fails the test at
teardown. The database is SQLite with one pooled connection, so with each statement slowed by 1 s a handler
that read anything before acknowledging would wait behind all the others and be late.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.app import App
from bot.client import ChibifyBot
from tests.bot.conftest import custom_ids, has_image, result_message
from tests.bot.slowdb import slow_database
from tests.bot.test_e2e_reliability import worker_paused
from tests.discord.emulator import DiscordEmulator
from tests.discord.models import LOADING, InteractionHandle

pytestmark = pytest.mark.asyncio(loop_scope="module")

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "photos"


def avatar_ids(message: dict[str, Any]) -> list[str]:
    import re

    field = next(f for f in message["embeds"][0]["fields"] if f["name"] in ("Avatar id", "Avatar ids"))
    return [part.split(": ")[-1] for part in re.findall(r"`([^`]+)`", field["value"])]


def photo_bytes() -> bytes:
    if (PHOTOS / "obama.jpg").exists():
        return (PHOTOS / "obama.jpg").read_bytes()
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 180, 160)).save(out, "PNG")
    return out.getvalue()


async def test_every_interaction_is_acknowledged_in_time_on_a_slow_database(
    emulator: DiscordEmulator, bot: ChibifyBot, app: App
) -> None:
    assert emulator.callback_deadline == 3.0
    alice, bob = emulator.alice, emulator.bob
    erin, frank = emulator.add_user("erin"), emulator.add_user("frank")

    # --- at full speed: messages with every kind of control --------------------------------------------
    single = await result_message(await emulator.slash(alice, "avatar", {"prompt": "short hair, witch hat"}))
    (single_id,) = avatar_ids(single)
    grid = await result_message(await emulator.slash(alice, "avatar", {"prompt": "cat ears", "count": 4}))
    grid_ids = avatar_ids(grid)
    await result_message(await emulator.slash(alice, "avatar", {"prompt": "bob cut", "count": 4}))
    doomed = avatar_ids(await result_message(await emulator.slash(alice, "avatar", {"prompt": "to delete"})))[
        0
    ]
    spare = await result_message(await emulator.slash(alice, "avatar", {"prompt": "to delete by button"}))
    (spare_id,) = avatar_ids(spare)
    history = await result_message(await emulator.slash(alice, "history", {}))
    assert "page 1 of 2" in history["embeds"][0]["title"]
    forget_yes = await (await emulator.slash(erin, "forget", {})).original()
    forget_no = await (await emulator.slash(frank, "forget", {})).original()
    upload = emulator.upload("me.jpg", photo_bytes())
    posted = await emulator.post_message(alice, emulator.guild.default_channel, "me", [upload])
    face_message: dict[str, Any] | None = None
    if (PHOTOS / "two_people.jpg").exists():
        sent = await emulator.dm_message(
            bob, "", [emulator.upload("us.jpg", (PHOTOS / "two_people.jpg").read_bytes())]
        )
        face_message = await emulator.wait_for_message(
            emulator.dm_channel(bob), has_image, after=int(sent["id"]), within=90
        )
    warm = await emulator.autocomplete(alice, "show", "id", "")  # fills alice's autocomplete cache
    assert (await warm.choices())[1]["value"] == doomed

    acknowledged: list[InteractionHandle] = []
    commands: set[str] = set()
    controls: set[str] = set()

    async def answered(handle: InteractionHandle) -> InteractionHandle:
        await handle.response(within=emulator.callback_deadline + 0.5)
        acknowledged.append(handle)
        return handle

    async def command(user: Any, name: str, options: dict[str, Any] | None = None, **where: Any) -> None:
        commands.add(name.split()[0])
        await answered(await emulator.slash(user, name, options or {}, **where))

    async def click(user: Any, message: dict[str, Any], custom_id: str) -> InteractionHandle:
        controls.add(custom_id.split(":")[1].rstrip("1234"))
        return await answered(await emulator.click(user, message["id"], custom_id))

    async def select(user: Any, message: dict[str, Any], custom_id: str, values: list[str]) -> None:
        controls.add(custom_id.split(":")[1])
        await answered(await emulator.select(user, message["id"], custom_id, values))

    with worker_paused(app):
        progress = await emulator.slash(bob, "avatar", {"prompt": "waiting to be cancelled"})
        cancel_id = await emulator.wait_until(
            lambda: next((c for m in progress.messages for c in custom_ids(m) if "cancel" in c), None),
            15,
            "a Cancel button",
        )
        progress_message = progress.messages[0]

        bot.forget_preferences(alice.id)  # no help from the settings cache: every read is a slow one
        bot.forget_preferences(bob.id)
        with slow_database(app.storage, 1.0) as slow:
            # every command
            await command(alice, "avatar", {"prompt": "slow day"})
            await command(alice, "edit", {"avatar": single_id, "add": "crown"})
            await command(alice, "chibify", {"photo": emulator.upload("me.jpg", photo_bytes())})
            commands.add("Chibify")
            await answered(await emulator.message_context(alice, "Chibify", posted))
            await command(alice, "history")
            await command(alice, "show", {"id": single_id})
            await command(alice, "delete", {"id": doomed})
            await command(bob, "forget")
            await command(alice, "queue")
            await command(bob, "settings", {"language": "zh"})
            await command(alice, "config", {"queue_limit": 8})
            await command(alice, "help")
            # every button, select and modal
            await click(alice, single, f"chibify:reroll:{single_id}")
            await click(alice, single, f"chibify:vary:{single_id}")
            await click(alice, single, f"chibify:fav:{single_id}")
            edit = await click(alice, single, f"chibify:edit:{single_id}")
            controls.add("editmodal")
            await answered(await emulator.modal_submit(alice, edit, {"change": "add a crown"}))
            await select(alice, single, f"chibify:export:{single_id}", ["png:256"])
            await click(alice, grid, f"chibify:pick2:{grid_ids[1]}")
            await click(alice, grid, f"chibify:vary:{grid_ids[2]}")
            await click(alice, grid, f"chibify:reroll:{grid_ids[3]}")
            await click(alice, grid, f"chibify:again4:{grid_ids[0]}")
            await select(alice, grid, f"chibify:export:{'.'.join(grid_ids)}", ["svg:0"])
            await click(
                alice, history, next(c for c in custom_ids(history) if c.startswith("chibify:hist:2:"))
            )
            open_id = next(c for c in custom_ids(history) if c.startswith("chibify:open:"))
            first = history["components"][-1]["components"][0]["options"][0]["value"]
            await select(alice, history, open_id, [first])
            await click(erin, forget_yes, "chibify:forget:yes")
            await click(frank, forget_no, "chibify:forget:no")
            await click(bob, progress_message, cancel_id)
            if face_message is not None:
                face_id = next(c for c in custom_ids(face_message) if c.startswith("chibify:face:"))
                await select(bob, face_message, face_id, ["1"])
            await click(alice, spare, f"chibify:del:{spare_id}")
            # autocomplete cannot be deferred: answered from the cache within the budget
            hot = await answered(await emulator.autocomplete(alice, "delete", "id", ""))
            assert hot.choices_sent and hot.choices_sent[1]["value"] == doomed
            for focused in ("avatar", "remove", "add", "expression"):
                await answered(await emulator.autocomplete(bob, "edit", focused, ""))
            cold = await answered(await emulator.autocomplete(bob, "show", "id", ""))
            assert cold.choices_sent is not None  # maybe empty: the database was too slow to wait for
            assert slow.statements > 0
            slow.seconds = 0  # let the backlog finish at full speed

    synced = {c["name"] for c in emulator.commands[None].values()}
    assert synced <= commands, f"commands not exercised: {synced - commands}"
    expected = {
        "reroll",
        "vary",
        "edit",
        "editmodal",
        "fav",
        "del",
        "pick",
        "again",
        "export",
        "hist",
        "open",
    }
    expected |= {"forget", "cancel"} | ({"face"} if face_message is not None else set())
    assert expected <= controls, f"controls not exercised: {expected - controls}"
    assert not emulator.late_callbacks

    # and every "thinking…" response is finished in the end: a result, a reply or an error, no progress
    def finished(handle: InteractionHandle) -> bool:
        message = emulator.messages.get(handle.original_message_id or 0)
        if message is None or message["flags"] & LOADING:
            return False
        busy = ("In the queue", "Drawing", "Posting", "排队中", "正在")
        return not str(message["content"]).startswith(busy) and not any(
            c.startswith("chibify:cancel:") for c in custom_ids(message)
        )

    for handle in [progress, *acknowledged]:
        if handle.callback_type == 5:
            await emulator.wait_until(lambda h=handle: finished(h), 90, f"{handle!r} finished")
