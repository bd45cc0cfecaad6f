"""The guilds repository: per-server settings, created with defaults on first use.

Every function takes an :class:`AsyncSession`; the caller owns the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict, Unpack, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Guild, PromptPolicy
from storage.refs import INT64_MAX, check_json_text, check_text, is_int

__all__ = ["GuildChanges", "get_guild", "get_or_create_guild", "update_guild"]


def _check_guild_id(guild_id: int) -> None:
    if not is_int(guild_id) or not 0 < guild_id <= INT64_MAX:
        raise ValueError(f"invalid guild id {guild_id!r}")


async def get_guild(session: AsyncSession, guild_id: int) -> Guild | None:
    _check_guild_id(guild_id)
    return await session.get(Guild, guild_id)


async def get_or_create_guild(session: AsyncSession, guild_id: int) -> Guild:
    """The guild's settings row, created with defaults on first use (race-safe like users)."""
    _check_guild_id(guild_id)
    guild = await session.get(Guild, guild_id)
    if guild is not None:
        return guild
    try:
        async with session.begin_nested():
            guild = Guild(id=guild_id)
            session.add(guild)
        return guild
    except IntegrityError:
        guild = await session.get(Guild, guild_id, populate_existing=True)
        if guild is None:
            raise
        return guild


class GuildChanges(TypedDict, total=False):
    """Settings :func:`update_guild` can change; absent keys keep their value."""

    allowed_channels: Iterable[int]
    per_user_daily_limit: int | None
    max_queued_per_user: int | None
    prompt_policy: PromptPolicy | str
    engine: str | None
    settings: Mapping[str, Any]


async def update_guild(session: AsyncSession, guild_id: int, **changes: Unpack[GuildChanges]) -> Guild:
    """Change a guild's settings, creating the row if needed.

    ``allowed_channels`` empty means "every channel"; ``None`` limits mean "no limit"; ``settings``
    replaces the extras dict wholesale and must be JSON-serialisable.
    """
    guild = await get_or_create_guild(session, guild_id)
    for name, value in changes.items():
        if name == "allowed_channels":
            channels = list(cast("Iterable[int]", value))
            if not all(is_int(c) and 0 < c <= INT64_MAX for c in channels):
                raise ValueError("allowed_channels must be channel ids (positive ints)")
            guild.allowed_channels = sorted(set(channels))
        elif name in ("per_user_daily_limit", "max_queued_per_user"):
            if value is not None and (not is_int(value) or cast(int, value) < 0):
                raise ValueError(f"{name} must be None or a non-negative int")
            setattr(guild, name, value)
        elif name == "prompt_policy":
            guild.prompt_policy = PromptPolicy(cast(str, value))
        elif name == "engine":
            if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 64):
                raise ValueError(f"invalid engine {value!r}")
            check_text(name, cast("str | None", value))
            guild.engine = cast("str | None", value)
        elif name == "settings":
            extras = dict(cast("Mapping[str, Any]", value))
            json.dumps(extras)  # raises TypeError for anything that cannot be stored
            check_json_text(name, extras)
            guild.settings = extras
        else:
            raise TypeError(f"unknown guild setting {name!r}")
    await session.flush()
    return guild
