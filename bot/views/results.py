"""Result delivery and the persistent controls under a result.

A result is delivered by :func:`deliver_result`: progress (queue position, ETA and a **Cancel** button) in
the (ephemeral) deferred response at most every ``bot.progress_every_s``, then the picture through the
courier (bot/delivery.py), which records the delivery in SQL. Results never depend on the 15-minute token.

Every control is a DynamicItem: its custom_id holds all the state (avatar public ids, a request group),
nothing is kept in memory, so they work after a restart and for days, and only for their owner (the
message says whose it is; the studio checks the owner on every read and write). Custom ids:

``chibify:<action>:<avatar>``
    ``reroll`` (a new take on the prompt), ``vary`` (4 variations), ``edit`` (a modal), ``fav``, ``del``,
    ``stickers`` (kept for messages from older versions), ``pick1``-``pick4`` (open one image of a grid),
    ``again2``-``again4`` (a whole new grid of that many images).
``chibify:export:<avatar>[.<avatar>...]``
    the "Download as…" select: format x size (values ``<format>:<size>``).
``chibify:cancel:<group>``
    the Cancel button while a request is queued or drawing.
``chibify:face:<channel>:<message>:<count>``
    a select to draw another face of a selfie that showed several (DM photos and the message menu).
``chibify:editmodal:<avatar>``
    the edit modal (answered by :func:`handle_edit_modal` from the bot's interaction listener).

The 3-second rule: every handler acknowledges first (a deferral, or the modal itself) and only then
reads the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord

from bot.delivery import Post, delivery_for
from bot.errors import BadInput, NotFoundError, UserError
from bot.i18n import t
from bot.messages import capitalised, note
from bot.render import avatar_embed, grid, result_embed
from bot.studio import AvatarView, Outcome, Pending, Removal
from bot.views.persistent import (
    Look,
    PersistentButton,
    bot_of,
    guarded,
    owner_mismatch,
    quick_language,
    refused_to_others,
)
from generation.service import ServiceStopped

if TYPE_CHECKING:
    from bot.client import ChibifyBot, Who
    from generation.service import JobHandle

log = logging.getLogger(__name__)

ID = r"[A-Za-z0-9_-]{1,43}"
ACTIONS = ("reroll", "vary", "edit", "fav", "del")
VARIATION_COUNT = 4
_LOOKS = {
    "reroll": Look("button_reroll", discord.ButtonStyle.primary, "🎲"),
    "vary": Look("button_vary", discord.ButtonStyle.primary, "🔀"),
    "edit": Look("button_edit", discord.ButtonStyle.secondary, "✏️"),
    "stickers": Look("button_stickers", discord.ButtonStyle.secondary, "🗂️"),
    "fav": Look("button_fav", discord.ButtonStyle.success, "⭐"),
    "del": Look("button_del", discord.ButtonStyle.danger, "🗑️"),
}

# The "Download as…" options: (format, size). Size 0: the format decides (SVG, sticker pack).
EXPORT_CHOICES: tuple[tuple[str, int], ...] = (
    ("png", 256),
    ("png", 512),
    ("png", 1024),
    ("png", 2048),
    ("transparent", 512),
    ("transparent", 1024),
    ("transparent", 2048),
    ("circle", 256),
    ("circle", 512),
    ("circle", 1024),
    ("svg", 0),
    ("gif", 256),
    ("gif", 512),
    ("apng", 256),
    ("apng", 512),
    ("stickers", 0),
    ("pngtuber", 512),
    ("pngtuber", 1024),
)
# Avatars painted by another engine (diffusion, GAN) are offered their stored picture only.
ORIGINAL = ("original", 0)
EXPORT_EMOJI = {
    "png": "🖼️",
    "transparent": "🪟",
    "circle": "⭕",
    "svg": "📐",
    "gif": "👀",
    "apng": "👀",
    "stickers": "🗂️",
    "pngtuber": "🎙️",
    "original": "🖼️",
}
STEP_DOWN = (2048, 1024, 512, 256, 128)


# --- delivery ---------------------------------------------------------------------------------------------


def progress_text(pending: Pending, language: str) -> str:
    """Where the request stands: drawing, or its queue position and ETA, and the generation layer's note
    for a job that waits for a reason ("no worker serves 'diffusion' yet", "retrying")."""
    waiting = [h for h in pending.handles if not h.done()]
    notes = [h.message for h in waiting if h.message]
    positions = [h.position() for h in waiting]
    known = [p for p in positions if p is not None]
    if notes:
        text = t("queued", language, position=min(known), eta="") if known else t("waiting", language)
        return f"{text}\n{capitalised(note(notes[0], language))}"
    if not known or min(known) == 0:
        return t("drawing", language)
    etas = [e for e in (h.eta_s() for h in waiting if not h.done()) if e]
    eta = t("eta", language, eta=f"{max(etas):.0f}") if etas else ""
    return t("queued", language, position=min(known), eta=eta)


def progress_view(group: str, language: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(group, language=language))
    return view


def result_view(avatars: Sequence[AvatarView], language: str, **_: Any) -> discord.ui.View:
    """The controls under a result.

    One avatar: re-roll, variations, edit, favourite, delete, then "Download as…".
    A grid of n: open 1..n, V1..Vn (4 variations of that image), R1..Rn (a new take on that image) and a
    new grid of n, then "Download all n as…"."""
    view = discord.ui.View(timeout=None)
    shown = list(avatars[:4])
    if len(shown) > 1:
        for index, avatar in enumerate(shown):
            view.add_item(AvatarButton(f"pick{index + 1}", avatar.id, language=language, row=0))
        for index, avatar in enumerate(shown):
            look = Look("button_vary_n", values={"n": index + 1})
            view.add_item(AvatarButton("vary", avatar.id, language=language, row=1, look=look))
        for index, avatar in enumerate(shown):
            look = Look("button_reroll_n", values={"n": index + 1})
            view.add_item(AvatarButton("reroll", avatar.id, language=language, row=2, look=look))
        view.add_item(AvatarButton(f"again{len(shown)}", shown[0].id, language=language, row=2))
        view.add_item(ExportSelect(shown, language, row=3))
        return view
    for action in ACTIONS:
        view.add_item(AvatarButton(action, shown[0].id, language=language, row=0))
    view.add_item(ExportSelect(shown, language, row=1))
    return view


async def deliver_result(
    interaction: discord.Interaction,
    who: Who,
    pending: Pending,
    *,
    face_source: tuple[int, int] | None = None,
) -> None:
    """The interaction was deferred (ephemeral, thinking): show progress with a Cancel button, then deliver
    the result (or the failure, or "cancelled") through the courier, which records the delivery in SQL.
    ``face_source`` (channel, message) of a selfie's photo adds the "another face" select when the photo
    showed several faces."""
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
                    token_ok = await courier.edit_original(
                        target, interaction, content=text, view=progress_view(target.group, who.language)
                    )
                except discord.HTTPException as exc:
                    log.warning("progress edit failed: %s", exc)
        late = interaction.is_expired() or not token_ok
        try:
            outcome = finish.result()
        except ServiceStopped:
            # the bot is stopping: the jobs stay queued in SQL and are delivered after the restart
            with contextlib.suppress(discord.HTTPException):
                await courier.edit_original(
                    target, interaction, content=t("restarting", who.language), view=None
                )
            return
        except UserError as exc:
            await courier.send(target, Post(capitalised(str(exc))), interaction=interaction, job_ids=job_ids)
            return
        bot.suggestions.forget(who.user_id)  # new avatars: the autocomplete reads them afresh
        post = await courier.result_post(outcome, who.language, late=late, mention=f"<@{who.user_id}>")
        if face_source is not None and outcome.faces[0] > 1 and post.view is not None:
            channel_id, message_id = face_source
            post.view.add_item(FaceSelect(channel_id, message_id, *outcome.faces, who.language))
        await courier.send(target, post, interaction=interaction, job_ids=job_ids)
    finally:
        if not finish.done():
            finish.cancel()
        bot.untrack(who.user_id, pending)
        courier.live.discard(target.group)


# --- the persistent avatar buttons -------------------------------------------------------------------------


class AvatarButton(
    PersistentButton,
    prefix="chibify",
    fields={"action": "reroll|vary|edit|stickers|fav|del|pick[1-4]|again[2-4]", "avatar_id": ID},
):
    """``chibify:<action>:<avatar id>``: see the module docstring."""

    action: str
    avatar_id: str

    def look(self) -> Look:
        action = self.action
        if action.startswith("pick"):
            return Look("button_open_n", emoji="🔍", values={"n": action[4:]})
        if action.startswith("again"):
            return Look("button_again", discord.ButtonStyle.primary, "🔁")
        return _LOOKS[action]

    async def run(self, interaction: discord.Interaction) -> None:
        bot = bot_of(interaction)
        mismatch = owner_mismatch(interaction)  # from the message itself: no database
        if mismatch:
            await interaction.response.send_message(
                t("not_yours", quick_language(interaction)), ephemeral=True
            )
            return
        if self.action == "edit":
            # The modal must be the first answer; the owner is checked when it is submitted.
            await interaction.response.send_modal(edit_modal(self.avatar_id, quick_language(interaction)))
            return
        who = await bot.begin(interaction)
        try:
            await self._act(interaction, who)
        except NotFoundError:
            if mismatch is None:
                await interaction.edit_original_response(content=t("not_yours", who.language))
                return
            raise

    async def _act(self, interaction: discord.Interaction, who: Who) -> None:
        bot = bot_of(interaction)
        studio = bot.studio
        action, avatar_id = self.action, self.avatar_id
        if action == "fav":
            avatar, _ = await studio.show(who.actor, avatar_id)
            view = await studio.favourite(who.actor, avatar_id, not avatar.favourite)
            key = "favourite_on" if view.favourite else "favourite_off"
            await interaction.edit_original_response(content=t(key, who.language, id=avatar_id))
            return
        if action == "del":
            await interaction.edit_original_response(content=await delete_avatar(bot, who, avatar_id))
            return
        if action == "stickers":  # the button of results posted by older versions
            await send_export(interaction, who, [avatar_id], "stickers", 0)
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
        elif action.startswith("again"):
            pending = await studio.submit_reroll(who.actor, avatar_id, count=int(action[5:]), deliver=deliver)
        else:
            pending = await studio.submit_variations(
                who.actor, avatar_id, count=VARIATION_COUNT, deliver=deliver
            )
        await deliver_result(interaction, who, pending)


# --- delete -------------------------------------------------------------------------------------------------


async def delete_avatar(bot: ChibifyBot, who: Who, avatar_id: str) -> str:
    """Delete one of the user's avatars (the Delete button, /delete) and take it off the bot's messages
    that showed it; returns the reply ("Deleted <id>." and what happened to those messages)."""
    removal = await bot.studio.delete(who.actor, avatar_id)
    bot.suggestions.forget(who.user_id)
    removed, redrawn = await take_off_messages(bot, removal, who.language)
    text = t("deleted", who.language, id=removal.avatar.id)
    if removed:
        text += t("removed_messages", who.language, count=removed)
    if redrawn:
        text += t("redrawn_messages", who.language, count=redrawn)
    return text


async def take_off_messages(bot: ChibifyBot, removal: Removal, language: str) -> tuple[int, int]:
    """A message left with no avatar is deleted; a grid that still shows others is re-drawn with them
    (their picture, ids and buttons), or deleted when it cannot be. Returns (deleted, re-drawn)."""
    gone = [m for m in removal.messages if m not in removal.remaining]
    redrawn = 0
    for (channel_id, message_id), others in removal.remaining.items():
        if await redraw_result(bot, channel_id, message_id, others, language):
            redrawn += 1
        else:
            gone.append((channel_id, message_id))
    return await bot.courier.delete_messages(gone), redrawn


async def redraw_result(
    bot: ChibifyBot, channel_id: int, message_id: int, avatars: Sequence[AvatarView], language: str
) -> bool:
    """Edit a result message to show only ``avatars`` (a grid of them, or the one left with a single
    avatar's controls). The text and the embed's other fields stay. False when the message could not be
    read or edited."""
    message = bot.get_partial_messageable(channel_id).get_partial_message(message_id)
    try:
        old = await message.fetch()
    except discord.HTTPException as exc:
        log.info("could not read message %s in %s to re-draw it: %s", message_id, channel_id, exc)
        return False
    images = [await bot.studio.image_bytes(a) for a in avatars]
    if len(images) == 1:
        data, name = images[0], f"chibify-{avatars[0].id}.png"
    else:
        data, name = await asyncio.to_thread(grid, images), "chibify-grid.png"
    embed = _embed_for(old.embeds[0] if old.embeds else None, avatars, language, name)
    try:
        await message.edit(
            embed=embed,
            attachments=[discord.File(io.BytesIO(data), name)],
            view=result_view(avatars, language),
        )
    except discord.HTTPException as exc:
        log.warning("could not re-draw message %s in %s: %s", message_id, channel_id, exc)
        return False
    return True


def _embed_for(
    old: discord.Embed | None, avatars: Sequence[AvatarView], language: str, image_name: str
) -> discord.Embed:
    """The result embed for ``avatars``: the old one's description and fields (what was understood,
    ignored, changed), with the seeds and avatar ids of these avatars and their picture."""
    fresh = result_embed(Outcome(avatars=list(avatars)), language, image_name)
    if old is None:
        return fresh
    replaced = {t(key, lang) for key in ("seed", "avatar_id", "avatar_ids") for lang in ("en", "zh")}
    kept = [f for f in old.fields if f.name not in replaced]
    # the new seeds and ids stand where the old ones did (every field before them is kept)
    at = next((i for i, f in enumerate(old.fields) if f.name in replaced), len(old.fields))
    embed = old.copy()
    embed.clear_fields()
    for each in [*kept[:at], *fresh.fields, *kept[at:]]:
        embed.add_field(name=each.name, value=each.value, inline=bool(each.inline))
    embed.set_image(url=f"attachment://{image_name}")
    return embed


# --- cancel ------------------------------------------------------------------------------------------------


class CancelButton(PersistentButton, prefix="chibify:cancel", fields={"group": "[0-9a-f]{8,40}"}):
    """``chibify:cancel:<request group>``: cancel every unfinished job of the request. A queued job is
    dropped at once; a running one is stopped between steps, or thrown away when it finishes."""

    group: str
    LOOK = Look("button_cancel", discord.ButtonStyle.danger, "✖️")

    async def run(self, interaction: discord.Interaction) -> None:
        bot = bot_of(interaction)
        await bot.defer(interaction, update=True)  # the progress message itself changes when it is done
        language = quick_language(interaction)
        handles = bot.jobs_of(self.group)
        if any(h.deliver is not None and h.deliver.user_id != interaction.user.id for h in handles):
            await interaction.followup.send(t("not_your_job", language), ephemeral=True)
            return
        cancelled = [h for h in handles if not h.done() and await h.cancel()]
        if not cancelled:
            await interaction.followup.send(t("cancel_too_late", language), ephemeral=True)
            return
        if self.group in bot.courier.live:
            return  # the live delivery turns the progress message into "Cancelled" and records it
        await finish_cancelled(interaction, handles, language)


async def finish_cancelled(
    interaction: discord.Interaction, handles: Sequence[JobHandle], language: str
) -> None:
    """No live delivery follows these jobs (the bot restarted since): wait for the cancellations to
    settle, say so on the progress message and record the jobs as delivered, so nothing is sent later."""
    bot = bot_of(interaction)
    await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
    with contextlib.suppress(discord.HTTPException):
        await interaction.edit_original_response(content=t("cancelled", language), view=None)
    await bot.studio.mark_delivered([h.job_id for h in handles], [])


# --- exports -----------------------------------------------------------------------------------------------


def export_label(fmt: str, size: int, language: str) -> str:
    return t(f"fmt_{fmt}", language, size=size)


class ExportSelect(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=rf"chibify:export:(?P<ids>{ID}(?:\.{ID}){{0,3}})",
):
    """``chibify:export:<id>[.<id>...]``: "Download as…" format x size, for one avatar or a whole grid.
    Files stay under the chat's upload limit (``interaction.filesize_limit``): a picture too big at the
    asked size is sent at the largest size that fits, with a note."""

    def __init__(
        self,
        avatars: Sequence[AvatarView] | Sequence[str],
        language: str = "en",
        *,
        row: int | None = None,
    ) -> None:
        ids = [a if isinstance(a, str) else a.id for a in avatars]
        painted = any(not isinstance(a, str) and a.engine != "chibi" for a in avatars)
        choices = [ORIGINAL] if painted else list(EXPORT_CHOICES)
        options = [
            discord.SelectOption(
                label=export_label(fmt, size, language)[:100],
                value=f"{fmt}:{size}",
                emoji=EXPORT_EMOJI[fmt],
                description=(t(f"fmt_desc_{fmt}", language) if fmt in ("pngtuber", "stickers") else None),
            )
            for fmt, size in choices
        ]
        placeholder = (
            t("export_placeholder", language)
            if len(ids) == 1
            else t("export_placeholder_grid", language, count=len(ids))
        )
        super().__init__(
            discord.ui.Select(
                custom_id=f"chibify:export:{'.'.join(ids)}",
                placeholder=placeholder,
                options=options,
                row=row,
            )
        )
        self.ids = ids

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ExportSelect:
        return cls(match["ids"].split("."))

    async def callback(self, interaction: discord.Interaction) -> None:
        async def run() -> None:
            bot = bot_of(interaction)
            if await refused_to_others(interaction):
                return
            who = await bot.begin(interaction)
            data: dict[str, Any] = dict(interaction.data or {})
            value = str((data.get("values") or [""])[0])
            fmt, _, size_text = value.partition(":")
            size = int(size_text) if size_text.isdigit() else 0
            await send_export(interaction, who, self.ids, fmt, size)

        await guarded(interaction, run)


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.0f} MB" if size >= 2**20 else f"{size // 1024} KB"


async def send_export(
    interaction: discord.Interaction, who: Who, avatar_ids: Sequence[str], fmt: str, size: int
) -> None:
    """Export the avatars (deferred already) and send the files in the deferred response: one file per
    avatar, or one zip for sets (stickers, PNGTuber) and for SVG/sets of a grid."""
    from generation import exports

    bot = bot_of(interaction)
    studio = bot.studio
    limit = interaction.filesize_limit
    if fmt == "original":
        files = []
        for avatar_id in avatar_ids:
            avatar, png = await studio.image(who.actor, avatar_id)
            files.append((f"chibify-{avatar.id}.png", png))
        sizes_tried: list[int] = []
    elif fmt not in exports.FORMATS:
        raise BadInput(t("export_unknown", who.language, format=fmt[:20]))
    else:
        sizes = (
            [size] + [s for s in STEP_DOWN if s < size] if size and fmt not in exports.FIXED_SIZE else [512]
        )
        sizes_tried = []
        files = []
        for attempt in sizes:
            sizes_tried.append(attempt)
            files = await _export_files(studio, who, avatar_ids, fmt, attempt)
            if sum(len(data) for _, data in files) <= limit:
                break
    total = sum(len(data) for _, data in files)
    if total > limit:
        await interaction.edit_original_response(
            content=t("export_too_big", who.language, size=_megabytes(total), limit=_megabytes(limit))
        )
        return
    what = export_label(fmt, sizes_tried[-1] if sizes_tried else 0, who.language)
    if len(avatar_ids) == 1:
        text = t("export_ready", who.language, what=what, id=avatar_ids[0])
    else:
        text = t("export_ready_grid", who.language, what=what, count=len(avatar_ids))
    if len(sizes_tried) > 1:
        text += "\n" + t("export_smaller", who.language, size=sizes_tried[-1], limit=_megabytes(limit))
    await interaction.edit_original_response(
        content=text, attachments=[discord.File(io.BytesIO(data), name) for name, data in files]
    )


async def _export_files(
    studio: Any, who: Who, avatar_ids: Sequence[str], fmt: str, size: int
) -> list[tuple[str, bytes]]:
    """(file name, bytes) to upload: a single file as it is, several files zipped."""
    from generation import exports

    per_avatar = [await studio.export(who.actor, avatar_id, fmt, size=size) for avatar_id in avatar_ids]
    if len(per_avatar) == 1 and len(per_avatar[0]) == 1:
        name, data = next(iter(per_avatar[0].items()))
        return [(name.replace("/", "-"), data)]
    if fmt not in exports.SETS and fmt != "svg":
        return [(name.replace("/", "-"), data) for files in per_avatar for name, data in files.items()]
    merged = {name: data for files in per_avatar for name, data in files.items()}
    zipped = await asyncio.to_thread(exports.to_zip, merged)
    stem = avatar_ids[0] if len(avatar_ids) == 1 else f"{len(avatar_ids)}-avatars"
    return [(f"chibify-{stem}-{fmt}.zip", zipped)]


# --- another face of a selfie ------------------------------------------------------------------------------


class FaceSelect(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=r"chibify:face:(?P<channel>[0-9]{1,20}):(?P<message>[0-9]{1,20}):(?P<count>[0-9]{1,2})",
):
    """``chibify:face:<channel>:<message>:<count>``: the photo is read again from the user's own message
    (it was never kept) and face N is drawn."""

    def __init__(
        self, channel_id: int, message_id: int, count: int, used: int = 0, language: str = "en"
    ) -> None:
        count = max(1, min(count, 25))
        options = [
            discord.SelectOption(
                label=t("face_option_used" if n == used else "face_option", language, n=n)[:100],
                value=str(n),
            )
            for n in range(1, count + 1)
        ]
        super().__init__(
            discord.ui.Select(
                custom_id=f"chibify:face:{channel_id}:{message_id}:{count}",
                placeholder=t("face_placeholder", language),
                options=options,
            )
        )
        self.channel_id, self.message_id, self.count = channel_id, message_id, count

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FaceSelect:
        return cls(int(match["channel"]), int(match["message"]), int(match["count"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        async def run() -> None:
            from bot.cogs.create import check_photo, photo_of

            bot = bot_of(interaction)
            if await refused_to_others(interaction):
                return
            who = await bot.begin(interaction)
            data: dict[str, Any] = dict(interaction.data or {})
            face = int(str((data.get("values") or ["1"])[0]))
            try:
                message = await bot.get_partial_messageable(self.channel_id).fetch_message(self.message_id)
            except discord.HTTPException:
                raise BadInput(t("photo_gone", who.language)) from None
            photo = photo_of(message)
            if message.author.id != interaction.user.id or photo is None:
                raise BadInput(t("photo_gone", who.language))
            check_photo(photo, who.language)
            await bot.studio.admissible(who.actor, photos=1)
            raw = await photo.read()
            in_dm = interaction.guild_id is None and isinstance(interaction.channel, discord.DMChannel)
            prompt = message.content.strip()[:300] if in_dm else ""
            try:
                pending = await bot.studio.submit_selfie(
                    who.actor,
                    raw,
                    prompt=prompt,
                    face=face,
                    deliver=delivery_for(interaction, who, public=True if in_dm else None),
                )
            finally:
                del raw  # the photo is not kept
            pending.notes.append(t("photo_not_kept", who.language))
            await deliver_result(interaction, who, pending)

        await guarded(interaction, run)


# --- the edit modal ----------------------------------------------------------------------------------------


EDIT_MODAL_PATTERN = re.compile(rf"chibify:editmodal:(?P<avatar>{ID})")


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
        who = await bot.begin(interaction)
        try:
            pending = await bot.studio.submit_edit(
                who.actor,
                match["avatar"],
                prompt=modal_value(interaction, "change").strip() or None,
                deliver=delivery_for(interaction, who),
            )
        except NotFoundError:
            if owner_mismatch(interaction):
                raise UserError(t("not_yours", who.language)) from None
            raise
        await deliver_result(interaction, who, pending)

    await guarded(interaction, run)
    return True
