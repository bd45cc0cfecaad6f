"""/queue, /settings, /config (server admins) and /help."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from bot.errors import UserError
from bot.i18n import t
from bot.render import EMBED_COLOUR
from bot.studio import channel_list
from generation.engines import USER_ENGINES

if TYPE_CHECKING:
    from bot.client import ChibifyBot
    from generation.service import GenerationService


def workers_text(service: GenerationService | None, language: str) -> str:
    """The live workers, one line each: who draws, what, and whether they are busy."""
    workers = service.workers() if service is not None else []
    if not workers:
        return t("queue_no_workers", language)
    now = time.time()
    lines = [t("queue_workers", language, count=len(workers))]
    for w in workers[:15]:
        age = max(0, round(now - w.last_seen))
        lines.append(
            t(
                "queue_worker",
                language,
                id=w.worker_id,
                host=w.host,
                engines=", ".join(w.engines),
                state=t(f"worker_{w.state}", language),
                served=w.jobs_served,
                age=t("seen_now", language) if age < 2 else t("seen_ago", language, seconds=age),
            )
        )
    return "\n".join(lines)


class Admin(commands.Cog):
    def __init__(self, bot: ChibifyBot) -> None:
        self.bot = bot

    @app_commands.command(name=_("queue"), description=_("Your jobs in the queue"))
    async def queue(self, interaction: discord.Interaction) -> None:
        who = await self.bot.begin(interaction)
        lines: list[str] = []
        for pending in self.bot.active.get(who.user_id, []):
            for handle in pending.handles:
                if handle.done():
                    continue
                position, eta = handle.position(), handle.eta_s()
                n = len(lines) + 1
                if not position:
                    lines.append(t("queue_running", who.language, n=n))
                else:
                    eta_text = t("eta", who.language, eta=f"{eta:.0f}") if eta else ""
                    lines.append(t("queue_line", who.language, n=n, position=position, eta=eta_text))
        text = "\n".join(lines) or t("queue_empty", who.language)
        text += "\n\n" + workers_text(self.bot.app.service, who.language)
        await interaction.edit_original_response(content=text[:2000])

    @app_commands.command(name=_("settings"), description=_("Your language and privacy settings"))
    @app_commands.describe(
        language=_("Language of the bot's replies"),
        public=_("Show results to the channel (True) or only to you (False)"),
    )
    @app_commands.rename(language=_("language"), public=_("public"))
    @app_commands.choices(
        language=[
            app_commands.Choice(name=_("Follow Discord"), value="en"),
            app_commands.Choice(name=_("English"), value="en-only"),
            app_commands.Choice(name=_("Chinese"), value="zh"),
        ]
    )
    async def settings(
        self, interaction: discord.Interaction, language: str | None = None, public: bool | None = None
    ) -> None:
        who = await self.bot.begin(interaction)
        if language is not None or public is not None:
            await self.bot.studio.update_preferences(who.actor, language=language, public_results=public)
            self.bot.forget_preferences(who.user_id)
            who = await self.bot.who(interaction)
        names = {"en": "auto", "en-only": "English", "zh": "中文"}
        prefs = await self.bot.studio.preferences(who.actor)
        await interaction.edit_original_response(
            content=t(
                "settings_now",
                who.language,
                language=names.get(prefs["language"], prefs["language"]),
                visibility=t("public" if who.public else "private", who.language),
            )
            + self.bot.zh_tw_note(interaction, who.language)
        )

    @app_commands.command(name=_("config"), description=_("Server settings for admins"))
    @app_commands.guild_only()
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(
        channel_add=_("Allow results in this channel (none set: every channel)"),
        channel_remove=_("Stop allowing this channel"),
        clear_channels=_("Allow every channel again"),
        queue_limit=_("Jobs one member may have queued at once"),
        daily_limit=_("Avatars one member may make per day"),
        policy=_("How strictly prompts are filtered"),
        engine=_("Default engine in this server"),
    )
    @app_commands.rename(
        channel_add=_("channel_add"),
        channel_remove=_("channel_remove"),
        clear_channels=_("clear_channels"),
        queue_limit=_("queue_limit"),
        daily_limit=_("daily_limit"),
        policy=_("policy"),
        engine=_("engine"),
    )
    @app_commands.choices(
        policy=[
            app_commands.Choice(name=_("strict"), value="strict"),
            app_commands.Choice(name=_("standard"), value="standard"),
            app_commands.Choice(name=_("off"), value="off"),
        ],
        engine=[app_commands.Choice(name=name, value=name) for name in USER_ENGINES],
    )
    async def config(
        self,
        interaction: discord.Interaction,
        channel_add: discord.TextChannel | None = None,
        channel_remove: discord.TextChannel | None = None,
        clear_channels: bool = False,
        queue_limit: app_commands.Range[int, 1, 50] | None = None,
        daily_limit: app_commands.Range[int, 1, 1000] | None = None,
        policy: str | None = None,
        engine: str | None = None,
    ) -> None:
        who = await self.bot.begin(interaction)
        permissions = interaction.permissions
        if interaction.guild_id is None:
            raise UserError(t("guild_only", who.language))
        if not (permissions.manage_guild or permissions.administrator):
            raise UserError(t("admins_only", who.language))
        studio = self.bot.studio
        current = await studio.guild_config(interaction.guild_id)
        changes: dict[str, Any] = {}
        channels = list(current["allowed_channels"])
        if clear_channels:
            channels = []
        if channel_add is not None and channel_add.id not in channels:
            channels.append(channel_add.id)
        if channel_remove is not None and channel_remove.id in channels:
            channels.remove(channel_remove.id)
        if channels != current["allowed_channels"]:
            changes["allowed_channels"] = channels
        if queue_limit is not None:
            changes["max_queued_per_user"] = queue_limit
        if daily_limit is not None:
            changes["per_user_daily_limit"] = daily_limit
        if policy is not None:
            changes["prompt_policy"] = policy
        if engine is not None:
            changes["engine"] = engine
        config = (
            await studio.update_guild_config(interaction.guild_id, actor=who.actor, **changes)
            if changes
            else current
        )
        none = t("no_limit", who.language)
        await interaction.edit_original_response(
            content=t(
                "config_now",
                who.language,
                channels=channel_list(config["allowed_channels"], who.language)
                or t("every_channel", who.language),
                queue=config["max_queued_per_user"] or none,
                daily=config["per_user_daily_limit"] or none,
                policy=t("policy_off_note", who.language)
                if config["prompt_policy"] == "off"
                else config["prompt_policy"],
                engine=config["engine"] or self.bot.app.settings.engine,
            )
        )

    @app_commands.command(name=_("help"), description=_("How to use Chibify"))
    async def help(self, interaction: discord.Interaction) -> None:
        who = await self.bot.begin(interaction)
        text = t("help", who.language)
        if note := self.bot.zh_tw_note(interaction, who.language):
            text = f"{note}\n{text}"
        embed = discord.Embed(colour=EMBED_COLOUR, description=text)
        await interaction.edit_original_response(embed=embed)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Admin(bot))  # type: ignore[arg-type]
