"""The Discord client: a commands.Bot (AutoShardedBot when a shard count is configured) built around the App.

``setup_hook`` loads the cogs, registers the persistent DynamicItems, sets the translator and syncs the
command tree only when its definition hash changed (stored in ``data_dir/command_hash.json``), to the dev
guild when one is configured, else globally. One ``tree.on_error`` turns errors into short ephemeral replies.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import App
from bot.errors import UserError
from bot.i18n import ChibifyTranslator, language_of, t
from bot.render import result_embed
from bot.studio import Actor, Outcome, Pending, Studio
from bot.views.library import ForgetButton, HistoryNav, HistoryOpen
from bot.views.results import AvatarButton, result_files, result_view
from generation.service import JobHandle

log = logging.getLogger(__name__)

COGS = ("bot.cogs.create", "bot.cogs.library", "bot.cogs.admin")
HASH_FILE = "command_hash.json"


@dataclass(frozen=True)
class Who:
    """The person behind an interaction: studio actor, reply language and result visibility."""

    actor: Actor
    user_id: int
    language: str
    public: bool


class Cooldown:
    """``rate`` generation requests per ``per_s`` seconds per user (sliding window)."""

    def __init__(self, rate: int, per_s: float) -> None:
        self.rate, self.per_s = rate, per_s
        self._hits: dict[int, deque[float]] = {}

    def retry_after(self, user_id: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault(user_id, deque())
        while hits and now - hits[0] >= self.per_s:
            hits.popleft()
        if len(hits) >= self.rate:
            return self.per_s - (now - hits[0])
        hits.append(now)
        return 0.0


class ChibifyMixin:
    """Everything the cogs and views use; mixed into Bot or AutoShardedBot."""

    app: App
    tree: app_commands.CommandTree[Any]

    def _init_chibify(
        self, app: App, *, cooldown: tuple[int, float], progress_first_s: float, progress_every_s: float
    ) -> None:
        self.app = app
        self.cooldown = Cooldown(*cooldown)
        self.progress_first_s = progress_first_s
        self.progress_every_s = progress_every_s
        self.active: dict[int, list[Pending]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.synced = False
        self.tree.on_error = self.on_tree_error  # type: ignore[method-assign]

    @property
    def studio(self) -> Studio:
        return self.app.studio

    # --- people and intake ----------------------------------------------------------------------------

    async def who(self, interaction: discord.Interaction) -> Who:
        uid = interaction.user.id
        prefs = await self.studio.preferences(Actor(discord_id=uid))
        language = language_of(interaction.locale, prefs["language"])
        actor = Actor(
            discord_id=uid,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            language=language,
        )
        return Who(actor, uid, language, bool(prefs["public_results"]))

    def check_intake_user(self, who: Who, limit: int | None = None) -> None:
        """Per-user cooldown and in-flight limit, with friendly messages."""
        wait = self.cooldown.retry_after(who.user_id)
        if wait > 0:
            raise UserError(t("cooldown", who.language, seconds=max(1, round(wait))))
        in_flight = sum(len(p.handles) for p in self.active.get(who.user_id, []))
        if limit is not None and in_flight >= limit:
            raise UserError(t("limit", who.language, count=in_flight, limit=limit))

    async def check_intake(self, interaction: discord.Interaction, who: Who) -> dict[str, Any] | None:
        """Guild rules (allowed channels, per-user queue limit) then the user's cooldown; returns the config."""
        config = None
        limit = None
        if interaction.guild_id is not None:
            config = await self.studio.guild_config(interaction.guild_id)
            allowed = config["allowed_channels"]
            if allowed and interaction.channel_id not in allowed:
                channels = " ".join(f"<#{c}>" for c in allowed)
                raise UserError(t("channel_not_allowed", who.language, channels=channels))
            limit = config["max_queued_per_user"]
            daily = config["per_user_daily_limit"]
            if daily and await self.studio.jobs_today(who.actor, interaction.guild_id) >= daily:
                raise UserError(t("daily_limit", who.language, limit=daily))
        self.check_intake_user(who, limit)
        return config

    def deliver_info(self, interaction: discord.Interaction, who: Who) -> dict[str, Any]:
        """Where a job's result goes if this process dies before delivering it (stored with the job)."""
        return {
            "user_id": who.user_id,
            "channel_id": interaction.channel_id,
            "public": who.public,
            "language": who.language,
        }

    def track(self, user_id: int, pending: Pending) -> None:
        self.active.setdefault(user_id, []).append(pending)

    def untrack(self, user_id: int, pending: Pending) -> None:
        items = self.active.get(user_id, [])
        if pending in items:
            items.remove(pending)
        if not items:
            self.active.pop(user_id, None)

    def forget_user(self, user_id: int) -> None:
        self.active.pop(user_id, None)

    # --- delivery without a token ------------------------------------------------------------------------

    async def post_fallback(
        self,
        *,
        user_id: int,
        channel_id: int | None,
        public: bool,
        content: str,
        embed: discord.Embed | None = None,
        file: discord.File | None = None,
        view: discord.ui.View | None = None,
    ) -> None:
        """Post to the channel with a mention (public results) or DM the user (private, or no channel)."""
        client: Any = self
        kwargs: dict[str, Any] = {"content": content, "allowed_mentions": discord.AllowedMentions(users=True)}
        if embed is not None:
            kwargs["embed"] = embed
        if file is not None:
            kwargs["file"] = file
        if view is not None:
            kwargs["view"] = view
        if public and channel_id is not None:
            try:
                await client.get_partial_messageable(channel_id).send(**kwargs)
                return
            except discord.HTTPException as exc:
                log.warning("could not post to channel %s (%s); sending a DM", channel_id, exc)
                if file is not None:
                    file.reset()
        user = client.get_user(user_id) or await client.fetch_user(user_id)
        await user.send(**kwargs)

    async def deliver_recovered(self, handle: JobHandle) -> None:
        """A job queued before a restart: post its result where ``handle.deliver`` says."""
        info = handle.deliver or {}
        user_id = info.get("user_id")
        if not isinstance(user_id, int):
            return
        language = str(info.get("language") or "en")
        mention = f"<@{user_id}>"
        public = bool(info.get("public"))
        channel_id = info.get("channel_id")
        try:
            result = await handle.result()
        except Exception as exc:
            await self.post_fallback(
                user_id=user_id,
                channel_id=channel_id,
                public=public,
                content=t("recovered_failed", language, mention=mention, reason=str(exc)),
            )
            return
        public_id = (result.stored or {}).get("public_id")
        if not public_id:
            return
        actor = Actor(discord_id=user_id, language=language)
        avatar, _ = await self.studio.image(actor, public_id)
        outcome = Outcome(avatars=[avatar])
        who = Who(actor, user_id, language, public)
        data, name = await result_files(self, who, outcome)  # type: ignore[arg-type]
        import io

        await self.post_fallback(
            user_id=user_id,
            channel_id=channel_id,
            public=public,
            content=t("recovered", language, mention=mention),
            embed=result_embed(outcome, language, name),
            file=discord.File(io.BytesIO(data), name),
            view=result_view([avatar], language),
        )

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
        language = language_of(interaction.locale)
        if isinstance(original, UserError):
            message = str(original)
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
            else:
                await interaction.edit_original_response(
                    content=message, embed=None, attachments=[], view=None
                )
        except discord.HTTPException as exc:
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
        client.add_dynamic_items(AvatarButton, HistoryNav, HistoryOpen, ForgetButton)
        await self.tree.set_translator(ChibifyTranslator())
        settings = self.app.settings
        await self.sync_if_changed(settings.data_dir, settings.dev_guild_id)
        for handle in self.app.recovered:
            self.spawn(self._deliver_when_ready(handle), f"recovered-job-{handle.job_id}")

    async def _deliver_when_ready(self, handle: JobHandle) -> None:
        client: Any = self
        await client.wait_until_ready()
        await self.deliver_recovered(handle)


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
}


class ChibifyBot(ChibifyMixin, commands.Bot):
    def __init__(
        self,
        app: App,
        *,
        cooldown: tuple[int, float] = (4, 20.0),
        progress_first_s: float = 0.5,
        progress_every_s: float = 1.5,
        **options: Any,
    ) -> None:
        super().__init__(intents=_intents(), **{**_OPTIONS, **self._client_options(app), **options})
        self._init_chibify(
            app, cooldown=cooldown, progress_first_s=progress_first_s, progress_every_s=progress_every_s
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
