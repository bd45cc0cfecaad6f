"""A local Discord API emulator for end-to-end tests of the real discord.py client.

One aiohttp server on 127.0.0.1 (random port) serves the REST API under ``/api/v10``, the gateway
WebSocket at ``/gateway`` (and ``/resume``, the ``resume_gateway_url`` it hands out) and a tiny CDN at
``/cdn/...`` for attachments. Point discord.py at it by patching only ``discord.http.Route.BASE`` and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (:meth:`DiscordEmulator.patch_discord`).

Tests drive users through helpers that dispatch INTERACTION_CREATE / MESSAGE_CREATE and return an
:class:`~tests.discord.models.InteractionHandle` to await what the bot did. See docs/discord_emulator.md.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import mimetypes
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from tests.discord.gateway import DIRECT_MESSAGES, GUILD_MESSAGES, MESSAGE_CONTENT, Gateway
from tests.discord.models import (
    ALL_PERMISSIONS,
    ATTACHMENT_SIZE_LIMIT,
    EPHEMERAL,
    LOADING,
    Attachment,
    Channel,
    Guild,
    InteractionHandle,
    User,
    iso_now,
    member_dict,
    snowflake,
)
from tests.discord.oauth import OAuthProvider
from tests.discord.rest import (
    CANNOT_DM_USER,
    MISSING_ACCESS,
    UNKNOWN_MESSAGE,
    Fault,
    RecordedRequest,
    RestApi,
    UploadedFile,
    Violation,
    unknown,
    user_message_dict,
)
from tests.discord.schema import OpenAPIValidator

T = TypeVar("T")
ClientT = TypeVar("ClientT", bound=discord.Client)

# Interaction types and the application-command option types the emulator infers from Python values.
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN, USER, CHANNEL, NUMBER, ATTACHMENT = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    10,
    11,
)


def interaction_token(interaction_id: int) -> str:
    """A token shaped like Discord's: url-safe base64 of ``interaction:<id>:<secret>``, no padding (so it
    begins ``aW50ZXJhY3Rpb246``, and log scrubbers that know real tokens know these)."""
    raw = f"interaction:{interaction_id}:{secrets.token_urlsafe(48)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None, None


def _walk_components(components: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every component in a (possibly nested: rows, containers, sections, labels) component tree."""
    for component in components:
        yield component
        yield from _walk_components(component.get("components") or [])
        for key in ("accessory", "component"):
            if isinstance(component.get(key), Mapping):
                yield from _walk_components([component[key]])


