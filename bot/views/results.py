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
import contextlib
import io
import logging
import re
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.delivery import Post, delivery_for
from bot.errors import NotFoundError, UserError
from bot.i18n import t
from bot.render import avatar_embed
from bot.studio import AvatarView, Pending
from generation.service import ServiceStopped

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
    """The interaction was deferred (ephemeral, thinking): show progress, then deliver the result (or the
    failure) through the courier, which records the delivery in SQL. Results never depend on the token."""
    bot = bot_of(interaction)
    courier = bot.courier
    target = pending.handles[0].deliver
    assert target is not None, "interaction requests carry their delivery target"
    courier.live.add(target.group)
    bot.track(who.user_id, pending)
    finish = asyncio.create_task(bot.studio.finish(pending))
    token_ok = True
    last = ""
    delay = bot.progress_first_s
    job_ids = [h.job_id for h in pending.handles]
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
                    token_ok = await courier.edit_original(target, interaction, content=text)
                except discord.HTTPException as exc:
                    log.warning("progress edit failed: %s", exc)
        late = interaction.is_expired() or not token_ok
        try:
            outcome = finish.result()
        except ServiceStopped:
            # the bot is stopping: the jobs stay queued in SQL and are delivered after the restart
            with contextlib.suppress(discord.HTTPException):
                await courier.edit_original(target, interaction, content=t("restarting", who.language))
            return
        except UserError as exc:
            await courier.send(target, Post(str(exc)), interaction=interaction, job_ids=job_ids)
            return
        post = await courier.result_post(outcome, who.language, late=late, mention=f"<@{who.user_id}>")
        await courier.send(target, post, interaction=interaction, job_ids=job_ids)
    finally:
        if not finish.done():
            finish.cancel()
        bot.untrack(who.user_id, pending)
        courier.live.discard(target.group)


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
            await studio.show(who.actor, avatar_id)  # owner check before the modal opens (no image read)
            await interaction.response.send_modal(edit_modal(avatar_id, who.language))
            return
        if action == "fav":
            avatar, _ = await studio.show(who.actor, avatar_id)
            view = await studio.favourite(who.actor, avatar_id, not avatar.favourite)
            key = "favourite_on" if view.favourite else "favourite_off"
            await interaction.response.send_message(t(key, who.language, id=avatar_id), ephemeral=True)
            return
        if action == "del":
            await interaction.response.defer(ephemeral=True, thinking=True)
            removal = await studio.delete(who.actor, avatar_id)
            removed = await bot.courier.delete_messages(removal.messages)
            text = t("deleted", who.language, id=avatar_id)
            if removed:
                text += t("removed_messages", who.language, count=removed)
            await interaction.edit_original_response(content=text)
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
        deliver = delivery_for(interaction, who)
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


EDIT_MODAL_PATTERN = re.compile(r"chibify:editmodal:(?P<avatar>[A-Za-z0-9_-]{1,43})")


def edit_modal(avatar_id: str, language: str) -> discord.ui.Modal:
    """The edit button's modal: one free-text change. Its custom_id carries the avatar id; the submission
    is handled by :func:`handle_edit_modal` from the bot's interaction listener, not by this object, so a
    modal opened before a restart still works after it."""
    modal = discord.ui.Modal(title=t("edit_title", language), custom_id=f"chibify:editmodal:{avatar_id}")
    modal.add_item(
        discord.ui.TextInput(
            label=t("edit_label", language),
            placeholder=t("edit_placeholder", language),
            custom_id="change",
            max_length=200,
        )
    )
    return modal


def modal_value(interaction: discord.Interaction, custom_id: str) -> str:
    data: dict[str, Any] = dict(interaction.data or {})
    for row in data.get("components") or []:
        for component in row.get("components") or [row.get("component") or {}]:
            if component.get("custom_id") == custom_id:
                return str(component.get("value") or "")
    return ""


async def handle_edit_modal(interaction: discord.Interaction) -> bool:
    """An edit modal was submitted (before or after a restart). Returns False if it is not ours."""
    data: dict[str, Any] = dict(interaction.data or {})
    match = EDIT_MODAL_PATTERN.fullmatch(str(data.get("custom_id") or ""))
    if match is None:
        return False

    async def run() -> None:
        bot = bot_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = await bot.who(interaction)
        pending = await bot.studio.submit_edit(
            who.actor,
            match["avatar"],
            prompt=modal_value(interaction, "change").strip() or None,
            deliver=delivery_for(interaction, who),
        )
        await deliver_result(interaction, who, pending)

    await guarded(interaction, run)
    return True
