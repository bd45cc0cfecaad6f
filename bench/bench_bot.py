"""End-to-end /avatar latency through the local Discord emulator, and bot process memory after many commands.

    .venv/bin/python -m bench.bench_bot [--runs 30] [--commands 1000]

The real discord.py client talks to the emulator over real HTTP/WebSocket; a real worker process draws with
the chibi engine; SQLite in a temp dir. Latency = INTERACTION_CREATE dispatched -> the message carrying the
result picture stored by the emulator. RSS is this process's (bot + emulator share it; the worker is
separate), read from /proc after ``--commands`` /avatar commands. Prints and saves bench/results/bot.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.app import open_app
from bot.client import ChibifyBot
from bot.settings import Settings
from storage import migrate
from tests.discord.emulator import DiscordEmulator
from tests.discord.models import InteractionHandle

RESULTS = Path(__file__).resolve().parent / "results" / "bot.json"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one(emu: DiscordEmulator, user: Any, prompt: str) -> float:
    start = time.perf_counter()
    h: InteractionHandle = await emu.slash(user, "avatar", {"prompt": prompt})

    def done() -> bool:
        return any(m.get("attachments") and m.get("embeds") for m in h.messages)

    await emu.wait_until(done, 120, "a result")
    return time.perf_counter() - start


async def main(runs: int, commands: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), discord_token="emulator-bot-token", queue_max_per_user=8, queue_max_total=500
        )
        await migrate.upgrade(settings.resolved_database_url)
        emu = DiscordEmulator()
        await emu.start()
        try:
            with emu.patch_discord():
                async with open_app(settings) as app:
                    bot = ChibifyBot(app, cooldown=(10_000, 1.0))
                    async with emu.running(bot):
                        users = [emu.add_user(f"bench{i}") for i in range(50)]
                        await one(emu, users[0], "warm up")
                        rss_start = rss_mb()
                        single = [await one(emu, users[0], f"pink hair {i}, smile") for i in range(runs)]
                        concurrent: list[float] = []
                        for r in range(max(1, runs // 10)):
                            concurrent += await asyncio.gather(
                                *(one(emu, u, f"blue hair {r}-{i}") for i, u in enumerate(users[:20]))
                            )
                        done = len(single) + len(concurrent) + 1
                        t0 = time.perf_counter()
                        while done < commands:
                            batch = min(20, commands - done)
                            await asyncio.gather(
                                *(
                                    one(emu, users[(done + i) % 50], f"cat ears {done + i}")
                                    for i in range(batch)
                                )
                            )
                            done += batch
                        bulk_s = time.perf_counter() - t0
                        rss_end = rss_mb()
        finally:
            await emu.close()
    result = {
        "what": "/avatar end to end through the local Discord emulator (chibi engine, SQLite, real worker)",
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}",
        "single_user": {
            "n": len(single),
            "p50_ms": 1000 * statistics.median(single),
            "p95_ms": 1000 * pct(single, 0.95),
        },
        "users_20_concurrent": {
            "n": len(concurrent),
            "p50_ms": 1000 * statistics.median(concurrent),
            "p95_ms": 1000 * pct(concurrent, 0.95),
        },
        "commands_total": done,
        "bulk_throughput_per_s": (done - len(single) - len(concurrent) - 1) / bulk_s if bulk_s else None,
        "rss_mb_after_warmup": round(rss_start, 1),
        "rss_mb_after_commands": round(rss_end, 1),
        "rss_note": "bot and emulator share this process; the worker process is not included",
    }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--commands", type=int, default=1000)
    args = parser.parse_args()
    figures = asyncio.run(main(args.runs, args.commands))
    print(json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
