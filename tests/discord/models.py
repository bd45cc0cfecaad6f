"""The emulated Discord world: users, guilds, channels, uploads and interaction handles.

Everything here renders itself as the JSON Discord would send (``to_dict``); ids are real snowflakes
(timestamp-based) so discord.py's ``created_at`` and interaction expiry maths behave as in production.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.discord.emulator import DiscordEmulator
    from tests.discord.rest import RecordedRequest

DISCORD_EPOCH_MS = 1_420_070_400_000
ALL_PERMISSIONS = str((1 << 51) - 1)
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

# Message flags and interaction callback types used by the emulator.
EPHEMERAL = 1 << 6
LOADING = 1 << 7

_counter = itertools.count()


def snowflake() -> int:
    """A fresh, unique snowflake for "now" (timestamp, then a process-wide increment)."""
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (next(_counter) & 0x3FFFFF)


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class User:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }


@dataclass
class Channel:
    """A guild text channel (type 0), a DM with ``recipient`` (type 1), a group DM owned by ``recipient``
    (type 3, see ``DiscordEmulator.group_dm``) or a public thread under ``parent_id`` (type 11). ``nsfw``:
    an age-restricted channel (a thread inherits its parent's)."""

    id: int
    type: int = 0
    name: str | None = None
    guild_id: int | None = None
    recipient: User | None = None
    position: int = 0
    nsfw: bool = False
    parent_id: int | None = None

    @property
    def is_dm(self) -> bool:
        return self.type == 1

    @property
    def is_thread(self) -> bool:
        return self.type in (10, 11, 12)

    def to_dict(self, *, with_permissions: bool = False) -> dict[str, Any]:
        if self.type == 3:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": 3,
                "recipients": [self.recipient.to_dict()],
                "owner_id": str(self.recipient.id),
                "name": self.name,
                "icon": None,
                "last_message_id": None,
                "flags": 0,
            }
        if self.is_thread:
            assert self.parent_id is not None and self.guild_id is not None
            thread: dict[str, Any] = {
                "id": str(self.id),
                "type": self.type,
                "guild_id": str(self.guild_id),
                "parent_id": str(self.parent_id),
                "owner_id": str(self.recipient.id) if self.recipient else "0",
                "name": self.name,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "message_count": 0,
                "member_count": 1,
                "flags": 0,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": iso_now(),
                    "locked": False,
                },
            }
            if with_permissions:
                thread["permissions"] = ALL_PERMISSIONS
            return thread
        if self.is_dm:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": 1,
                "recipients": [self.recipient.to_dict()],
                "last_message_id": None,
                "flags": 0,
            }
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "topic": None,
            "nsfw": self.nsfw,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }
        if with_permissions:
            data["permissions"] = ALL_PERMISSIONS
        return data


def member_dict(user: User, *, with_permissions: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user": user.to_dict(),
        "nick": None,
        "avatar": None,
        "roles": [],
        "joined_at": iso_now(),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }
    if with_permissions:
        data["permissions"] = ALL_PERMISSIONS
    return data


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    locale: str = "en-US"
    channels: list[Channel] = field(default_factory=list)
    members: list[User] = field(default_factory=list)

    @property
    def default_channel(self) -> Channel:
        return self.channels[0]

    def to_create_payload(self, bot: User) -> dict[str, Any]:
        """The GUILD_CREATE body: a full, available guild with its channels, @everyone and members."""
        members = [bot, *(m for m in self.members if m.id != bot.id)]
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_progress_bar_enabled": False,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "preferred_locale": self.locale,
            "features": [],
            "roles": [
                {
                    "id": str(self.id),
                    "name": "@everyone",
                    "permissions": "2248473465835073",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "joined_at": iso_now(),
            "large": False,
            "unavailable": False,
            "member_count": len(members),
            "members": [member_dict(m) for m in members],
            "channels": [c.to_dict() for c in self.channels if not c.is_thread],
            "threads": [c.to_dict() for c in self.channels if c.is_thread],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass
class Attachment:
    """A file a user uploads (slash-command attachment option, message attachment); served by the CDN route."""

    id: int
    filename: str
    data: bytes
    content_type: str | None
    url: str
    width: int | None = None
    height: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": self.url,
            "proxy_url": self.url,
        }
        if self.content_type is not None:
            data["content_type"] = self.content_type
        if self.width is not None and self.height is not None:
            data["width"], data["height"] = self.width, self.height
        return data


class InteractionHandle:
    """One interaction the emulator dispatched, and everything the bot did with its token.

    Await :meth:`response` for the callback, :meth:`original` for the (edited) original message,
    :meth:`followup` for the n-th followup, :meth:`choices` / :meth:`modal` for autocomplete and modals.
    """

    def __init__(
        self, emulator: DiscordEmulator, payload: dict[str, Any], *, user: User, channel: Channel
    ) -> None:
        self.emulator = emulator
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.user = user
        self.channel = channel
        self.created = time.monotonic()
        self.expired = False
        self.callback: RecordedRequest | None = None
        self.callback_type: int | None = None
        self.original_message_id: int | None = None
        self.followup_ids: list[int] = []
        self.choices_sent: list[dict[str, Any]] | None = None
        self.modal_sent: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<InteractionHandle id={self.id} type={self.type} callback_type={self.callback_type}>"

    @property
    def message(self) -> dict[str, Any] | None:
        """The message a component interaction came from (None for commands)."""
        return self.payload.get("message")

    def expire(self) -> None:
        """Expire the token now, as Discord does after 15 minutes: a callback then answers 404 10062
        "Unknown interaction"; followups and ``@original`` / message GET, PATCH, DELETE answer 401 50027
        "Invalid Webhook Token"."""
        self.expired = True

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every REST request made with this interaction's token, oldest first."""
        return [r for r in self.emulator.requests if self.token in r.path]

    async def response(self, within: float = 5.0) -> RecordedRequest:
        """The accepted callback request (POST .../callback answered 200)."""
        await self.emulator.wait_until(lambda: self.callback is not None, within, f"callback for {self!r}")
        assert self.callback is not None
        return self.callback

    async def original(self, within: float = 5.0, *, finished: bool = True) -> dict[str, Any]:
        """The original response message; with ``finished`` wait until it is no longer "thinking"."""

        def ready() -> dict[str, Any] | None:
            if self.original_message_id is None:
                return None
            message = self.emulator.messages.get(self.original_message_id)
            if message is None or (finished and message["flags"] & LOADING):
                return None
            return message

        return await self.emulator.wait_until(ready, within, f"original response of {self!r}")

    async def followup(self, index: int = 0, within: float = 5.0) -> dict[str, Any]:
        """The ``index``-th followup message (0 = first), as currently stored (edits included)."""
        await self.emulator.wait_until(
            lambda: len(self.followup_ids) > index, within, f"followup #{index} of {self!r}"
        )
        return self.emulator.messages[self.followup_ids[index]]

    async def choices(self, within: float = 5.0) -> list[dict[str, Any]]:
        """The autocomplete choices the bot answered with."""
        return await self.emulator.wait_until(lambda: self.choices_sent, within, f"choices for {self!r}")

    async def modal(self, within: float = 5.0) -> dict[str, Any]:
        """The modal (callback type 9 data) the bot opened."""
        return await self.emulator.wait_until(lambda: self.modal_sent, within, f"modal for {self!r}")

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The original response (if any) and followups, as stored now."""
        ids = ([self.original_message_id] if self.original_message_id else []) + self.followup_ids
        return [self.emulator.messages[i] for i in ids if i in self.emulator.messages]
