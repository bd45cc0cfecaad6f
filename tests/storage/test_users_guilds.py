"""Users and guild settings."""

from __future__ import annotations

from datetime import UTC

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage import NotFound, PromptPolicy, Storage, User, guilds, users

from .helpers import tx


async def test_get_or_create_user_by_discord_id(storage: Storage) -> None:
    user = await tx(storage, users.get_or_create_user, discord_id=1234)
    again = await tx(storage, users.get_or_create_user, discord_id=1234)
    assert again.id == user.id
    assert user.discord_id == 1234 and user.console_name is None
    assert (user.language, user.default_style) == ("en", "chibi")
    assert not user.public_results and not user.consent_store_selfies and not user.consent_training
    assert user.created_at.tzinfo is UTC
    assert (await tx(storage, users.get_user, discord_id=1234)) is not None
    assert (await tx(storage, users.get_user, discord_id=999)) is None


async def test_console_users_are_separate_from_discord_users(storage: Storage) -> None:
    console = await tx(storage, users.get_or_create_user, console_name="alice")
    discord = await tx(storage, users.get_or_create_user, discord_id=5)
    assert console.id != discord.id
    assert (await tx(storage, users.get_or_create_user, console_name="alice")).id == console.id
    assert (await tx(storage, users.get_or_create_user, console_name="Alice")).id != console.id


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"discord_id": 1, "console_name": "both"},
        {"discord_id": 0},
        {"discord_id": -5},
        {"discord_id": 2**63},
        {"discord_id": True},
        {"console_name": ""},
        {"console_name": " padded "},
        {"console_name": "x" * 65},
        {"console_name": "nul\x00name"},
        {"console_name": "bad\udcffname"},
    ],
)
async def test_invalid_identities_are_refused(storage: Storage, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        await tx(storage, users.get_or_create_user, **kwargs)  # type: ignore[arg-type]


async def test_database_enforces_exactly_one_identity(storage: Storage) -> None:
    for values in ({"discord_id": None, "console_name": None}, {"discord_id": 7, "console_name": "seven"}):
        with pytest.raises(IntegrityError):
            async with storage.transaction() as s:
                s.add(User(**values))


async def test_update_user_settings(storage: Storage) -> None:
    user = await tx(storage, users.get_or_create_user, discord_id=42)
    updated = await tx(
        storage, users.update_user, user, language="zh-CN", public_results=True, consent_training=True
    )
    assert (updated.language, updated.public_results, updated.consent_training) == ("zh-CN", True, True)
    assert updated.default_style == "chibi" and updated.consent_store_selfies is False
    fresh = await tx(storage, users.get_user, discord_id=42)
    assert fresh is not None and fresh.language == "zh-CN" and fresh.consent_training
    with pytest.raises(ValueError):
        await tx(storage, users.update_user, user, public_results="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await tx(storage, users.update_user, user, discord_id=1)  # type: ignore[call-arg]
    with pytest.raises(NotFound):
        await tx(storage, users.update_user, 10_000, language="en")


async def test_guild_settings_defaults_and_updates(storage: Storage) -> None:
    guild_id = 900_000_000_000_000_001
    guild = await tx(storage, guilds.get_or_create_guild, guild_id)
    assert guild.id == guild_id
    assert guild.allowed_channels == [] and guild.settings == {}
    assert guild.prompt_policy is PromptPolicy.STANDARD
    assert guild.per_user_daily_limit is None and guild.max_queued_per_user is None and guild.engine is None

    updated = await tx(
        storage,
        guilds.update_guild,
        guild_id,
        allowed_channels=[3, 1, 3, 2**62],
        per_user_daily_limit=20,
        max_queued_per_user=2,
        prompt_policy="strict",
        engine="diffusion",
        settings={"welcome": "hi", "nested": {"a": [1, 2]}},
    )
    assert updated.allowed_channels == [1, 3, 2**62]
    again = await tx(storage, guilds.get_or_create_guild, guild_id)
    assert again.allowed_channels == [1, 3, 2**62]
    assert again.prompt_policy is PromptPolicy.STRICT
    assert (again.per_user_daily_limit, again.max_queued_per_user, again.engine) == (20, 2, "diffusion")
    assert again.settings == {"welcome": "hi", "nested": {"a": [1, 2]}}

    # None is a real value for the limits ("no limit"); absent keys stay as they are.
    cleared = await tx(storage, guilds.update_guild, guild_id, per_user_daily_limit=None)
    assert cleared.per_user_daily_limit is None and cleared.max_queued_per_user == 2


@pytest.mark.parametrize(
    "change",
    [
        {"prompt_policy": "lax"},
        {"allowed_channels": [-1]},
        {"allowed_channels": ["123"]},
        {"per_user_daily_limit": -1},
        {"settings": {"bad": object()}},
    ],
)
async def test_guild_settings_are_validated(storage: Storage, change: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        await tx(storage, guilds.update_guild, 77, **change)  # type: ignore[arg-type]
    guild = await tx(storage, guilds.get_or_create_guild, 77)
    assert guild.prompt_policy is PromptPolicy.STANDARD and guild.allowed_channels == []


async def test_prompt_policy_check_constraint(storage: Storage) -> None:
    await tx(storage, guilds.get_or_create_guild, 78)
    with pytest.raises(IntegrityError):
        async with storage.transaction() as s:
            await s.execute(sa.text("UPDATE guilds SET prompt_policy = 'anything' WHERE id = 78"))


@pytest.mark.parametrize(
    "changes",
    [{"engine": "dif\x00fusion"}, {"settings": {"welcome": "h\x00i"}}, {"settings": {"a\x00": 1}}],
)
async def test_guild_text_with_nul_bytes_is_refused(storage: Storage, changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="NUL byte"):
        await tx(storage, guilds.update_guild, 4242, **changes)  # type: ignore[arg-type]
    guild = await tx(storage, guilds.get_or_create_guild, 4242)
    assert guild.engine is None and guild.settings == {}
