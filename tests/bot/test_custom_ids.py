"""Buttons and selects on messages posted long ago keep working: every custom_id format the bot has ever
written still parses into the same control, and the controls write those formats byte for byte.

The ids here are literals on purpose: a change to a template or to how a custom_id is built fails here,
not on users' old messages."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from bot.views.library import ForgetButton, HistoryNav, HistoryOpen, forget_view
from bot.views.results import AvatarButton, CancelButton, ExportSelect, FaceSelect, progress_view

# The classes bot/client.py registers with add_dynamic_items.
DYNAMIC: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    AvatarButton,
    CancelButton,
    ExportSelect,
    FaceSelect,
    HistoryNav,
    HistoryOpen,
    ForgetButton,
)

AVATAR = "Xk3_9-aZq0LmN2pR"  # a public id as storage makes them (16 URL-safe characters)
OTHER = "b7-Qw_E1r2T3y4U5"

OLD_IDS: list[tuple[str, type[discord.ui.DynamicItem[Any]], dict[str, Any]]] = [
    *(
        (f"chibify:{action}:{AVATAR}", AvatarButton, {"action": action, "avatar_id": AVATAR})
        for action in (
            "reroll", "vary", "edit", "fav", "del", "stickers",
            "pick1", "pick2", "pick3", "pick4", "again2", "again3", "again4",
        )
    ),
    ("chibify:cancel:0123456789abcdef0123", CancelButton, {"group": "0123456789abcdef0123"}),
    ("chibify:cancel:deadbeef", CancelButton, {"group": "deadbeef"}),
    ("chibify:hist:2:1718000000", HistoryNav, {"page": 2, "snapshot": 1718000000}),
    ("chibify:hist:0:0", HistoryNav, {"page": 0, "snapshot": 0}),
    ("chibify:forget:yes", ForgetButton, {"answer": "yes"}),
    ("chibify:forget:no", ForgetButton, {"answer": "no"}),
    ("chibify:open:3", HistoryOpen, {"page": 3}),
    (f"chibify:export:{AVATAR}", ExportSelect, {"ids": [AVATAR]}),
    (f"chibify:export:{AVATAR}.{OTHER}.{AVATAR}", ExportSelect, {"ids": [AVATAR, OTHER, AVATAR]}),
    (
        "chibify:face:1234567890123:9876543210987:3",
        FaceSelect,
        {"channel_id": 1234567890123, "message_id": 9876543210987, "count": 3},
    ),
]  # fmt: skip

NOT_OURS = [
    f"chibify:pick5:{AVATAR}",
    f"chibify:again1:{AVATAR}",
    f"chibify:delete:{AVATAR}",
    "chibify:forget:maybe",
    "chibify:cancel:NOTHEX00",
    "chibify:hist:two:1",
    f"chibify:editmodal:{AVATAR}",  # the modal is answered by handle_edit_modal, not a DynamicItem
    f"chibify:reroll:{AVATAR}:extra",
]


def matching(custom_id: str) -> list[type[discord.ui.DynamicItem[Any]]]:
    """The registered classes whose template matches, as discord.py's dispatch does (fullmatch)."""
    return [cls for cls in DYNAMIC if cls.__discord_ui_compiled_template__.fullmatch(custom_id)]


@pytest.mark.parametrize(("custom_id", "cls", "state"), OLD_IDS, ids=[c for c, _, _ in OLD_IDS])
async def test_old_custom_ids_still_parse(
    custom_id: str, cls: type[discord.ui.DynamicItem[Any]], state: dict[str, Any]
) -> None:
    assert matching(custom_id) == [cls]
    match = cls.__discord_ui_compiled_template__.fullmatch(custom_id)
    assert match is not None
    item = await cls.from_custom_id(None, None, match)  # type: ignore[arg-type]  # neither is read
    assert item.custom_id == custom_id  # rebuilt byte for byte
    for name, value in state.items():
        assert getattr(item, name) == value


@pytest.mark.parametrize("custom_id", NOT_OURS)
def test_foreign_custom_ids_match_nothing(custom_id: str) -> None:
    assert matching(custom_id) == []


def test_buttons_write_the_same_ids_and_faces() -> None:
    assert AvatarButton("del", AVATAR, language="zh").custom_id == f"chibify:del:{AVATAR}"
    assert CancelButton("deadbeef").custom_id == "chibify:cancel:deadbeef"
    assert HistoryNav(4, 17).custom_id == "chibify:hist:4:17"
    buttons = [
        child.item
        for view in (forget_view("en"), progress_view("deadbeef", "zh"))
        for child in view.children
        if isinstance(child, discord.ui.DynamicItem)
    ]
    faces = {b.custom_id: (b.label, b.style, str(b.emoji) if b.emoji else None) for b in buttons}
    assert faces == {
        "chibify:forget:yes": ("Delete everything", discord.ButtonStyle.danger, None),
        "chibify:forget:no": ("Keep", discord.ButtonStyle.secondary, None),
        "chibify:cancel:deadbeef": ("取消", discord.ButtonStyle.danger, "✖️"),
    }
    pick = AvatarButton("pick3", AVATAR).item
    assert (pick.label, pick.style, str(pick.emoji)) == ("3", discord.ButtonStyle.secondary, "🔍")
    delete = AvatarButton("del", AVATAR).item
    assert (delete.label, delete.style, str(delete.emoji)) == ("Delete", discord.ButtonStyle.danger, "🗑️")
    with pytest.raises(TypeError):
        CancelButton()  # the id fields are required
