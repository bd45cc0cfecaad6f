"""Screenshots of the web for the docs and the README, made the way the tests run it:

    .venv/bin/python -m tests.web.make_screenshots [--out docs]

A throwaway database and worker, the Discord emulator as the sign-in, real Chromium. Writes
``web_gallery.png``, ``web_avatar.png``, ``web_editor.png`` and ``web_phone.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright, expect

from bot.app import open_app
from bot.settings import Settings
from bot.studio import Cooldown
from storage import migrate
from tests.discord.emulator import DiscordEmulator
from tests.web.conftest import LAUNCH_ARGS, _serve, actor, browser_sign_in, make_avatar

PROMPTS = (
    "pink twin tails cat girl with round glasses, smiling",
    "black afro, headphones, hoodie, grin",
    "silver long straight hair, crown, star background",
    "ginger curly hair, freckles, bunny ears, laughing",
    "navy bob, beret, sailor outfit, wink",
    "white buzz cut, beard, bow tie, suit",
    "lavender bun, flower, kimono, shy",
    "mint short hair, fox ears, scarf, cat mouth",
)


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), batch_window_ms=10)
        await migrate.upgrade(settings.resolved_database_url)
        emulator = DiscordEmulator()
        await emulator.start()
        async with open_app(settings, recover=False) as app:
            app.studio.cooldown = Cooldown(10_000, 1.0)
            runner, site = await _serve(app, emulator)
            mika = emulator.add_user("mika", global_name="Mika")
            made = [await make_avatar(app.studio, mika, p, seed=100 + i) for i, p in enumerate(PROMPTS)]
            studio, who = app.studio, actor(mika)
            first = made[0]
            edited = (
                await studio.finish(await studio.submit_edit(who, first.id, hair_color="lavender"))
            ).avatars[0]
            await studio.finish(await studio.submit_variations(who, first.id))
            await studio.favourite(who, made[2].id)
            await studio.favourite(who, edited.id)
            try:
                async with async_playwright() as p:
                    browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=LAUNCH_ARGS)
                    page = await browser.new_page(viewport={"width": 1280, "height": 860})
                    await browser_sign_in(page, site, mika)
                    await page.wait_for_load_state("networkidle")
                    await page.screenshot(path=str(out / "web_gallery.png"))
                    await page.goto(f"{site.url}/a/{edited.id}")
                    await page.wait_for_load_state("networkidle")
                    await page.screenshot(path=str(out / "web_avatar.png"))
                    await page.goto(f"{site.url}/a/{edited.id}/edit")
                    await page.click("#tab-items")
                    await page.click("button[data-item='crown']")
                    await expect(page.locator("#changes")).to_contain_text("crown")
                    await page.wait_for_load_state("networkidle")
                    await page.screenshot(path=str(out / "web_editor.png"))
                    phone = await browser.new_page(
                        viewport={"width": 390, "height": 844}, device_scale_factor=2
                    )
                    await browser_sign_in(phone, site, mika)
                    await phone.wait_for_load_state("networkidle")
                    await phone.screenshot(path=str(out / "web_phone.png"))
                    await browser.close()
            finally:
                await runner.cleanup()
        await emulator.close()
    print(f"wrote web_gallery.png, web_avatar.png, web_editor.png and web_phone.png to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("docs"))
    asyncio.run(main(parser.parse_args().out))
