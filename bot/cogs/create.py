"""Making avatars: /avatar, /edit (with autocomplete), /chibify, the "Chibify" message menu and DM'd photos.

Each command: parse, defer (ephemeral, thinking) at once, call the studio, hand the pending jobs to
:func:`bot.views.results.deliver_result`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from bot.delivery import Post, delivery_for, new_group
from bot.errors import BadInput, UserError
from bot.i18n import language_of, t
from bot.views.results import deliver_result
from generation.edits import suggest

if TYPE_CHECKING:
    from bot.client import ChibifyBot

log = logging.getLogger(__name__)

MAX_PHOTO_BYTES = 10 * 1024 * 1024
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/tiff"}
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def check_photo(attachment: discord.Attachment, language: str) -> None:
    """Type and size from the attachment's metadata, before a single byte is downloaded."""
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    looks_like_image = content_type in PHOTO_TYPES or (
        not content_type and attachment.filename.lower().endswith(PHOTO_EXTENSIONS)
    )
    if not looks_like_image:
        raise BadInput(t("bad_type", language, type=content_type or attachment.filename))
    if attachment.size > MAX_PHOTO_BYTES:
        raise BadInput(t("too_big", language, size=attachment.size / 2**20))


class Create(commands.Cog):
    def __init__(self, bot: ChibifyBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name=_("Chibify"), callback=self.chibify_message)
        # The menu and /chibify read attachments; they work in servers and DMs alike.

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    # --- /avatar ----------------------------------------------------------------------------------------

    @app_commands.command(name=_("avatar"), description=_("Make a chibi avatar from a description"))
    @app_commands.describe(
        prompt=_("What to draw, in English or Chinese"),
        count=_("How many (1-4)"),
        seed=_("Seed for the open choices (same prompt + seed = same avatar)"),
        engine=_("Which engine draws it"),
    )
    @app_commands.rename(prompt=_("prompt"), count=_("count"), seed=_("seed"), engine=_("engine"))
    @app_commands.choices(
        engine=[
            app_commands.Choice(name="chibi", value="chibi"),
            app_commands.Choice(name="diffusion", value="diffusion"),
            app_commands.Choice(name="gan", value="gan"),
        ]
    )
    async def avatar(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 500],
        count: app_commands.Range[int, 1, 4] = 1,
        seed: app_commands.Range[int, 0, 2_000_000_000] | None = None,
        engine: str | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = await self.bot.who(interaction)
        pending = await self.bot.studio.submit_create(
            who.actor, prompt, count=count, seed=seed, engine=engine, deliver=delivery_for(interaction, who)
        )
        await deliver_result(interaction, who, pending)

    # --- /edit --------------------------------------------------------------------------------------------

    @app_commands.command(name=_("edit"), description=_("Change an avatar, keeping the character"))
    @app_commands.describe(
        avatar=_("Which avatar (default: your latest)"),
        add=_("Item to add"),
        remove=_("Item to remove"),
        expression=_("New expression"),
        hair_color=_("Hair colour (name or #hex)"),
        eye_color=_("Eye colour (name or #hex)"),
        background=_("Background kind or colour"),
        prompt=_("Free-text change"),
    )
    @app_commands.rename(
        avatar=_("avatar"),
        add=_("add"),
        remove=_("remove"),
        expression=_("expression"),
        hair_color=_("hair_color"),
        eye_color=_("eye_color"),
        background=_("background"),
        prompt=_("prompt"),
    )
    async def edit(
        self,
        interaction: discord.Interaction,
        avatar: str | None = None,
        add: str | None = None,
        remove: str | None = None,
        expression: str | None = None,
        hair_color: str | None = None,
        eye_color: str | None = None,
        background: str | None = None,
        prompt: app_commands.Range[str, 1, 300] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = await self.bot.who(interaction)
        pending = await self.bot.studio.submit_edit(
            who.actor,
            avatar,
            add=[add] if add else [],
            remove=[remove] if remove else [],
            expression=expression,
            hair_color=hair_color,
            eye_color=eye_color,
            background=background,
            prompt=prompt,
            deliver=delivery_for(interaction, who),
        )
        await deliver_result(interaction, who, pending)

    @edit.autocomplete("avatar")
    async def _avatar_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        who = await self.bot.who(interaction)
        avatars = await self.bot.studio.recent_avatars(who.actor, current)
        return [
            app_commands.Choice(name=f"{a.id} · {(a.prompt or a.kind)[:60]}"[:100], value=a.id)
            for a in avatars
        ]

    @edit.autocomplete("add")
    async def _add_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return _catalog_choices("item", current, interaction)

    @edit.autocomplete("remove")
    async def _remove_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return _catalog_choices("item", current, interaction)

    @edit.autocomplete("expression")
    async def _expression_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return _catalog_choices("expression", current, interaction)

    # --- the selfie path ------------------------------------------------------------------------------

    @app_commands.command(
        name=_("chibify"), description=_("Turn a photo of a face into a chibi avatar (the photo is not kept)")
    )
    @app_commands.describe(
        photo=_("A photo of a face (JPEG, PNG, WebP; up to 10 MB)"),
        prompt=_("Changes on top, e.g. add cat ears"),
    )
    @app_commands.rename(photo=_("photo"), prompt=_("prompt"))
    async def chibify(
        self,
        interaction: discord.Interaction,
        photo: discord.Attachment,
        prompt: app_commands.Range[str, 1, 300] | None = None,
    ) -> None:
        await self._selfie(interaction, photo, prompt or "")

    async def chibify_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        images = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
        chosen = images[0] if images else (message.attachments[0] if message.attachments else None)
        if chosen is None:
            raise UserError(t("no_image", language_of(interaction.locale)))
        await self._selfie(interaction, chosen, "")

    async def _selfie(self, interaction: discord.Interaction, photo: discord.Attachment, prompt: str) -> None:
        language = language_of(interaction.locale)
        check_photo(photo, language)  # before deferring: answers at once, nothing downloaded
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = await self.bot.who(interaction)
        await self.bot.studio.admissible(who.actor)  # the server's rules before a byte is downloaded
        data = await photo.read()
        try:
            pending = await self.bot.studio.submit_selfie(
                who.actor, data, prompt=prompt, deliver=delivery_for(interaction, who)
            )
        finally:
            del data  # the photo is not kept
        pending.notes.append(t("photo_not_kept", who.language))
        await deliver_result(interaction, who, pending)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A photo sent to the bot in DM: the same selfie path, answered in the DM."""
        if message.guild is not None or message.author.bot or not message.attachments:
            return
        language = "en"
        try:
            prefs = await self.bot.studio.preferences(_actor(message.author.id))
            language = language_of(None, prefs["language"])
            await self._dm_selfie(message, language, bool(prefs["public_results"]))
        except UserError as exc:
            await message.channel.send(str(exc))
        except Exception:
            import secrets

            ref = secrets.token_hex(3).upper()
            log.exception("unexpected error (ref %s) in a DM from %s", ref, message.author.id)
            await message.channel.send(t("error", language, ref=ref))

    async def _dm_selfie(self, message: discord.Message, language: str, public: bool) -> None:
        from bot.client import Who
        from generation.jobs import Delivery

        photo = message.attachments[0]
        check_photo(photo, language)
        actor = _actor(message.author.id, language)
        who = Who(actor, message.author.id, language, public)
        await self.bot.studio.admissible(actor)
        data = await photo.read()
        # answered in this DM channel, by a post the courier records (and repeats after a crash)
        target = Delivery(
            group=new_group(),
            user_id=message.author.id,
            channel_id=message.channel.id,
            public=True,
            language=language,
        )
        pending = await self.bot.studio.submit_selfie(actor, data, deliver=target)
        del data
        pending.notes.append(t("photo_not_kept", language))
        courier = self.bot.courier
        courier.live.add(target.group)
        self.bot.track(who.user_id, pending)
        job_ids = [h.job_id for h in pending.handles]
        try:
            try:
                outcome = await self.bot.studio.finish(pending)
            except UserError as exc:
                await courier.send(target, Post(str(exc)), job_ids=job_ids)
                return
            post = await courier.result_post(outcome, language, late=False, mention="")
            post.content = t("photo_not_kept", language)
            await courier.send(target, post, job_ids=job_ids)
        finally:
            self.bot.untrack(who.user_id, pending)
            courier.live.discard(target.group)


def _actor(user_id: int, language: str = "en") -> Any:
    from bot.studio import Actor

    return Actor(discord_id=user_id, language=language)


def _catalog_choices(
    category: str, current: str, interaction: discord.Interaction
) -> list[app_commands.Choice[str]]:
    language = language_of(interaction.locale)
    return [
        app_commands.Choice(name=label[:100], value=entry_id)
        for entry_id, label in suggest(category, current, "zh" if language == "zh" else "en")
    ]


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Create(bot))  # type: ignore[arg-type]
