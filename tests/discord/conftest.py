"""Fixtures for end-to-end tests against the local Discord API emulator (see docs/discord_emulator.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.discord.emulator import DiscordEmulator


@pytest.fixture
async def discord_emulator() -> AsyncIterator[DiscordEmulator]:
    """A started emulator with discord.py pointed at it (``Route.BASE`` and ``DEFAULT_GATEWAY`` patched
    and restored). The test fails at teardown if any request body broke Discord's schema, hit a route
    the emulator does not know, or answered an interaction too late; tests that provoke a violation on
    purpose consume it with ``take_violations()``."""
    emulator = DiscordEmulator()
    await emulator.start()
    try:
        with emulator.patch_discord():
            yield emulator
    finally:
        await emulator.close()
    emulator.assert_clean()


@pytest.fixture
def emulator(discord_emulator: DiscordEmulator) -> DiscordEmulator:
    """Short alias of :func:`discord_emulator`."""
    return discord_emulator
