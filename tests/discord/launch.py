"""Run a module in this process with discord.py pointed at a Discord emulator in another process.

    python -m tests.discord.launch bot [args...]

reads ``DISCORD_EMULATOR_API`` and ``DISCORD_EMULATOR_GATEWAY`` (what ``DiscordEmulator.process_env()``
gives), patches the same two class attributes the in-process fixture patches (``discord.http.Route.BASE``
and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``) and then runs the module as ``__main__``, exactly
as ``python -m bot`` would. Nothing else is changed, so tests can drive the real bot process (signals,
exit codes, restarts) against the emulator running in the test's event loop.
"""

from __future__ import annotations

import os
import runpy
import sys

import discord.gateway
import discord.http
import yarl


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m tests.discord.launch MODULE [args...]")
    discord.http.Route.BASE = os.environ["DISCORD_EMULATOR_API"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_EMULATOR_GATEWAY"])
    sys.argv = list(argv)
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
