"""REST half of the emulator: request recording, schema validation, fault injection and the routes.

Every request under ``/api/v10`` is parsed (JSON or multipart with ``payload_json`` + ``files[n]``),
matched to a route template named as in Discord's OpenAPI spec, validated against that operation's
request-body schema, recorded, and then answered. Responses always carry ``Content-Type:
application/json`` exactly, which is what discord.py checks before parsing a body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from tests.discord.models import EPHEMERAL, LOADING, InteractionHandle, User, iso_now, snowflake
from tests.discord.schema import best_template

if TYPE_CHECKING:
    from tests.discord.emulator import DiscordEmulator

JsonBody = dict[str, Any] | list[Any] | None


@dataclass(frozen=True)
class UploadedFile:
    """A ``files[n]`` part of a multipart request."""

    field: str
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    """One REST request as the emulator saw and answered it."""

    method: str
    path: str
    route: str | None
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    files: list[UploadedFile]
    status: int = 0
    response: Any = None
    schema_errors: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.monotonic)

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status}>"


@dataclass(frozen=True)
class Violation:
    """A request body that broke Discord's schema."""

    method: str
    path: str
    route: str
    errors: list[str]
    body: Any


@dataclass
class Fault:
    """Answer the next ``times`` requests matching (method, route) with ``status``."""

    route: str
    method: str | None
    status: int
    times: int
    retry_after: float
    is_global: bool = False
    code: int = 0  # the JSON error code of a non-429 answer (e.g. 40060 "already acknowledged")

    def matches(self, method: str, route: str | None) -> bool:
        return self.times > 0 and route == self.route and (self.method is None or self.method == method)


class ApiError(Exception):
    """An error answered the way Discord does: ``{"message", "code"[, "errors"]}``."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def unknown(what: str, code: int) -> ApiError:
    return ApiError(404, code, f"Unknown {what}")


UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, UNKNOWN_WEBHOOK, UNKNOWN_INTERACTION = 10003, 10008, 10015, 10062
UNKNOWN_COMMAND, UNKNOWN_USER = 10063, 10013
REQUEST_TOO_LARGE = 40005  # files over the chat's upload limit (``attachment_size_limit``)
MISSING_ACCESS, CANNOT_DM_USER, INVALID_WEBHOOK_TOKEN, ALREADY_ACKNOWLEDGED = 50001, 50007, 50027, 40060


def invalid_webhook_token() -> ApiError:
    """What Discord answers for a webhook call with an interaction token past its 15 minutes."""
    return ApiError(401, INVALID_WEBHOOK_TOKEN, "Invalid Webhook Token")


def refusal(status: int, code: int) -> ApiError:
    """A refused post, with Discord's message for the usual codes."""
    messages = {
        MISSING_ACCESS: "Missing Access",
        CANNOT_DM_USER: "Cannot send messages to this user",
        50013: "Missing Permissions",
    }
    return ApiError(status, code, messages.get(code, f"{status}: refused"))


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers=headers)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)


def _schema_error_tree(errors: list[tuple[str, str]]) -> dict[str, Any]:
    """Discord's nested ``errors`` object (``{"embeds": {"0": {"title": {"_errors": [...]}}}}``)."""
    tree: dict[str, Any] = {}
    for path, message in errors:
        node = tree
        for part in path.replace("[", ".").replace("]", "").strip(".").split("."):
            node = node.setdefault(part or "_body", {})
        node.setdefault("_errors", []).append({"code": "SCHEMA_VALIDATION", "message": message})
    return tree


Handler = Callable[[RecordedRequest], Awaitable[tuple[int, Any]]]


