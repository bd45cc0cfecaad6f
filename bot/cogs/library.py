"""Reading and managing: /history (ephemeral 3x3 gallery), /show and /delete (autocompleted from your own
avatars), /forget (with confirmation)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from bot.i18n import t
from bot.render import avatar_embed
from bot.suggest import matching
from bot.views.library import forget_view, history_message
from bot.views.results import delete_avatar, result_view

if TYPE_CHECKING:
    from bot.client import ChibifyBot


class Library(commands.Cog):
    def __init__(self, bot: ChibifyBot) -> None:
        self.bot = bot

    @app_commands.command(name=_("history"), description=_("Your avatars, newest first"))
    @app_commands.describe(page=_("Page number"))
    @app_commands.rename(page=_("page"))
    async def history(
        self, interaction: discord.Interaction, page: app_commands.Range[int, 1, 10_000] = 1
    ) -> None:
        who = await self.bot.begin(interaction)
        embed, file, view = await history_message(interaction, who, page)
        kwargs: dict[str, object] = {"embed": embed}
        if file is not None:
            kwargs["attachments"] = [file]
        if view is not None:
            kwargs["view"] = view
        await interaction.edit_original_response(**kwargs)  # type: ignore[arg-type]

    @app_commands.command(name=_("show"), description=_("Show one of your avatars"))
    @app_commands.describe(id=_("The avatar's id"))
    @app_commands.rename(id=_("id"))
    async def show(self, interaction: discord.Interaction, id: str) -> None:
        who = await self.bot.begin(interaction)
        avatar, png = await self.bot.studio.image(who.actor, id.strip())
        name = f"chibify-{avatar.id}.png"
        await interaction.edit_original_response(
            embed=avatar_embed(avatar, who.language, name),
            attachments=[discord.File(io.BytesIO(png), name)],
            view=result_view([avatar], who.language),
        )

    @app_commands.command(name=_("delete"), description=_("Delete one of your avatars"))
    @app_commands.describe(id=_("The avatar's id"))
    @app_commands.rename(id=_("id"))
    async def delete(self, interaction: discord.Interaction, id: str) -> None:
        who = await self.bot.begin(interaction)
        await interaction.edit_original_response(content=await delete_avatar(self.bot, who, id.strip()))

    @show.autocomplete("id")
    @delete.autocomplete("id")
    async def _id_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await avatar_choices(self.bot, interaction, current)

    @app_commands.command(name=_("forget"), description=_("Delete everything Chibify keeps about you"))
    async def forget(self, interaction: discord.Interaction) -> None:
        who = await self.bot.begin(interaction)
        await interaction.edit_original_response(
            content=t("forget_confirm", who.language), view=forget_view(who.language)
        )


async def avatar_choices(
    bot: ChibifyBot, interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    """The user's own avatars matching what was typed, from the autocomplete cache (never late)."""
    from bot.studio import Actor

    recent = await bot.suggestions.recent(Actor(discord_id=interaction.user.id))
    return [
        app_commands.Choice(name=f"{r.id} · {r.label[:70]}"[:100], value=r.id)
        for r in matching(recent, current)
    ]


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Library(bot))  # type: ignore[arg-type]
