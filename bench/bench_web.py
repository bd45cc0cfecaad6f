"""The web's latencies: the editor's live preview (render alone, and the whole HTTP request), the gallery page,
the JSON list, and a Save until the child avatar exists.

    .venv/bin/python -m bench.bench_web [--runs 40]

A real App (SQLite in a temp dir, a chibi worker process), the web over real HTTP on 127.0.0.1, the Discord
emulator for the sign-in; one signed-in client (aiohttp, no browser). Prints and saves bench/results/web.json.
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
from bot.settings import Settings
from bot.studio import Cooldown
from bot.web import editor
from generation.spec import AvatarSpec
from storage import migrate
from tests.discord.emulator import DiscordEmulator
from tests.web.conftest import HttpUser, _serve, make_avatar

RESULTS = Path(__file__).resolve().parent / "results" / "web.json"


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p90_ms": round(ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))] * 1000, 2),
        "runs": len(ordered),
    }


async def timed(runs: int, step: Any) -> dict[str, float]:
    took = []
    for i in range(runs):
        start = time.perf_counter()
        await step(i)
        took.append(time.perf_counter() - start)
    return summary(took)


async def main(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), batch_window_ms=10)
        await migrate.upgrade(settings.resolved_database_url)
        emulator = DiscordEmulator()
        await emulator.start()
        try:
            async with open_app(settings, recover=False) as app:
                app.studio.cooldown = Cooldown(100_000, 1.0)
                runner, site = await _serve(app, emulator, preview_rate=(100_000, 1.0))
                user = emulator.add_user("bench")
                avatars = [
                    await make_avatar(app.studio, user, f"pink hair number {i}", seed=i) for i in range(24)
                ]
                target = avatars[0]
                spec = AvatarSpec.from_json(target.spec)
                client = HttpUser(site)
                try:
                    await client.sign_in(user)
                    headers = {"X-CSRF-Token": await client.csrf()}
                    colours = ["#f49ac1", "#4a7fd9", "#4caf6e", "#f7d84a"]

                    async def render(i: int) -> None:
                        await asyncio.to_thread(
                            editor.render_preview, spec.replace(hair={"color": colours[i % 4]})
                        )

                    async def preview(i: int) -> None:
                        body = {"fields": {"hair_color": colours[i % 4]}}
                        async with client.post(
                            f"/api/avatars/{target.id}/preview", json=body, headers=headers
                        ) as resp:
                            assert resp.status == 200, await resp.text()
                            await resp.read()

                    async def gallery(_: int) -> None:
                        async with client.get("/") as resp:
                            assert resp.status == 200
                            await resp.read()

                    async def api(_: int) -> None:
                        async with client.get("/api/avatars") as resp:
                            assert resp.status == 200
                            await resp.read()

                    async def save(i: int) -> None:
                        state = json.dumps({"fields": {"hair_color": f"#10{i:02x}{i:02x}"}})
                        async with client.post(
                            f"/a/{target.id}/edit", data={"csrf": headers["X-CSRF-Token"], "state": state}
                        ) as resp:
                            job = resp.headers["Location"]
                        async with client.get(job) as resp:
                            assert resp.status == 303 and "saved=1" in resp.headers["Location"]

                    figures = {
                        "preview_render_256px": await timed(runs, render),
                        "preview_request": await timed(runs, preview),
                        "gallery_page_12_avatars": await timed(runs, gallery),
                        "api_avatars_json": await timed(runs, api),
                        "save_until_child_exists": await timed(max(5, runs // 4), save),
                    }
                finally:
                    await client.close()
                    await runner.cleanup()
        finally:
            await emulator.close()
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "engine": "chibi",
        **figures,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=40)
    result = asyncio.run(main(parser.parse_args().runs))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