class RestApi:
    """The ``/api/v10`` routes; state lives on the emulator."""

    # Routes that need no bot token (interaction webhooks authenticate with the token in the path).
    _TOKENLESS_PREFIXES = ("/interactions/", "/webhooks/")

    def __init__(self, emulator: DiscordEmulator) -> None:
        self.emu = emulator
        r = self._routes = dict[tuple[str, str], Handler]()
        r["GET", "/users/@me"] = self.get_me
        r["GET", "/users/{user_id}"] = self.get_user
        r["POST", "/users/@me/channels"] = self.create_dm
        r["GET", "/oauth2/applications/@me"] = self.get_application
        r["GET", "/applications/@me"] = self.get_application
        r["GET", "/gateway"] = self.get_gateway
        r["GET", "/gateway/bot"] = self.get_gateway_bot
        for scope in ("/applications/{application_id}", "/applications/{application_id}/guilds/{guild_id}"):
            r["GET", scope + "/commands"] = self.list_commands
            r["PUT", scope + "/commands"] = self.put_commands
            r["POST", scope + "/commands"] = self.create_command
            r["GET", scope + "/commands/{command_id}"] = self.get_command
            r["PATCH", scope + "/commands/{command_id}"] = self.edit_command
            r["DELETE", scope + "/commands/{command_id}"] = self.delete_command
        r["POST", "/interactions/{interaction_id}/{interaction_token}/callback"] = self.interaction_callback
        r["POST", "/webhooks/{webhook_id}/{webhook_token}"] = self.create_followup
        for target in ("@original", "{message_id}"):
            path = "/webhooks/{webhook_id}/{webhook_token}/messages/" + target
            r["GET", path] = self.get_webhook_message
            r["PATCH", path] = self.edit_webhook_message
            r["DELETE", path] = self.delete_webhook_message
        r["GET", "/channels/{channel_id}"] = self.get_channel
        r["GET", "/channels/{channel_id}/messages"] = self.list_channel_messages
        r["POST", "/channels/{channel_id}/messages"] = self.create_channel_message
        r["GET", "/channels/{channel_id}/messages/{message_id}"] = self.get_channel_message
        r["PATCH", "/channels/{channel_id}/messages/{message_id}"] = self.edit_channel_message
        r["DELETE", "/channels/{channel_id}/messages/{message_id}"] = self.delete_channel_message
        r["POST", "/channels/{channel_id}/typing"] = self.typing
        self._templates = sorted({template for _, template in self._routes})

    # --- plumbing -------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        matched = best_template(self._templates, path)
        route, params = matched if matched else (None, {})
        rec = RecordedRequest(
            method=request.method,
            path=path,
            route=route,
            params=params,
            query=dict(request.query),
            headers=dict(request.headers),
            json=body,
            files=files,
        )
        headers: dict[str, str] = {}
        try:
            status, response = await self._answer(rec, request, headers)
        except ApiError as exc:
            status, response = exc.status, exc.body()
        except Exception as exc:  # an emulator bug or a body it cannot digest: fail fast, never a retried 5xx
            self.emu.internal_errors.append(f"{rec.method} {rec.path}: {exc!r}")
            status, response = 400, {"message": f"emulator error: {exc!r}", "code": 0}
        rec.status, rec.response = status, response
        self.emu._record(rec)
        return json_response(status, response, headers)

    async def _read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        if request.content_type == "multipart/form-data":
            payload: Any = None
            files: list[UploadedFile] = []
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                data = await part.read()
                if part.name == "payload_json":
                    payload = json.loads(data)
                else:
                    ctype = part.headers.get("Content-Type")
                    files.append(UploadedFile(part.name or "", part.filename or "", ctype, bytes(data)))
            return payload, files
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            return raw.decode(errors="replace"), []  # not JSON: recorded as text, rejected by the schema

    async def _answer(
        self, rec: RecordedRequest, request: web.Request, headers: dict[str, str]
    ) -> tuple[int, Any]:
        if not rec.path.startswith(self._TOKENLESS_PREFIXES) and rec.route not in {"/gateway"}:
            if request.headers.get("Authorization") != f"Bot {self.emu.token}":
                raise ApiError(401, 0, "401: Unauthorized")
        for fault in self.emu.faults:
            if fault.matches(rec.method, rec.route):
                fault.times -= 1
                if fault.status == 429:
                    headers["Via"] = "1.1 google"
                    headers["Retry-After"] = str(max(1, round(fault.retry_after)))
                    if fault.is_global:
                        headers["X-RateLimit-Global"] = "true"
                    body = {
                        "message": "You are being rate limited.",
                        "retry_after": fault.retry_after,
                        "global": fault.is_global,
                    }
                    return 429, body
                return fault.status, {"message": f"{fault.status}: injected fault", "code": fault.code}
        handler = self._routes.get((rec.method, rec.route or ""))
        if handler is None:
            self.emu.unhandled.append(rec)
            raise ApiError(404, 0, f"404: Not Found (the emulator has no route for {rec.method} {rec.path})")
        if rec.json is not None:
            self._validate(rec)
        uploaded = sum(len(f.data) for f in rec.files)
        if uploaded > self.emu.attachment_size_limit:  # Discord refuses files over the chat's upload limit
            self.emu.oversized_uploads.append(rec)
            raise ApiError(413, REQUEST_TOO_LARGE, "Request entity too large")
        return await handler(rec)

    def _validate(self, rec: RecordedRequest) -> None:
        validator = self.emu.validator
        spec_route = best_template(validator.templates, rec.path)
        if spec_route is None:
            return
        errors = validator.validate(rec.method, spec_route[0], rec.json)
        if not errors:
            return
        rec.schema_errors = [f"{e.path}: {e.message}" for e in errors]
        self.emu.violations.append(
            Violation(rec.method, rec.path, spec_route[0], rec.schema_errors, rec.json)
        )
        raise ApiError(
            400, 50035, "Invalid Form Body", _schema_error_tree([(e.path, e.message) for e in errors])
        )

    # --- users, application, gateway -------------------------------------------------------------------

    async def get_me(self, rec: RecordedRequest) -> tuple[int, Any]:
        return 200, {**self.emu.bot.to_dict(), "verified": True, "mfa_enabled": False, "bot": True}

    async def get_user(self, rec: RecordedRequest) -> tuple[int, Any]:
        user = self.emu.users.get(int(rec.params["user_id"]))
        if user is None:
            raise unknown("User", UNKNOWN_USER)
        return 200, user.to_dict()

    async def create_dm(self, rec: RecordedRequest) -> tuple[int, Any]:
        user = self.emu.users.get(int(rec.json["recipient_id"]))
        if user is None:
            raise unknown("User", UNKNOWN_USER)
        return 200, self.emu.dm_channel(user).to_dict()

    async def get_application(self, rec: RecordedRequest) -> tuple[int, Any]:
        return 200, self.emu.application_dict()

    async def get_gateway(self, rec: RecordedRequest) -> tuple[int, Any]:
        return 200, {"url": str(self.emu.gateway_url)}

    async def get_gateway_bot(self, rec: RecordedRequest) -> tuple[int, Any]:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return 200, {
            "url": str(self.emu.gateway_url),
            "shards": self.emu.recommended_shards,
            "session_start_limit": limit,
        }

    # --- application commands --------------------------------------------------------------------------

    def _command_scope(self, rec: RecordedRequest) -> dict[str, dict[str, Any]]:
        if int(rec.params["application_id"]) != self.emu.application_id:
            raise ApiError(403, 50001, "Missing Access")
        guild_id = int(rec.params["guild_id"]) if "guild_id" in rec.params else None
        return self.emu.commands.setdefault(guild_id, {})

    def _store_command(
        self, rec: RecordedRequest, scope: dict[str, dict[str, Any]], body: dict[str, Any]
    ) -> dict[str, Any]:
        """Store one command; a command with the same name and type keeps its id (as on Discord)."""
        kind = body.get("type", 1)
        same = next((c for c in scope.values() if c["name"] == body["name"] and c["type"] == kind), None)
        command = {
            "default_member_permissions": None,
            "nsfw": False,
            "description": "",
            "options": [],
            **body,
            "id": same["id"] if same else str(snowflake()),
            "type": kind,
            "application_id": str(self.emu.application_id),
            "version": str(snowflake()),
        }
        if "guild_id" in rec.params:
            command["guild_id"] = rec.params["guild_id"]
        scope[command["id"]] = command
        return command

    async def list_commands(self, rec: RecordedRequest) -> tuple[int, Any]:
        return 200, list(self._command_scope(rec).values())

    async def put_commands(self, rec: RecordedRequest) -> tuple[int, Any]:
        """Bulk overwrite: the body replaces the scope's commands (ids kept for unchanged names)."""
        scope = self._command_scope(rec)
        previous = dict(scope)
        stored = [self._store_command(rec, previous, body) for body in rec.json]
        scope.clear()
        scope.update({c["id"]: c for c in stored})
        self.emu.command_syncs += 1
        return 200, stored

    async def create_command(self, rec: RecordedRequest) -> tuple[int, Any]:
        return 201, self._store_command(rec, self._command_scope(rec), rec.json)

    def _get_command(self, rec: RecordedRequest) -> dict[str, Any]:
        command = self._command_scope(rec).get(rec.params["command_id"])
        if command is None:
            raise unknown("application command", UNKNOWN_COMMAND)
        return command

    async def get_command(self, rec: RecordedRequest) -> tuple[int, Any]:
        return 200, self._get_command(rec)

    async def edit_command(self, rec: RecordedRequest) -> tuple[int, Any]:
        command = self._get_command(rec)
        command.update(rec.json)
        return 200, command

    async def delete_command(self, rec: RecordedRequest) -> tuple[int, Any]:
        self._get_command(rec)
        del self._command_scope(rec)[rec.params["command_id"]]
        return 204, None

    # --- interactions --------------------------------------------------------------------------------

    def _interaction(self, interaction_id: str, token: str) -> InteractionHandle:
        handle = self.emu.interactions.get(int(interaction_id))
        if handle is None or handle.token != token or handle.expired:
            raise unknown("interaction", UNKNOWN_INTERACTION)
        return handle

    async def interaction_callback(self, rec: RecordedRequest) -> tuple[int, Any]:
        handle = self._interaction(rec.params["interaction_id"], rec.params["interaction_token"])
        if handle.callback is not None:
            raise ApiError(400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        if time.monotonic() - handle.created > self.emu.callback_deadline:
            self.emu.late_callbacks.append(handle)
            raise unknown("interaction", UNKNOWN_INTERACTION)
        kind: int = rec.json["type"]
        data: dict[str, Any] = rec.json.get("data") or {}
        info: dict[str, Any] = {"id": str(handle.id), "type": handle.type}
        resource: dict[str, Any] | None = None
        if kind in (4, 5):
            flags = (data.get("flags") or 0) & EPHEMERAL | (LOADING if kind == 5 else 0)
            body = data if kind == 4 else {}
            message = self.emu.create_message(
                handle.channel, body, rec.files, author=self.emu.bot, interaction=handle, flags=flags
            )
            handle.original_message_id = int(message["id"])
            info.update(
                response_message_id=message["id"],
                response_message_loading=kind == 5,
                response_message_ephemeral=bool(flags & EPHEMERAL),
            )
            resource = {"type": kind, "message": message}
        elif kind in (6, 7):
            source = handle.message
            if source is None:
                raise ApiError(400, 40004, "Update callbacks need a component interaction")
            handle.original_message_id = int(source["id"])
            if kind == 7:
                message = self.emu.edit_message(int(source["id"]), data, rec.files)
                resource = {"type": kind, "message": message}
        elif kind == 8:
            handle.choices_sent = list(data.get("choices") or [])
        elif kind == 9:
            handle.modal_sent = data
        handle.callback, handle.callback_type = rec, kind
        expire_on_ack = self.emu.expire_on_ack
        if expire_on_ack is True or (callable(expire_on_ack) and expire_on_ack(handle)):
            handle.expire()  # accepted, then the token dies at once: every webhook call now gets 401
        response: dict[str, Any] = {"interaction": info}
        if resource is not None:
            response["resource"] = resource
        return 200, response

    def _webhook_interaction(self, rec: RecordedRequest) -> InteractionHandle:
        handle = next(
            (
                h
                for h in self.emu.interactions.values()
                if h.token == rec.params["webhook_token"]
                and rec.params["webhook_id"] == str(self.emu.application_id)
            ),
            None,
        )
        if handle is None:  # a token never issued (or for another application)
            raise unknown("Webhook", UNKNOWN_WEBHOOK)
        if handle.expired:  # Discord: 401 "Invalid Webhook Token", not 404, once the 15 minutes are up
            raise invalid_webhook_token()
        return handle

    def _webhook_target(self, rec: RecordedRequest, handle: InteractionHandle) -> int:
        target = rec.path.rsplit("/", 1)[1]
        if target == "@original":
            if handle.original_message_id is None:
                raise unknown("Message", UNKNOWN_MESSAGE)
            return handle.original_message_id
        message_id = int(target)
        if message_id not in handle.followup_ids and message_id != handle.original_message_id:
            raise unknown("Message", UNKNOWN_MESSAGE)
        return message_id

    async def create_followup(self, rec: RecordedRequest) -> tuple[int, Any]:
        handle = self._webhook_interaction(rec)
        if handle.callback is None:
            raise unknown("Webhook", UNKNOWN_WEBHOOK)
        flags = (rec.json or {}).get("flags") or 0
        if handle.callback_type == 5 and handle.original_message_id is not None:
            original = self.emu.messages[handle.original_message_id]
            if original["flags"] & LOADING:
                # Discord turns the first followup after a "thinking" defer into the original response.
                message = self.emu.edit_message(
                    handle.original_message_id, rec.json or {}, rec.files, finish=True
                )
                handle.followup_ids.append(handle.original_message_id)
                return (200, message) if rec.query.get("wait") in ("true", "1") else (204, None)
        message = self.emu.create_message(
            handle.channel,
            rec.json or {},
            rec.files,
            author=self.emu.bot,
            interaction=handle,
            flags=flags & EPHEMERAL,
        )
        handle.followup_ids.append(int(message["id"]))
        return (200, message) if rec.query.get("wait") in ("true", "1") else (204, None)

    async def get_webhook_message(self, rec: RecordedRequest) -> tuple[int, Any]:
        handle = self._webhook_interaction(rec)
        return 200, self.emu.messages[self._webhook_target(rec, handle)]

    async def edit_webhook_message(self, rec: RecordedRequest) -> tuple[int, Any]:
        handle = self._webhook_interaction(rec)
        return 200, self.emu.edit_message(
            self._webhook_target(rec, handle), rec.json or {}, rec.files, finish=True
        )

    async def delete_webhook_message(self, rec: RecordedRequest) -> tuple[int, Any]:
        handle = self._webhook_interaction(rec)
        self.emu.delete_message(self._webhook_target(rec, handle))
        return 204, None

    # --- channels ------------------------------------------------------------------------------------

    def _channel(self, rec: RecordedRequest) -> Any:
        channel = self.emu.channels.get(int(rec.params["channel_id"]))
        if channel is None:
            raise unknown("Channel", UNKNOWN_CHANNEL)
        return channel

    def _channel_message(self, rec: RecordedRequest) -> dict[str, Any]:
        channel = self._channel(rec)
        message = self.emu.messages.get(int(rec.params["message_id"]))
        if message is None or message["channel_id"] != str(channel.id) or message["flags"] & EPHEMERAL:
            # Ephemeral messages live only behind their interaction token, never in the channel.
            raise unknown("Message", UNKNOWN_MESSAGE)
        return message

    async def get_channel(self, rec: RecordedRequest) -> tuple[int, Any]:
        return 200, self._channel(rec).to_dict()

    async def list_channel_messages(self, rec: RecordedRequest) -> tuple[int, Any]:
        channel = self._channel(rec)
        limit = int(rec.query.get("limit", 50))
        messages = [
            m
            for m in self.emu.messages.values()
            if m["channel_id"] == str(channel.id) and not m["flags"] & EPHEMERAL
        ]
        return 200, sorted(messages, key=lambda m: int(m["id"]), reverse=True)[:limit]

    async def create_channel_message(self, rec: RecordedRequest) -> tuple[int, Any]:
        channel = self._channel(rec)
        refused = self.emu.refused_posts.get(channel.id)
        if refused is not None:
            raise refusal(*refused)
        body = rec.json or {}
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            # Discord: with enforce_nonce, a message the same author sent with the same nonce in the last
            # few minutes is returned again instead of creating a second one
            key = (channel.id, str(nonce))
            earlier = self.emu.nonces.get(key)
            if earlier is not None and earlier in self.emu.messages:
                return 200, self.emu.messages[earlier]
        message = self.emu.create_message(
            channel, body, rec.files, author=self.emu.bot, flags=body.get("flags") or 0
        )
        if nonce is not None and body.get("enforce_nonce"):
            self.emu.nonces[(channel.id, str(nonce))] = int(message["id"])
        return 200, message

    async def get_channel_message(self, rec: RecordedRequest) -> tuple[int, Any]:
        return 200, self._channel_message(rec)

    async def edit_channel_message(self, rec: RecordedRequest) -> tuple[int, Any]:
        message = self._channel_message(rec)
        if message["author"]["id"] != str(self.emu.bot.id) and set(rec.json or {}) - {"flags"}:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        return 200, self.emu.edit_message(int(message["id"]), rec.json or {}, rec.files)

    async def delete_channel_message(self, rec: RecordedRequest) -> tuple[int, Any]:
        self.emu.delete_message(int(self._channel_message(rec)["id"]))
        return 204, None

    async def typing(self, rec: RecordedRequest) -> tuple[int, Any]:
        self._channel(rec)
        return 204, None


def user_message_dict(
    author: User, channel_id: int, content: str, attachments: list[dict[str, Any]]
) -> dict[str, Any]:
    """A message a (human) user posts, as Discord sends it in MESSAGE_CREATE and ``resolved.messages``."""
    return {
        "id": str(snowflake()),
        "channel_id": str(channel_id),
        "author": author.to_dict(),
        "content": content,
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments,
        "embeds": [],
        "components": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
    }
