"""History gallery (3x3 thumbnails, prev/next, a select to open one) and the /forget confirmation.

Custom ids (all DynamicItems, state in the id and in SQL):
``chibify:hist:<page>:<snapshot>`` prev/next, ``chibify:open:<page>`` the select (values: avatar ids),
``chibify:forget:yes|no`` the confirmation.

Every handler acknowledges first (the page turn and the confirmation change their own message later),
then reads the database and renders.
"""

from __future__ import annotations

import asyncio
import io
import re
from typing import TYPE_CHECKING, Any

import discord

from bot.i18n import t
from bot.render import EMBED_COLOUR, avatar_embed, thumbnails
from bot.views.persistent import NUMBER, Look, PersistentButton, bot_of, guarded, refused_to_others
from bot.views.results import ACTIONS, result_view

if TYPE_CHECKING:
    from bot.client import Who

OPENED_ACTIONS = ACTIONS  # an opened avatar has the same controls as a fresh result


async def history_message(
    interaction: discord.Interaction, who: Who, page: int, snapshot: int | None = None
) -> tuple[discord.Embed, discord.File | None, discord.ui.View | None]:
    bot = bot_of(interaction)
    view = await bot.studio.history(who.actor, page=page, snapshot=snapshot)
    if not view.total:
        return discord.Embed(colour=EMBED_COLOUR, description=t("history_empty", who.language)), None, None
    images = [await bot.studio.image_bytes(a) for a in view.items]  # owner checked by history()
    sheet = await asyncio.to_thread(thumbnails, images)
    name = f"history-{view.page}.png"
    embed = discord.Embed(
        colour=EMBED_COLOUR,
        title=t("history_title", who.language, page=view.page, pages=view.pages, total=view.total),
        description="\n".join(
            f"**{i + 1}.** `{a.id}` {'★ ' if a.favourite else ''}{(a.prompt or a.kind)[:60]}"
            for i, a in enumerate(view.items)
        ),
    )
    embed.set_image(url=f"attachment://{name}")
    nav = discord.ui.View(timeout=None)
    prev_page, next_page = view.page - 1, view.page + 1
    nav.add_item(
        HistoryNav(
            prev_page if prev_page >= 1 else 0,
            view.snapshot,
            language=who.language,
            disabled=prev_page < 1,
            look=HistoryNav.PREVIOUS,
        )
    )
    nav.add_item(
        HistoryNav(
            next_page if next_page <= view.pages else view.pages + 1,
            view.snapshot,
            language=who.language,
            disabled=next_page > view.pages,
            look=HistoryNav.NEXT,
        )
    )
    options = [
        discord.SelectOption(
            label=f"{i + 1}. {(a.prompt or a.kind)[:80] or a.id}", value=a.id, description=a.id
        )
        for i, a in enumerate(view.items)
    ]
    nav.add_item(HistoryOpen(view.page, options, who.language))
    return embed, discord.File(io.BytesIO(sheet), name), nav


class HistoryNav(PersistentButton, prefix="chibify:hist", fields={"page": NUMBER, "snapshot": NUMBER}):
    """``chibify:hist:<page>:<snapshot>``: the previous or next page of the history as it was then."""

    page: int
    snapshot: int

    PREVIOUS = LOOK = Look("button_prev", emoji="◀️")
    NEXT = Look("button_next", emoji="▶️")

    async def run(self, interaction: discord.Interaction) -> None:
        if await refused_to_others(interaction):
            return
        who = await bot_of(interaction).begin(interaction, update=True)
        embed, file, view = await history_message(interaction, who, max(1, self.page), self.snapshot or None)
        await interaction.edit_original_response(embed=embed, attachments=[file] if file else [], view=view)


class HistoryOpen(discord.ui.DynamicItem[discord.ui.Select[Any]], template=r"chibify:open:(?P<page>[0-9]+)"):
    def __init__(
        self, page: int, options: list[discord.SelectOption] | None = None, language: str = "en"
    ) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=f"chibify:open:{page}",
                placeholder=t("open_placeholder", language),
                options=options or [discord.SelectOption(label="-", value="-")],
            )
        )
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> HistoryOpen:
        return cls(int(match["page"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        async def run() -> None:
            bot = bot_of(interaction)
            if await refused_to_others(interaction):
                return
            who = await bot.begin(interaction)
            data: dict[str, Any] = dict(interaction.data or {})
            values = data.get("values") or []
            avatar_id = str(values[0])
            avatar, png = await bot.studio.image(who.actor, avatar_id)
            name = f"chibify-{avatar.id}.png"
            await interaction.edit_original_response(
                embed=avatar_embed(avatar, who.language, name),
                attachments=[discord.File(io.BytesIO(png), name)],
                view=result_view([avatar], who.language),
            )

        await guarded(interaction, run)


class ForgetButton(PersistentButton, prefix="chibify:forget", fields={"answer": "yes|no"}):
    """``chibify:forget:yes|no``: the answer to /forget's question."""

    answer: str

    def look(self) -> Look:
        if self.answer == "yes":
            return Look("forget_yes", discord.ButtonStyle.danger)
        return Look("forget_no", discord.ButtonStyle.secondary)

    async def run(self, interaction: discord.Interaction) -> None:
        bot = bot_of(interaction)
        if await refused_to_others(interaction):
            return
        who = await bot.begin(interaction, update=True)
        if self.answer != "yes":
            await interaction.edit_original_response(content=t("forget_cancelled", who.language), view=None)
            return
        gone = await bot.studio.forget(who.actor)
        bot.active.pop(who.user_id, None)
        bot.suggestions.forget(who.user_id)
        bot.forget_preferences(who.user_id)
        removed = await bot.courier.delete_messages(gone.messages)
        await interaction.edit_original_response(
            content=t(
                "forgot",
                who.language,
                avatars=gone.avatars,
                jobs=gone.jobs,
                images=gone.images,
                messages=removed,
            ),
            view=None,
        )


def forget_view(language: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ForgetButton("yes", language=language))
    view.add_item(ForgetButton("no", language=language))
    return view
