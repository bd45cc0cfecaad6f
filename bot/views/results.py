"""Result delivery and the persistent avatar buttons.

A result is delivered by :func:`deliver_result`: progress in the (ephemeral) deferred response at most every
``bot.progress_every_s``, then the picture. Private results replace the deferred response; public ones go
out as a followup. If the interaction token has expired (``NotFound``), the result is posted to the channel
with a mention (public) or sent by DM (private): results never depend on the 15-minute token.

Buttons are :class:`AvatarButton` DynamicItems: ``chibify:<action>:<avatar public id>``; nothing else is
kept in memory, so they work after a restart and only for the avatar's owner (the studio checks it).
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import NotFoundError, UserError
from bot.i18n import t
from bot.render import avatar_embed, grid, result_embed
from bot.studio import AvatarView, Outcome, Pending

if TYPE_CHECKING:
    from bot.client import ChibifyBot, Who

log = logging.getLogger(__name__)

ACTIONS = ("reroll", "vary", "edit", "stickers", "fav", "del")
VARIATION_COUNT = 4
_STYLE = {
    "reroll": discord.ButtonStyle.primary,
    "vary": discord.ButtonStyle.primary,
    "edit": discord.ButtonStyle.secondary,
    "stickers": discord.ButtonStyle.secondary,
    "fav": discord.ButtonStyle.success,
    "del": discord.ButtonStyle.danger,
}
_EMOJI = {"reroll": "🎲", "vary": "🔀", "edit": "✏️", "stickers": "🗂️", "fav": "⭐", "del": "🗑️"}


def bot_of(interaction: discord.Interaction) -> ChibifyBot:
    return cast("ChibifyBot", interaction.client)


async def guarded(interaction: discord.Interaction, run: Callable[[], Awaitable[None]]) -> None:
    """Run a component or modal handler; errors become the same ephemeral replies as tree.on_error."""
    try:
        await run()
    except Exception as exc:  # one place turns every error into a short reply
        await bot_of(interaction).report_error(interaction, exc)


def owner_mismatch(interaction: discord.Interaction) -> bool | None:
    """True when the message clearly belongs to someone else, False when to this user, None if unknown."""
    message = interaction.message
    if message is None:
        return None
    meta = message.interaction_metadata
    if meta is not None and message.author.id == interaction.client.application_id:
        return meta.user.id != interaction.user.id
    mentioned = message.raw_mentions
    if mentioned:
        return interaction.user.id not in mentioned
    return None


# --- delivery ---------------------------------------------------------------------------------------------


def progress_text(pending: Pending, language: str) -> str:
    positions = [h.position() for h in pending.handles if not h.done()]
    known = [p for p in positions if p is not None]
    if not known or min(known) == 0:
        return t("drawing", language)
    etas = [e for e in (h.eta_s() for h in pending.handles if not h.done()) if e]
    eta = t("eta", language, eta=f"{max(etas):.0f}") if etas else ""
    return t("queued", language, position=min(known), eta=eta)


async def result_files(bot: ChibifyBot, who: Who, outcome: Outcome) -> tuple[bytes, str]:
    images = [(await bot.studio.image(who.actor, a.id))[1] for a in outcome.avatars]
    if len(images) == 1:
        return images[0], f"chibify-{outcome.avatars[0].id}.png"
    return await asyncio.to_thread(grid, images), "chibify-grid.png"


def result_view(
    avatars: Sequence[AvatarView], language: str, *, actions: Sequence[str] = ACTIONS
) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    if len(avatars) > 1:
        for index, avatar in enumerate(avatars[:4]):
            view.add_item(AvatarButton(f"pick{index + 1}", avatar.id, language))
        view.add_item(AvatarButton("reroll", avatars[0].id, language))
        return view
    for action in actions:
        view.add_item(AvatarButton(action, avatars[0].id, language))
    return view


async def deliver_result(interaction: discord.Interaction, who: Who, pending: Pending) -> None:
    """The interaction was deferred (ephemeral, thinking): show progress, then the result."""
    bot = bot_of(interaction)
    bot.track(who.user_id, pending)
    finish = asyncio.create_task(bot.studio.finish(pending))
    token_ok = True
    last = ""
    delay = bot.progress_first_s
    try:
        while True:
            done, _ = await asyncio.wait({finish}, timeout=delay)
            if done:
                break
            delay = bot.progress_every_s
            text = progress_text(pending, who.language)
            if token_ok and text != last:
                last = text
                try:
                    await interaction.edit_original_response(content=text)
                except discord.NotFound:
                    token_ok = False
                except discord.HTTPException as exc:
                    log.warning("progress edit failed: %s", exc)
        try:
            outcome = finish.result()
        except UserError as exc:
            if token_ok:
                await interaction.edit_original_response(content=str(exc))
                return
            raise
    finally:
        if not finish.done():
            finish.cancel()
        bot.untrack(who.user_id, pending)
    await send_outcome(interaction, who, outcome, token_ok=token_ok)


async def send_outcome(
    interaction: discord.Interaction, who: Who, outcome: Outcome, *, token_ok: bool = True
) -> None:
    bot = bot_of(interaction)
    data, name = await result_files(bot, who, outcome)
    embed = result_embed(outcome, who.language, name)
    view = result_view(outcome.avatars, who.language)
    mention = f"<@{who.user_id}>"
    if token_ok:
        try:
            file = discord.File(io.BytesIO(data), name)
            if who.public:
                await interaction.edit_original_response(content="✨")
                await interaction.followup.send(
                    content=t("made", who.language, mention=mention),
                    embed=embed,
                    file=file,
                    view=view,
                    allowed_mentions=discord.AllowedMentions(users=True),
                )
            else:
                await interaction.edit_original_response(
                    content=None, embed=embed, attachments=[file], view=view
                )
            return
        except discord.NotFound:
            log.info("interaction token expired; delivering to the channel or DM instead")
    await bot.post_fallback(
        user_id=who.user_id,
        channel_id=interaction.channel_id,
        public=who.public,
        content=t("made_late", who.language, mention=mention),
        embed=embed,
        file=discord.File(io.BytesIO(data), name),
        view=view,
    )


# --- the persistent avatar buttons -------------------------------------------------------------------------


class AvatarButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"chibify:(?P<action>reroll|vary|edit|stickers|fav|del|pick[1-4]):(?P<avatar>[A-Za-z0-9_-]{1,43})",
):
    """``chibify:<action>:<avatar id>``: re-roll, variations, edit (modal), stickers, favourite, delete, pick N."""

    def __init__(self, action: str, avatar_id: str, language: str = "en") -> None:
        if action.startswith("pick"):
            label = t("button_pick", language, n=action[4:])
            button: discord.ui.Button[Any] = discord.ui.Button(
                label=label, style=discord.ButtonStyle.secondary, custom_id=f"chibify:{action}:{avatar_id}"
            )
        else:
            button = discord.ui.Button(
                label=t(f"button_{action}", language),
                style=_STYLE[action],
                emoji=_EMOJI[action],
                custom_id=f"chibify:{action}:{avatar_id}",
            )
        super().__init__(button)
        self.action = action
        self.avatar_id = avatar_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AvatarButton:
        return cls(match["action"], match["avatar"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, lambda: self._run(interaction))

    async def _run(self, interaction: discord.Interaction) -> None:
        bot = bot_of(interaction)
        mismatch = owner_mismatch(interaction)
        who = await bot.who(interaction)
        if mismatch:
            await interaction.response.send_message(t("not_yours", who.language), ephemeral=True)
            return
        try:
            await self._act(interaction, who)
        except NotFoundError:
            if mismatch is None and not interaction.response.is_done():
                await interaction.response.send_message(t("not_yours", who.language), ephemeral=True)
                return
            raise

    async def _act(self, interaction: discord.Interaction, who: Who) -> None:
        bot = bot_of(interaction)
        studio = bot.studio
        action, avatar_id = self.action, self.avatar_id
        if action == "edit":
            await studio.image(who.actor, avatar_id)  # owner check before the modal opens
            await interaction.response.send_modal(EditModal(avatar_id, who.language))
            return
        if action == "fav":
            avatar, _ = await studio.show(who.actor, avatar_id)
            view = await studio.favourite(who.actor, avatar_id, not avatar.favourite)
            key = "favourite_on" if view.favourite else "favourite_off"
            await interaction.response.send_message(t(key, who.language, id=avatar_id), ephemeral=True)
            return
        if action == "del":
            await studio.delete(who.actor, avatar_id)
            await interaction.response.send_message(t("deleted", who.language, id=avatar_id), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        if action == "stickers":
            files = await studio.export(who.actor, avatar_id, "stickers")
            data = await asyncio.to_thread(_zip, files)
            await interaction.followup.send(
                t("stickers_ready", who.language, id=avatar_id),
                file=discord.File(io.BytesIO(data), f"chibify-{avatar_id}-stickers.zip"),
                ephemeral=True,
            )
            return
        if action.startswith("pick"):
            avatar, png = await studio.image(who.actor, avatar_id)
            name = f"chibify-{avatar.id}.png"
            await interaction.edit_original_response(
                embed=avatar_embed(avatar, who.language, name),
                attachments=[discord.File(io.BytesIO(png), name)],
                view=result_view([avatar], who.language),
            )
            return
        bot.check_intake_user(who)
        deliver = bot.deliver_info(interaction, who)
        if action == "reroll":
            pending = await studio.submit_reroll(who.actor, avatar_id, deliver=deliver)
        else:
            pending = await studio.submit_variations(
                who.actor, avatar_id, count=VARIATION_COUNT, deliver=deliver
            )
        await deliver_result(interaction, who, pending)


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


class EditModal(discord.ui.Modal):
    """Opened by the edit button: one free-text change, then a child avatar."""

    def __init__(self, avatar_id: str, language: str) -> None:
        super().__init__(
            title=t("edit_title", language), custom_id=f"chibify:editmodal:{avatar_id}", timeout=900
        )
        self.avatar_id = avatar_id
        self.change: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label=t("edit_label", language),
            placeholder=t("edit_placeholder", language),
            custom_id="change",
            max_length=200,
        )
        self.add_item(self.change)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, lambda: self._submit(interaction))

    async def _submit(self, interaction: discord.Interaction) -> None:
        bot = bot_of(interaction)
        who = await bot.who(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot.check_intake_user(who)
        pending = await bot.studio.submit_edit(
            who.actor, self.avatar_id, prompt=self.change.value, deliver=bot.deliver_info(interaction, who)
        )
        await deliver_result(interaction, who, pending)

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:  # type: ignore[override]
        await bot_of(interaction).report_error(interaction, error)
