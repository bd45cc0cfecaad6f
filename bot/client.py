"""The Discord client: a commands.Bot (AutoShardedBot when a shard count is configured) built around the App.

``setup_hook`` loads the cogs, registers the persistent DynamicItems, sets the translator and syncs the
command tree only when its definition hash changed (stored in ``data_dir/command_hash.json``), to the dev
guild when one is configured, else globally. One ``tree.on_error`` turns errors into short ephemeral replies.

Every command can be installed to a server or to a user's account and used in servers, the bot's DMs and
private channels (group DMs), except ``/config`` (servers only). Handlers acknowledge first
(:meth:`ChibifyMixin.begin`) and read the database after: Discord gives an interaction 3 seconds.
Interactions Discord no longer takes an answer to (10062 unknown interaction, 40060 already acknowledged)
end quietly with one log line.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import App
from bot.delivery import Courier
from bot.errors import UserError
from bot.i18n import ChibifyTranslator, language_of, t
from bot.messages import capitalised
from bot.studio import Actor, Cooldown, Pending, Studio
from bot.suggest import Suggestions
from bot.views.library import ForgetButton, HistoryNav, HistoryOpen
from bot.views.results import AvatarButton, CancelButton, ExportSelect, FaceSelect, handle_edit_modal

log = logging.getLogger(__name__)

COGS = ("bot.cogs.create", "bot.cogs.library", "bot.cogs.admin")
HASH_FILE = "command_hash.json"
# Discord's answers for an interaction that can no longer be answered.
UNKNOWN_INTERACTION = 10062
ALREADY_ACKNOWLEDGED = 40060
PREFERENCES_TTL_S = 300.0


class InteractionGone(Exception):
    """Discord takes no answer to this interaction any more (10062 / 40060): nothing to reply to."""


def interaction_gone(exc: BaseException) -> bool:
    return isinstance(exc, InteractionGone) or (
        isinstance(exc, discord.HTTPException) and exc.code in (UNKNOWN_INTERACTION, ALREADY_ACKNOWLEDGED)
    )


@dataclass(frozen=True)
class Who:
    """The person behind an interaction: studio actor, reply language and result visibility."""

    actor: Actor
    user_id: int
    language: str
    public: bool


class ChibifyMixin:
    """Everything the cogs and views use; mixed into Bot or AutoShardedBot."""

    app: App
    tree: app_commands.CommandTree[Any]

    def _init_chibify(
        self,
        app: App,
        *,
        cooldown: tuple[int, float],
        progress_first_s: float,
        progress_every_s: float,
        sweep_every_s: float,
    ) -> None:
        self.app = app
        self.progress_first_s = progress_first_s
        self.progress_every_s = progress_every_s
        self.active: dict[int, list[Pending]] = {}
        self.courier = Courier(self, sweep_every_s=sweep_every_s)  # type: ignore[arg-type]
        self.suggestions = Suggestions(app.studio)
        self._preferences: dict[int, tuple[float, dict[str, Any]]] = {}
        app.studio.cooldown = Cooldown(*cooldown)
        self._background: set[asyncio.Task[Any]] = set()
        self.synced = False
        self.tree.on_error = self.on_tree_error  # type: ignore[method-assign]

    @property
    def studio(self) -> Studio:
        return self.app.studio

    # --- people and intake ----------------------------------------------------------------------------

    async def who(self, interaction: discord.Interaction) -> Who:
        """The studio actor for this interaction: language and visibility from the user's settings (cached
        for a few minutes), the channel's rules (a thread follows its parent; age-restricted or not)."""
        uid = interaction.user.id
        prefs = await self.preferences(uid)
        language = language_of(interaction.locale, prefs["language"])
        channel = interaction.channel
        parent_id = channel.parent_id if isinstance(channel, discord.Thread) else None
        is_nsfw = getattr(channel, "is_nsfw", None)
        actor = Actor(
            discord_id=uid,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            language=language,
            parent_channel_id=parent_id,
            age_restricted=bool(is_nsfw()) if callable(is_nsfw) else False,
        )
        return Who(actor, uid, language, bool(prefs["public_results"]))

    async def preferences(self, user_id: int) -> dict[str, Any]:
        cached = self._preferences.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < PREFERENCES_TTL_S:
            return cached[1]
        prefs = await self.studio.preferences(Actor(discord_id=user_id))
        self._preferences[user_id] = (time.monotonic(), prefs)
        return prefs

    def forget_preferences(self, user_id: int) -> None:
        self._preferences.pop(user_id, None)

    def cached_language(self, interaction: discord.Interaction) -> str:
        """The reader's language without the database: the cached setting, else the Discord locale."""
        cached = self._preferences.get(interaction.user.id)
        return language_of(interaction.locale, cached[1]["language"] if cached else None)

    async def defer(self, interaction: discord.Interaction, *, update: bool = False) -> None:
        """Acknowledge now: "thinking…" (ephemeral), or with ``update`` a silent acknowledgement of a
        component whose own message changes later. Raises :class:`InteractionGone` when Discord no longer
        takes an answer."""
        if interaction.response.is_done():
            return
        try:
            if update:
                await interaction.response.defer()
            else:
                await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as exc:
            if interaction_gone(exc):
                raise InteractionGone(str(exc)) from None
            raise

    async def begin(self, interaction: discord.Interaction, *, update: bool = False) -> Who:
        """Defer first, then read who is asking (the database): the 3-second rule."""
        await self.defer(interaction, update=update)
        return await self.who(interaction)

    def jobs_of(self, group: str) -> list[Any]:
        """The unfinished or just-finished jobs of one request (live ones, then those recovered at start)."""
        handles = [h for pendings in self.active.values() for pending in pendings for h in pending.handles]
        handles += list(self.app.recovered)
        return [h for h in handles if h.deliver is not None and h.deliver.group == group]

    def zh_tw_note(self, interaction: discord.Interaction, language: str) -> str:
        """Traditional Chinese readers get simplified Chinese, and are told so."""
        if language == "zh" and str(interaction.locale) == "zh-TW":
            return t("zh_tw_note", "zh")
        return ""

    def track(self, user_id: int, pending: Pending) -> None:
        self.active.setdefault(user_id, []).append(pending)

    def untrack(self, user_id: int, pending: Pending) -> None:
        items = self.active.get(user_id, [])
        if pending in items:
            items.remove(pending)
        if not items:
            self.active.pop(user_id, None)

    def spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    # --- errors ---------------------------------------------------------------------------------------

    async def on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await self.report_error(interaction, error)

    async def report_error(self, interaction: discord.Interaction, error: BaseException) -> None:
        original = getattr(error, "original", None) or error
        if interaction_gone(original):
            log.info("%s can no longer be answered (%s); dropped", _describe(interaction), original)
            return
        language = self.cached_language(interaction)
        if isinstance(original, UserError):
            message = capitalised(str(original))
        elif isinstance(original, app_commands.NoPrivateMessage):
            message = t("guild_only", language)
        elif isinstance(original, app_commands.MissingPermissions):
            message = t("admins_only", language)
        elif isinstance(original, app_commands.AppCommandError) and not isinstance(
            original, app_commands.CommandInvokeError
        ):
            message = str(original)
        else:
            ref = secrets.token_hex(3).upper()
            log.error("unexpected error (ref %s) in %s", ref, _describe(interaction), exc_info=original)
            message = t("error", language, ref=ref)
        try:
            if not interaction.response.is_done():
                await interaction.response.send_message(message, ephemeral=True)
            elif interaction.response.type == discord.InteractionResponseType.deferred_message_update:
                await interaction.followup.send(message, ephemeral=True)  # keep the message it came from
            else:
                await interaction.edit_original_response(
                    content=message, embed=None, attachments=[], view=None
                )
        except discord.HTTPException as exc:
            if interaction_gone(exc):
                log.info("%s can no longer be answered (%s)", _describe(interaction), exc)
            else:
                log.warning("could not report an error to the user: %s", exc)

    # --- command sync ---------------------------------------------------------------------------------

    async def sync_if_changed(self, data_dir: Path, dev_guild_id: int | None) -> bool:
        """Sync the tree only when its (translated) definition changed since the last sync."""
        tree = self.tree
        translator = tree.translator
        assert translator is not None
        guild = discord.Object(dev_guild_id) if dev_guild_id else None
        if guild is not None:
            tree.copy_global_to(guild=guild)
        commands_ = tree.get_commands(guild=guild)
        payload = [await c.get_translated_payload(tree, translator) for c in commands_]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
        client: Any = self
        scope = f"{client.application_id}:{'guild:' + str(dev_guild_id) if dev_guild_id else 'global'}"
        path = data_dir / HASH_FILE
        try:
            stored = json.loads(await asyncio.to_thread(path.read_text))
        except (OSError, ValueError):
            stored = {}
        if stored.get(scope) == digest:
            log.info("commands unchanged (%s); not syncing", scope)
            return False
        await tree.sync(guild=guild)
        stored[scope] = digest
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_text, json.dumps(stored, indent=1))
        log.info("synced %d commands (%s)", len(payload), scope)
        self.synced = True
        return True

    async def _chibify_setup(self) -> None:
        client: Any = self
        for extension in COGS:
            await client.load_extension(extension)
        client.add_dynamic_items(
            AvatarButton, CancelButton, ExportSelect, FaceSelect, HistoryNav, HistoryOpen, ForgetButton
        )
        await self.tree.set_translator(ChibifyTranslator())
        settings = self.app.settings
        await self.sync_if_changed(settings.data_dir, settings.dev_guild_id)
        client_: Any = self
        self.spawn(self.courier.run_sweeps(self.app.recovered, client_.wait_until_ready), "delivery-sweeps")

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Modal submissions the view store does not know (opened before a restart) and the ones it does:
        the edit modal is answered here only, from its custom_id."""
        if interaction.type == discord.InteractionType.modal_submit:
            await handle_edit_modal(interaction)


def _describe(interaction: discord.Interaction) -> str:
    command = interaction.command.qualified_name if interaction.command else None
    data: dict[str, Any] = dict(interaction.data or {})
    custom_id = data.get("custom_id")
    return f"interaction {interaction.id} ({command or custom_id or interaction.type.name})"


def _intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.dm_messages = True  # selfies sent to the bot in DM; no privileged intent needed
    return intents


_OPTIONS: dict[str, Any] = {
    "command_prefix": commands.when_mentioned,
    "help_command": None,
    "guild_ready_timeout": 0,
    "chunk_guilds_at_startup": False,
    "member_cache_flags": discord.MemberCacheFlags.none(),
    # Installable to servers and to users' accounts; usable in servers, the bot's DMs and group DMs
    # (commands that make no sense there narrow this, e.g. /config).
    "allowed_installs": app_commands.AppInstallationType(guild=True, user=True),
    "allowed_contexts": app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True),
}


class ChibifyBot(ChibifyMixin, commands.Bot):
    def __init__(
        self,
        app: App,
        *,
        cooldown: tuple[int, float] = (4, 20.0),
        progress_first_s: float = 0.5,
        progress_every_s: float = 1.5,
        sweep_every_s: float = 30.0,
        **options: Any,
    ) -> None:
        super().__init__(intents=_intents(), **{**_OPTIONS, **self._client_options(app), **options})
        self._init_chibify(
            app,
            cooldown=cooldown,
            progress_first_s=progress_first_s,
            progress_every_s=progress_every_s,
            sweep_every_s=sweep_every_s,
        )

    def _client_options(self, app: App) -> dict[str, Any]:
        return {}

    async def setup_hook(self) -> None:
        await self._chibify_setup()


class ShardedChibifyBot(ChibifyBot, commands.AutoShardedBot):
    """The same bot over several gateway connections (``CHIBIFY_SHARD_COUNT``)."""

    def _client_options(self, app: App) -> dict[str, Any]:
        return {"shard_count": app.settings.shard_count}


def build_bot(app: App, **options: Any) -> ChibifyBot | ShardedChibifyBot:
    """AutoShardedBot when ``settings.shard_count`` is set, a plain Bot otherwise."""
    if app.settings.shard_count:
        return ShardedChibifyBot(app, **options)
    return ChibifyBot(app, **options)
