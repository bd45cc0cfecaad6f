"""Making avatars: /avatar, /edit (with autocomplete), /chibify, the "Chibify" message menu and DM'd photos.

Each command: parse, defer (ephemeral, thinking) at once, call the studio, hand the pending jobs to
:func:`bot.views.results.deliver_result`.

A photo sent to the bot by DM is answered at once (a typing indicator, then "working on it" with its queue
position, ETA and a Cancel button), at most ``Studio.photo_limit`` photos per user in the making (the studio's gate counts them); the message's text
is the prompt. A selfie that shows several faces says which one was drawn and offers a select to draw
another (the photo is read again from the user's own message: it is never kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from bot.delivery import Post, delivery_for, new_group
from bot.errors import BadInput, UserError
from bot.i18n import language_of, t
from bot.messages import capitalised
from bot.views.results import FaceSelect, deliver_result, progress_text, progress_view
from generation import catalog
from generation.edits import suggest
from generation.engines import USER_ENGINES

if TYPE_CHECKING:
    from bot.client import ChibifyBot

log = logging.getLogger(__name__)

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_DM_PROMPT = 300
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


def photo_of(message: discord.Message) -> discord.Attachment | None:
    """The picture of a message: its first image attachment, else its first attachment (checked later)."""
    images = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
    return images[0] if images else (message.attachments[0] if message.attachments else None)


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
    @app_commands.choices(engine=[app_commands.Choice(name=name, value=name) for name in USER_ENGINES])
    async def avatar(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 500],
        count: app_commands.Range[int, 1, 4] = 1,
        seed: app_commands.Range[int, 0, 2_000_000_000] | None = None,
        engine: str | None = None,
    ) -> None:
        who = await self.bot.begin(interaction)
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
        who = await self.bot.begin(interaction)
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
        from bot.cogs.library import avatar_choices

        return await avatar_choices(self.bot, interaction, current)

    @edit.autocomplete("add")
    async def _add_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return _catalog_choices("item", current, interaction)

    @edit.autocomplete("remove")
    async def _remove_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """The items the chosen avatar (default: the latest) has, not the whole catalog."""
        from bot.studio import Actor

        recent = await self.bot.suggestions.recent(Actor(discord_id=interaction.user.id))
        chosen = str(getattr(interaction.namespace, "avatar", "") or "").strip()
        avatar = (
            next((r for r in recent if r.id == chosen), None) if chosen else (recent[0] if recent else None)
        )
        if avatar is None:
            return []
        language = self.bot.cached_language(interaction)
        needle = current.strip().lower()
        choices = []
        for item in avatar.items:
            try:
                entry = catalog.get("item", item)
            except (KeyError, ValueError):
                continue
            label = entry.zh if language == "zh" else entry.en
            if needle and needle not in item.lower() and needle not in label.lower():
                continue
            choices.append(app_commands.Choice(name=label[:100], value=item))
        return choices[:25]

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
        chosen = photo_of(message)
        if chosen is None:
            raise UserError(t("no_image", self.bot.cached_language(interaction)))
        await self._selfie(interaction, chosen, "", source=message)

    async def _selfie(
        self,
        interaction: discord.Interaction,
        photo: discord.Attachment,
        prompt: str,
        *,
        source: discord.Message | None = None,
    ) -> None:
        check_photo(photo, self.bot.cached_language(interaction))  # answers at once, nothing downloaded
        who = await self.bot.begin(interaction)
        await self.bot.studio.admissible(who.actor, photos=1)  # the rules before a byte is downloaded
        data = await photo.read()
        try:
            pending = await self.bot.studio.submit_selfie(
                who.actor, data, prompt=prompt, deliver=delivery_for(interaction, who)
            )
        finally:
            del data  # the photo is not kept
        pending.notes.append(t("photo_not_kept", who.language))
        face_source = (source.channel.id, source.id) if source is not None else None
        await deliver_result(interaction, who, pending, face_source=face_source)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A photo sent to the bot by DM: the selfie path, answered in the DM at once."""
        if (
            message.guild is not None
            or message.author.bot
            or message.author.id == getattr(self.bot.user, "id", 0)
        ):
            return
        if not isinstance(message.channel, discord.DMChannel):
            return  # group DMs reach a bot only through its commands
        user_id = message.author.id
        language = "en"
        try:
            prefs = await self.bot.preferences(user_id)
            language = language_of(None, prefs["language"])
            photo = photo_of(message)
            if photo is None:
                await message.channel.send(t("dm_no_photo", language))
                return
            check_photo(photo, language)
            await self._dm_selfie(message, photo, language)
        except UserError as exc:
            with contextlib.suppress(discord.HTTPException):
                await message.channel.send(capitalised(str(exc)))
        except Exception:
            ref = secrets.token_hex(3).upper()
            log.exception("unexpected error (ref %s) in a DM from %s", ref, user_id)
            with contextlib.suppress(discord.HTTPException):
                await message.channel.send(t("error", language, ref=ref))

    async def _dm_selfie(self, message: discord.Message, photo: discord.Attachment, language: str) -> None:
        from bot.client import Who
        from generation.jobs import Delivery

        bot = self.bot
        channel = message.channel
        actor = _actor(message.author.id, language)
        who = Who(actor, message.author.id, language, True)
        prompt = message.content.strip()[:MAX_DM_PROMPT]
        await channel.typing()  # at once, before the photo is downloaded
        await bot.studio.admissible(actor, photos=1)
        data = await photo.read()
        # answered in this DM channel, by a post the courier records (and repeats after a crash)
        target = Delivery(
            group=new_group(),
            user_id=message.author.id,
            channel_id=channel.id,
            public=True,
            language=language,
        )
        try:
            pending = await bot.studio.submit_selfie(actor, data, prompt=prompt, deliver=target)
        finally:
            del data  # the photo is not kept
        courier = bot.courier
        courier.live.add(target.group)
        bot.track(who.user_id, pending)
        job_ids = [h.job_id for h in pending.handles]
        finish = asyncio.create_task(bot.studio.finish(pending))
        working: discord.Message | None = None
        try:
            working = await channel.send(
                _working_text(pending, language), view=progress_view(target.group, language)
            )
            last = working.content
            while True:
                done, _ = await asyncio.wait({finish}, timeout=bot.progress_every_s)
                if done:
                    break
                text = _working_text(pending, language)
                if text != last:
                    last = text
                    with contextlib.suppress(discord.HTTPException):
                        await working.edit(content=text)
            try:
                outcome = finish.result()
            except UserError as exc:
                await courier.send(target, Post(capitalised(str(exc))), job_ids=job_ids)
                return
            bot.suggestions.forget(who.user_id)
            post = await courier.result_post(outcome, language, late=False, mention="")
            lines = [t("photo_not_kept", language)]
            if prompt:
                lines.append(t("dm_prompt_used", language, prompt=prompt))
            post.content = "\n".join(lines)
            if outcome.faces[0] > 1 and post.view is not None:
                used = outcome.faces[1]
                post.view.add_item(FaceSelect(channel.id, message.id, outcome.faces[0], used, language))
            await courier.send(target, post, job_ids=job_ids)
        finally:
            if not finish.done():
                finish.cancel()
            bot.untrack(who.user_id, pending)
            courier.live.discard(target.group)
            if working is not None:
                with contextlib.suppress(discord.HTTPException):
                    await working.delete()  # the progress message has done its job


def _working_text(pending: Any, language: str) -> str:
    text = progress_text(pending, language)
    if text == t("drawing", language):
        return t("dm_drawing", language)
    positions = [p for p in (h.position() for h in pending.handles if not h.done()) if p]
    etas = [e for e in (h.eta_s() for h in pending.handles if not h.done()) if e]
    eta = t("eta", language, eta=f"{max(etas):.0f}") if etas else ""
    return t("dm_working", language, position=min(positions) if positions else 1, eta=eta)


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