class DiscordEmulator:
    """The fake Discord: state, the HTTP/WebSocket server, user-side helpers and fault knobs.

    Knobs: :meth:`fail_next` (429 with ``retry_after`` + ``Via``, or 5xx on a route),
    :meth:`InteractionHandle.expire` / :meth:`expire` (token expiry -> webhook calls 401 50027, callbacks
    404 10062), ``expire_on_ack`` (tokens die right after their callback is accepted),
    :meth:`refuse_posts` (a channel or DM refuses the bot's posts: 403 50001 / 50007),
    ``callback_deadline`` (seconds a bot has to answer an interaction; later -> 404 10062),
    ``gateway.send_reconnect`` (op 7), ``gateway.invalidate_session`` (op 9), ``gateway.close`` (e.g. 4000).
    """

    def __init__(
        self,
        *,
        token: str = "emulator-bot-token",
        recommended_shards: int = 1,
        heartbeat_interval_ms: float = 41_250.0,
        callback_deadline: float = 3.0,
    ) -> None:
        self.token = token
        self.recommended_shards = recommended_shards
        self.callback_deadline = callback_deadline
        self.application_id = snowflake()
        self.application_flags = 0
        self.bot = User(self.application_id, "Chibify", bot=True)
        self.users: dict[int, User] = {self.bot.id: self.bot}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.commands: dict[int | None, dict[str, dict[str, Any]]] = {None: {}}
        self.nonces: dict[tuple[int, str], int] = {}  # (channel, nonce) -> message id (enforce_nonce)
        self.command_syncs = 0
        self.interactions: dict[int, InteractionHandle] = {}
        self.cdn: dict[str, tuple[bytes, str | None]] = {}
        self.requests: list[RecordedRequest] = []
        self.violations: list[Violation] = []
        self.unhandled: list[RecordedRequest] = []
        self.late_callbacks: list[InteractionHandle] = []
        # What interactions say the upload limit is (``interaction.filesize_limit``); bigger uploads are
        # refused with 413 40005 and recorded in ``oversized_uploads``.
        self.attachment_size_limit = ATTACHMENT_SIZE_LIMIT
        self.oversized_uploads: list[RecordedRequest] = []
        self.internal_errors: list[str] = []
        self.faults: list[Fault] = []
        # Channel id -> (status, code) answered to the bot's posts there (see refuse_posts).
        self.refused_posts: dict[int, tuple[int, int]] = {}
        # True, or a predicate on the handle: the token expires as soon as its callback is accepted.
        self.expire_on_ack: bool | Callable[[InteractionHandle], bool] = False
        self.validator = OpenAPIValidator.load()
        self.rest = RestApi(self)
        self.gateway = Gateway(self, heartbeat_interval_ms)
        self.oauth = OAuthProvider(self)  # "Sign in with Discord" (tests/discord/oauth.py)
        self._changed = asyncio.Event()
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0
        # A default world: one guild with two channels and two members.
        self.alice = self.add_user("alice", global_name="Alice")
        self.bob = self.add_user("bob", global_name="Bob")
        self.guild = self.add_guild("Chibify Test Guild", owner=self.alice, members=[self.alice, self.bob])

    # --- world building -------------------------------------------------------------------------------

    def add_user(self, username: str, *, global_name: str | None = None, bot: bool = False) -> User:
        user = User(snowflake(), username, global_name, bot)
        self.users[user.id] = user
        for guild in list(self.guilds.values())[:1]:
            guild.members.append(user)
        return user

    def add_guild(
        self,
        name: str,
        *,
        owner: User,
        members: Sequence[User] = (),
        channels: Sequence[str] = ("general", "art"),
        locale: str = "en-US",
    ) -> Guild:
        """A guild the bot is in; guilds added before the client connects arrive in GUILD_CREATE."""
        guild = Guild(snowflake(), name, owner.id, locale, members=list(members))
        for position, channel_name in enumerate(channels):
            channel = Channel(snowflake(), 0, channel_name, guild.id, position=position)
            guild.channels.append(channel)
            self.channels[channel.id] = channel
        self.guilds[guild.id] = guild
        return guild

    def dm_channel(self, user: User) -> Channel:
        """The DM channel between ``user`` and the bot (created on first use, like POST /users/@me/channels)."""
        for channel in self.channels.values():
            if channel.is_dm and channel.recipient is not None and channel.recipient.id == user.id:
                return channel
        channel = Channel(snowflake(), 1, recipient=user)
        self.channels[channel.id] = channel
        return channel

    async def create_channel(self, guild: Guild, name: str, *, nsfw: bool = False) -> Channel:
        """A new text channel (``nsfw``: age-restricted); a connected client hears CHANNEL_CREATE."""
        channel = Channel(snowflake(), 0, name, guild.id, position=len(guild.channels), nsfw=nsfw)
        guild.channels.append(channel)
        self.channels[channel.id] = channel
        await self._announce("CHANNEL_CREATE", channel.to_dict(), guild.id)
        return channel

    async def create_thread(self, parent: Channel, name: str, *, owner: User | None = None) -> Channel:
        """A public thread (type 11) under ``parent``; a connected client hears THREAD_CREATE."""
        assert parent.guild_id is not None, "threads live in guild channels"
        thread = Channel(
            snowflake(), 11, name, parent.guild_id, recipient=owner, nsfw=parent.nsfw, parent_id=parent.id
        )
        self.guilds[parent.guild_id].channels.append(thread)
        self.channels[thread.id] = thread
        await self._announce("THREAD_CREATE", {**thread.to_dict(), "newly_created": True}, parent.guild_id)
        return thread

    def group_dm(self, owner: User, name: str = "friends") -> Channel:
        """A group DM the bot is not in: only a user-installed app answers there (interaction context 2),
        and the bot's own posts there are refused (403 50001)."""
        channel = Channel(snowflake(), 3, name, recipient=owner)
        self.channels[channel.id] = channel
        self.refused_posts[channel.id] = (403, MISSING_ACCESS)
        return channel

    async def _announce(self, event: str, data: dict[str, Any], guild_id: int) -> None:
        if self.gateway.by_shard.get(self.gateway.shard_for(guild_id)) is not None:
            await self.dispatch_event(event, data, guild_id=guild_id)
        self._notify()

    def application_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.application_id),
            "name": self.bot.username,
            "description": "Chibi avatars (emulated)",
            "icon": None,
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "bot": self.bot.to_dict(),
            "owner": self.alice.to_dict(),
            "team": None,
            "verify_key": "0" * 64,
            "flags": self.application_flags,
            "summary": "",
            "tags": [],
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "approximate_guild_count": len(self.guilds),
        }

    def upload(self, filename: str, data: bytes, content_type: str | None = None) -> Attachment:
        """A file a user uploads; its URL is served by the emulator's CDN route with exactly ``data``."""
        attachment_id = snowflake()
        content_type = content_type or mimetypes.guess_type(filename)[0]
        path = f"/cdn/attachments/{attachment_id}/{filename}"
        self.cdn[path] = (data, content_type)
        width, height = _image_size(data)
        return Attachment(attachment_id, filename, data, content_type, self.base_url + path, width, height)

    def attachment_bytes(self, attachment: Mapping[str, Any]) -> bytes:
        """The bytes behind an attachment dict of a stored message (what the bot uploaded)."""
        return self.cdn[str(yarl.URL(attachment["url"]).path)][0]

    # --- server lifecycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> yarl.URL:
        return yarl.URL(f"ws://127.0.0.1:{self.port}/gateway")

    @property
    def resume_gateway_url(self) -> yarl.URL:
        return yarl.URL(f"ws://127.0.0.1:{self.port}/resume")

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.oauth.add_routes(app)  # before the REST catch-all: it matches in order
        app.router.add_route("*", "/api/v10/{tail:.*}", self.rest.handle)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/resume", self.gateway.handle)
        app.router.add_get("/cdn/{tail:.*}", self._serve_cdn)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._changed = asyncio.Event()

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_cdn(self, request: web.Request) -> web.Response:
        found = self.cdn.get(request.path)
        if found is None:
            return web.Response(status=404)
        data, content_type = found
        return web.Response(body=data, headers={"Content-Type": content_type or "application/octet-stream"})

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py at the emulator (REST base and default gateway), restoring both afterwards."""
        old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self.gateway_url
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    @contextlib.asynccontextmanager
    async def running(self, client: ClientT, *, within: float = 10.0) -> AsyncIterator[ClientT]:
        """Start ``client`` against the emulator, wait until it is ready with its guilds cached, close it after."""
        task = asyncio.create_task(client.start(self.token), name="emulated-discord-client")

        def ready() -> bool:
            if task.done():
                task.result()  # surface a login/connect failure right away
            return client.is_ready() and all(client.get_guild(g) is not None for g in self.guilds)

        try:
            await self.wait_until(ready, within, "the client to become ready")
            yield client
        finally:
            await client.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, within)

    # --- recording and waiting ------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _record(self, rec: RecordedRequest) -> None:
        self.requests.append(rec)
        self._notify()

    async def wait_until(self, predicate: Callable[[], T | None], within: float, what: str) -> T:
        """Return ``predicate()``'s first truthy value; re-checked on every emulator event (and every 20 ms,
        for conditions on the client side). Fails the test with ``what`` after ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = ", ".join(repr(r) for r in self.requests[-8:])
                raise AssertionError(f"timed out after {within}s waiting for {what}; last requests: {recent}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.02))

    async def wait_for_request(
        self,
        method: str | None = None,
        route: str | None = None,
        *,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        since: int = 0,
        within: float = 5.0,
    ) -> RecordedRequest:
        """The first recorded request (from index ``since``) matching method, route template and predicate."""

        def find() -> RecordedRequest | None:
            for rec in self.requests[since:]:
                if method is not None and rec.method != method:
                    continue
                if route is not None and rec.route != route:
                    continue
                if predicate is not None and not predicate(rec):
                    continue
                return rec
            return None

        return await self.wait_until(find, within, f"request {method or '*'} {route or '*'}")

    def take_violations(self) -> list[Violation]:
        """Return and forget the schema violations so far (for tests that provoke one on purpose)."""
        found, self.violations = self.violations, []
        return found

    def assert_clean(self) -> None:
        """Fail if any body broke the schema, any route was unknown, or any callback came too late."""
        problems = [f"schema violation {v.method} {v.path}: {'; '.join(v.errors)}" for v in self.violations]
        problems += [f"no emulated route for {r.method} {r.path}" for r in self.unhandled]
        problems += [
            f"interaction {h.id} answered after {self.callback_deadline}s" for h in self.late_callbacks
        ]
        if problems:
            raise AssertionError("Discord emulator saw problems:\n" + "\n".join(problems))

    # --- fault knobs ----------------------------------------------------------------------------------

    def fail_next(
        self,
        route: str,
        *,
        method: str | None = None,
        status: int = 429,
        times: int = 1,
        retry_after: float = 0.05,
        is_global: bool = False,
        code: int = 0,
    ) -> Fault:
        """Answer the next ``times`` requests on ``route`` (a template such as
        ``"/channels/{channel_id}/messages"``) with ``status``: 429 carries ``retry_after`` and a ``Via``
        header (discord.py retries), 5xx are retried by discord.py after 1 s, 3 s, ... of backoff; other
        statuses answer ``{"code": code}`` (e.g. 400 with 40060 "already acknowledged")."""
        fault = Fault(route, method, status, times, retry_after, is_global, code)
        self.faults.append(fault)
        return fault

    def expire(self, handle: InteractionHandle | str) -> InteractionHandle:
        """Expire an interaction token now (a handle, or the token string a bot stored): its webhook
        calls (followups, ``@original`` and message GET/PATCH/DELETE) then answer 401 50027 "Invalid
        Webhook Token", its callback 404 10062, as Discord does after 15 minutes."""
        if isinstance(handle, str):
            found = next((h for h in self.interactions.values() if h.token == handle), None)
            if found is None:
                raise ValueError("no interaction with that token in the emulator")
            handle = found
        handle.expire()
        self._notify()
        return handle

    def refuse_posts(self, channel: Channel, *, status: int = 403, code: int | None = None) -> None:
        """The bot's posts (``POST /channels/{id}/messages``) in ``channel`` are refused from now on:
        by default 403 50001 "Missing Access" in a guild channel (the bot lost its access) and 403 50007
        "Cannot send messages to this user" in a DM (the user closed their DMs). Interaction responses
        and followups are not affected, as on Discord."""
        if code is None:
            code = CANNOT_DM_USER if channel.is_dm else MISSING_ACCESS
        self.refused_posts[channel.id] = (status, code)

    def allow_posts(self, channel: Channel) -> None:
        """Undo :meth:`refuse_posts`."""
        self.refused_posts.pop(channel.id, None)

    def process_env(self) -> dict[str, str]:
        """Environment for a bot in another process: run it as ``python -m tests.discord.launch MODULE``
        (see that module) with these variables and it talks to this emulator."""
        return {"DISCORD_EMULATOR_API": self.api_base, "DISCORD_EMULATOR_GATEWAY": str(self.gateway_url)}

    # --- messages (shared by REST routes and user helpers) --------------------------------------------

    def _attachments_from_files(
        self, body: Mapping[str, Any], files: Sequence[UploadedFile]
    ) -> list[dict[str, Any]]:
        described = {str(a.get("id")): a for a in body.get("attachments") or []}
        result = []
        for index, file in enumerate(files):
            meta = described.get(str(index), {})
            upload = self.upload(meta.get("filename") or file.filename, file.data, file.content_type)
            data = upload.to_dict()
            if meta.get("description"):
                data["description"] = meta["description"]
            result.append(data)
        return result

    def create_message(
        self,
        channel: Channel,
        body: Mapping[str, Any],
        files: Sequence[UploadedFile] = (),
        *,
        author: User,
        interaction: InteractionHandle | None = None,
        flags: int = 0,
    ) -> dict[str, Any]:
        message = user_message_dict(author, channel.id, body.get("content") or "", [])
        message.update(
            embeds=list(body.get("embeds") or []),
            components=list(body.get("components") or []),
            attachments=self._attachments_from_files(body, files),
            flags=flags,
            tts=bool(body.get("tts")),
        )
        if channel.guild_id is not None:
            message["guild_id"] = str(channel.guild_id)
        if interaction is not None:
            message["type"] = 20 if interaction.type == APPLICATION_COMMAND else 0
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
            message["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": interaction.user.to_dict(),
                "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
            }
        self.messages[int(message["id"])] = message
        self._notify()
        return message

    def edit_message(
        self,
        message_id: int,
        body: Mapping[str, Any],
        files: Sequence[UploadedFile] = (),
        *,
        finish: bool = False,
    ) -> dict[str, Any]:
        message = self.messages.get(message_id)
        if message is None:
            raise unknown("Message", UNKNOWN_MESSAGE)
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        if "attachments" in body:
            keep = {str(a.get("id")) for a in body["attachments"] or []}
            message["attachments"] = [a for a in message["attachments"] if a["id"] in keep]
        message["attachments"] = message["attachments"] + self._attachments_from_files(body, files)
        if finish:
            message["flags"] &= ~LOADING
        if "flags" in body and body["flags"] is not None:
            message["flags"] = body["flags"] | (message["flags"] & EPHEMERAL)  # ephemeral cannot change
        message["edited_timestamp"] = iso_now()
        self._notify()
        return message

    def delete_message(self, message_id: int) -> None:
        self.messages.pop(message_id, None)
        self._notify()

    def channel_messages(self, channel: Channel) -> list[dict[str, Any]]:
        """The messages currently in ``channel``, oldest first."""
        return sorted(
            (m for m in self.messages.values() if m["channel_id"] == str(channel.id)),
            key=lambda m: int(m["id"]),
        )

    async def wait_for_message(
        self,
        channel: Channel,
        predicate: Callable[[dict[str, Any]], bool] = lambda m: True,
        *,
        after: int = 0,
        from_bot: bool = True,
        within: float = 5.0,
    ) -> dict[str, Any]:
        """The first message in ``channel`` with id > ``after`` (by the bot, unless ``from_bot`` is False)."""

        def find() -> dict[str, Any] | None:
            for message in self.channel_messages(channel):
                if int(message["id"]) <= after:
                    continue
                if from_bot and message["author"]["id"] != str(self.bot.id):
                    continue
                if predicate(message):
                    return message
            return None

        return await self.wait_until(find, within, f"a message in channel {channel.id}")

    # --- interactions ---------------------------------------------------------------------------------

    def _where(
        self, user: User, guild: Guild | None, channel: Channel | None, dm: bool
    ) -> tuple[Guild | None, Channel]:
        if dm:
            return None, self.dm_channel(user)
        if channel is not None:
            return (self.guilds[channel.guild_id] if channel.guild_id else None), channel
        guild = guild or self.guild
        return guild, guild.default_channel

    async def _dispatch_interaction(
        self,
        kind: int,
        data: dict[str, Any],
        user: User,
        guild: Guild | None,
        channel: Channel,
        *,
        locale: str = "en-US",
        message: dict[str, Any] | None = None,
        wait_connected: bool = True,
    ) -> InteractionHandle:
        interaction_id = snowflake()
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel": channel.to_dict(with_permissions=guild is not None),
            "channel_id": str(channel.id),
            "token": interaction_token(interaction_id),
            "version": 1,
            "app_permissions": ALL_PERMISSIONS,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if guild is not None:
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": guild.locale, "features": []},
                guild_locale=guild.locale,
                member=member_dict(user, with_permissions=True),
                authorizing_integration_owners={"0": str(guild.id)},
                context=0,
            )
        elif channel.type == 3:  # a group DM: only a user-installed app is there (context 2)
            payload.update(user=user.to_dict(), authorizing_integration_owners={"1": str(user.id)}, context=2)
        else:
            payload.update(user=user.to_dict(), authorizing_integration_owners={"0": "0"}, context=1)
        if message is not None:
            payload["message"] = message
        handle = InteractionHandle(self, payload, user=user, channel=channel)
        self.interactions[interaction_id] = handle
        await self.dispatch_event(
            "INTERACTION_CREATE", payload, guild_id=guild.id if guild else None, wait_connected=wait_connected
        )
        handle.created = time.monotonic()
        return handle

    async def dispatch_event(
        self, event: str, data: dict[str, Any], *, guild_id: int | None = None, wait_connected: bool = True
    ) -> int:
        """Dispatch any gateway event to the shard owning ``guild_id`` (shard 0 for DMs).

        With ``wait_connected`` it first waits for a live session; otherwise it may land in the backlog
        of a disconnected session and be replayed on RESUME."""
        shard_id = self.gateway.shard_for(guild_id)
        if wait_connected:
            session = await self.gateway.wait_live(shard_id)
        else:
            found = self.gateway.by_shard.get(shard_id)
            if found is None:
                raise RuntimeError("no gateway session to dispatch to")
            session = found
        return await self.gateway.dispatch(session, event, data)

    def _command(self, name: str, kind: int, guild: Guild | None) -> dict[str, Any] | None:
        scopes = ([self.commands.get(guild.id, {})] if guild else []) + [self.commands[None]]
        for scope in scopes:
            for command in scope.values():
                if command["name"] == name and command["type"] == kind:
                    return command
        return None

    def _option_value(
        self, value: Any, kind: int, resolved: dict[str, dict[str, Any]], guild: Guild | None
    ) -> Any:
        if isinstance(value, Attachment):
            resolved.setdefault("attachments", {})[str(value.id)] = value.to_dict()
            return str(value.id)
        if isinstance(value, User):
            resolved.setdefault("users", {})[str(value.id)] = value.to_dict()
            if guild is not None:
                member = member_dict(value, with_permissions=True)
                del member["user"]
                resolved.setdefault("members", {})[str(value.id)] = member
            return str(value.id)
        if isinstance(value, Channel):
            resolved.setdefault("channels", {})[str(value.id)] = {
                **value.to_dict(with_permissions=True),
                "permissions": ALL_PERMISSIONS,
            }
            return str(value.id)
        return value

    @staticmethod
    def _infer_type(value: Any) -> int:
        if isinstance(value, Attachment):
            return ATTACHMENT
        if isinstance(value, User):
            return USER
        if isinstance(value, Channel):
            return CHANNEL
        if isinstance(value, bool):
            return BOOLEAN
        if isinstance(value, int):
            return INTEGER
        if isinstance(value, float):
            return NUMBER
        return STRING

    def _build_options(
        self,
        definitions: list[dict[str, Any]] | None,
        path: list[str],
        values: Mapping[str, Any],
        resolved: dict[str, dict[str, Any]],
        guild: Guild | None,
        focused: str | None,
    ) -> list[dict[str, Any]]:
        by_name = {d["name"]: d for d in definitions or []}
        if path:
            head, rest = path[0], path[1:]
            definition = by_name.get(head)
            if definitions is not None and definition is None:
                raise ValueError(f"the synced command has no subcommand {head!r}")
            kind = definition["type"] if definition else (SUB_COMMAND_GROUP if rest else SUB_COMMAND)
            inner = definition.get("options") if definition else None
            return [
                {
                    "name": head,
                    "type": kind,
                    "options": self._build_options(inner, rest, values, resolved, guild, focused),
                }
            ]
        if definitions is not None:
            unknown = set(values) - set(by_name)
            if unknown:
                raise ValueError(f"the synced command has no option(s) {sorted(unknown)}")
            missing = [d["name"] for d in definitions if d.get("required") and d["name"] not in values]
            if missing and focused is None:
                raise ValueError(f"required option(s) missing: {missing}")
        options = []
        for name, value in values.items():
            definition = by_name.get(name)
            kind = definition["type"] if definition else self._infer_type(value)
            option: dict[str, Any] = {"name": name, "type": kind}
            if name == focused:
                option.update(value=str(value), focused=True)
            else:
                option["value"] = self._option_value(value, kind, resolved, guild)
            options.append(option)
        return options

    def _command_data(
        self,
        name: str,
        kind: int,
        guild: Guild | None,
        *,
        options: Mapping[str, Any] | None = None,
        focused: str | None = None,
    ) -> dict[str, Any]:
        # Slash commands may name a subcommand path ("profile name"); context-menu names may contain spaces.
        top, *path = name.split() if kind == 1 else [name]
        command = self._command(top, kind, guild)
        data: dict[str, Any] = {
            "id": command["id"] if command else str(snowflake()),
            "name": top,
            "type": kind,
        }
        if command is not None and "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        if kind == 1:
            resolved: dict[str, dict[str, Any]] = {}
            definitions = command.get("options", []) if command else None
            data["options"] = self._build_options(definitions, path, options or {}, resolved, guild, focused)
            if resolved:
                data["resolved"] = resolved
        return data

    async def slash(
        self,
        user: User,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        guild: Guild | None = None,
        channel: Channel | None = None,
        dm: bool = False,
        locale: str = "en-US",
        wait_connected: bool = True,
    ) -> InteractionHandle:
        """``user`` runs ``/name`` ("avatar", or "group sub" for subcommands) with ``options``.

        Values: str/int/float/bool, :class:`User`, :class:`Channel`, or an :class:`Attachment` from
        :meth:`upload` (put in ``resolved.attachments``, its URL served by the CDN route). Option types come
        from the synced command when there is one (unknown or missing required options then raise)."""
        where_guild, where = self._where(user, guild, channel, dm)
        data = self._command_data(name, 1, where_guild, options=options)
        return await self._dispatch_interaction(
            APPLICATION_COMMAND, data, user, where_guild, where, locale=locale, wait_connected=wait_connected
        )

    async def autocomplete(
        self,
        user: User,
        name: str,
        focused: str,
        value: str,
        options: Mapping[str, Any] | None = None,
        *,
        guild: Guild | None = None,
        channel: Channel | None = None,
        dm: bool = False,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """``user`` is typing ``value`` into option ``focused`` of ``/name``; await ``handle.choices()``."""
        where_guild, where = self._where(user, guild, channel, dm)
        data = self._command_data(
            name, 1, where_guild, options={**(options or {}), focused: value}, focused=focused
        )
        return await self._dispatch_interaction(AUTOCOMPLETE, data, user, where_guild, where, locale=locale)

    async def message_context(
        self, user: User, name: str, message: dict[str, Any], *, locale: str = "en-US"
    ) -> InteractionHandle:
        """``user`` picks the message context-menu command ``name`` on ``message`` (from :meth:`post_message`)."""
        channel = self.channels[int(message["channel_id"])]
        guild = self.guilds.get(channel.guild_id) if channel.guild_id else None
        data = self._command_data(name, 3, guild)
        data.update(target_id=message["id"], resolved={"messages": {message["id"]: message}})
        return await self._dispatch_interaction(
            APPLICATION_COMMAND, data, user, guild, channel, locale=locale
        )

    async def user_context(
        self, user: User, name: str, target: User, *, guild: Guild | None = None, locale: str = "en-US"
    ) -> InteractionHandle:
        """``user`` picks the user context-menu command ``name`` on ``target``."""
        where_guild, where = self._where(user, guild, None, False)
        data = self._command_data(name, 2, where_guild)
        resolved: dict[str, dict[str, Any]] = {}
        self._option_value(target, USER, resolved, where_guild)
        data.update(target_id=str(target.id), resolved=resolved)
        return await self._dispatch_interaction(
            APPLICATION_COMMAND, data, user, where_guild, where, locale=locale
        )

    def _component(self, message_id: int, custom_id: str) -> tuple[dict[str, Any], Mapping[str, Any]]:
        message = self.messages.get(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in the emulator")
        for component in _walk_components(message["components"]):
            if component.get("custom_id") == custom_id:
                if component.get("disabled"):
                    raise ValueError(f"component {custom_id!r} is disabled")
                return message, component
        found = [c.get("custom_id") for c in _walk_components(message["components"]) if c.get("custom_id")]
        raise ValueError(f"message {message_id} has no component {custom_id!r} (it has {found})")

    async def _component_interaction(
        self,
        user: User,
        message_id: int,
        custom_id: str,
        extra: dict[str, Any],
        locale: str,
        check: Callable[[Mapping[str, Any]], None],
    ) -> InteractionHandle:
        message, component = self._component(message_id, custom_id)
        check(component)
        channel = self.channels[int(message["channel_id"])]
        guild = self.guilds.get(channel.guild_id) if channel.guild_id else None
        data = {"custom_id": custom_id, "component_type": component["type"], **extra}
        return await self._dispatch_interaction(
            MESSAGE_COMPONENT, data, user, guild, channel, locale=locale, message=message
        )

    async def click(
        self, user: User, message_id: int | str, custom_id: str, *, locale: str = "en-US"
    ) -> InteractionHandle:
        """``user`` clicks the button ``custom_id`` on a stored message (it must exist and be enabled)."""

        def check(component: Mapping[str, Any]) -> None:
            if component["type"] != 2:
                raise ValueError(f"{custom_id!r} is not a button")

        return await self._component_interaction(user, int(message_id), custom_id, {}, locale, check)

    async def select(
        self,
        user: User,
        message_id: int | str,
        custom_id: str,
        values: Sequence[str],
        *,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """``user`` picks ``values`` in the select menu ``custom_id`` (string selects: values must be options)."""

        def check(component: Mapping[str, Any]) -> None:
            if component["type"] not in (3, 5, 6, 7, 8):
                raise ValueError(f"{custom_id!r} is not a select menu")
            low, high = component.get("min_values", 1), component.get("max_values", 1)
            if not low <= len(values) <= high:
                raise ValueError(f"{len(values)} values outside min_values..max_values {low}..{high}")
            if component["type"] == 3:
                allowed = {o["value"] for o in component.get("options", [])}
                if set(values) - allowed:
                    raise ValueError(
                        f"values {sorted(set(values) - allowed)} are not options of {custom_id!r}"
                    )

        return await self._component_interaction(
            user, int(message_id), custom_id, {"values": list(values)}, locale, check
        )

    async def modal_submit(
        self, user: User, opened_by: InteractionHandle, values: Mapping[str, str], *, locale: str = "en-US"
    ) -> InteractionHandle:
        """``user`` fills the modal the bot opened in answer to ``opened_by`` and submits it.

        ``values`` maps text-input custom_ids to text; required inputs and length limits are checked."""
        modal = opened_by.modal_sent
        if modal is None:
            raise ValueError(f"{opened_by!r} was not answered with a modal")
        inputs = {c["custom_id"]: c for c in _walk_components(modal["components"]) if c.get("type") == 4}
        if set(values) - set(inputs):
            raise ValueError(f"the modal has no text input(s) {sorted(set(values) - set(inputs))}")
        for custom_id, spec in inputs.items():
            text = values.get(custom_id, "")
            if spec.get("required", True) and not text:
                raise ValueError(f"required text input {custom_id!r} left empty")
            if text and not spec.get("min_length", 0) <= len(text) <= spec.get("max_length", 4000):
                raise ValueError(f"text for {custom_id!r} breaks its length limits")

        def submitted(component: Mapping[str, Any]) -> dict[str, Any]:
            if component["type"] == 1:
                return {"type": 1, "components": [submitted(c) for c in component["components"]]}
            if component["type"] == 18:
                return {
                    "type": 18,
                    "id": component.get("id", 0),
                    "component": submitted(component["component"]),
                }
            if component["type"] == 4:
                return {
                    "type": 4,
                    "custom_id": component["custom_id"],
                    "value": values.get(component["custom_id"], ""),
                }
            return {"type": component["type"], "id": component.get("id", 0)}

        data = {"custom_id": modal["custom_id"], "components": [submitted(c) for c in modal["components"]]}
        guild = self.guilds.get(opened_by.channel.guild_id) if opened_by.channel.guild_id else None
        return await self._dispatch_interaction(
            MODAL_SUBMIT, data, user, guild, opened_by.channel, locale=locale, message=opened_by.message
        )

    # --- user messages ----------------------------------------------------------------------------------

    async def post_message(
        self, author: User, channel: Channel, content: str = "", attachments: Sequence[Attachment] = ()
    ) -> dict[str, Any]:
        """``author`` posts a message in ``channel``; MESSAGE_CREATE reaches the bot if its intents allow
        (guild messages need GUILD_MESSAGES, DMs DIRECT_MESSAGES; guild content needs MESSAGE_CONTENT)."""
        message = user_message_dict(author, channel.id, content, [a.to_dict() for a in attachments])
        if channel.guild_id is not None:
            message["guild_id"] = str(channel.guild_id)
            message["member"] = {k: v for k, v in member_dict(author).items() if k != "user"}
        self.messages[int(message["id"])] = message
        session = self.gateway.by_shard.get(self.gateway.shard_for(channel.guild_id))
        if session is not None:
            needed = DIRECT_MESSAGES if channel.is_dm else GUILD_MESSAGES
            if session.intents & needed:
                event = dict(message)
                if not channel.is_dm and not session.intents & MESSAGE_CONTENT:
                    event.update(content="", attachments=[], embeds=[], components=[])
                await self.dispatch_event("MESSAGE_CREATE", event, guild_id=channel.guild_id)
        self._notify()
        return message

    async def dm_message(
        self, user: User, content: str = "", attachments: Sequence[Attachment] = ()
    ) -> dict[str, Any]:
        """``user`` sends the bot a DM; await the reply with ``wait_for_message(emulator.dm_channel(user), ...)``."""
        return await self.post_message(user, self.dm_channel(user), content, attachments)
