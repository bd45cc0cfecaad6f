"""An avatar painted by another engine (here the test's fault engine, standing in for diffusion): the editor
says its preview is a chibi sketch, Save queues an edit job, and the page shows the job's progress until the
new avatar exists, then opens it. The engine waits on a gate file, so the test decides when it finishes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.app import App
from bot.studio import Cooldown, Studio
from generation.jobs import EngineSpec
from generation.service import GenerationService
from storage import Storage, migrate
from storage.jobstore import SqlJobStore
from tests.discord.emulator import DiscordEmulator
from tests.web.conftest import Site, _serve, actor, browser_sign_in, make_avatar, new_user

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture skips (or fails under CHIBIFY_REQUIRE_BROWSER=1) with the reason
    expect = None

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def painted_site(
    tmp_path_factory: pytest.TempPathFactory, emulator: DiscordEmulator, web_app: App
) -> AsyncIterator[Site]:
    data = tmp_path_factory.mktemp("chibify-web-painted")
    url = f"sqlite+aiosqlite:///{(data / 'chibify.db').as_posix()}"
    await migrate.upgrade(url)
    storage = await Storage.open(url, data)
    service = GenerationService(
        SqlJobStore(storage),
        engines=("chibi", EngineSpec(name="fake", target="tests.generation.fake_engines:FaultyEngine")),
        batch_window_s=0.01,
    )
    await service.start(recover=False)
    studio = Studio(storage, service, default_engine="fake", cooldown=Cooldown(10_000, 1.0))
    app = App(web_app.settings, storage, service, studio)
    runner, site = await _serve(app, emulator)
    try:
        yield site
    finally:
        await runner.cleanup()
        await service.stop(drain_timeout=5)
        await storage.close()


async def test_saving_a_painted_avatar_queues_a_job_and_shows_progress(
    page: Any, painted_site: Site, tmp_path: Path
) -> None:
    site = painted_site
    gate = tmp_path / "gate"
    await asyncio.to_thread(gate.touch)
    user = new_user(site.emulator, "wren")
    parent = await make_avatar(site.studio, user, f"gate:{gate}")  # painted by the "fake" engine
    assert parent.engine == "fake"
    await asyncio.to_thread(gate.unlink)  # from now on the engine waits for the test

    await browser_sign_in(page, site, user)
    await page.goto(f"{site.url}/a/{parent.id}")
    await expect(page.locator("[data-test=download]")).to_have_count(1)  # its own picture, as it is
    await page.click("[data-test=edit]")
    await expect(page.locator(".editor-preview")).to_contain_text("Preview drawn by the chibi engine")
    await page.click("#tab-expression")
    await page.click("button[data-field=expression][data-value=surprised]")
    await expect(page.locator("#preview")).to_have_attribute("src", re.compile("^data:"))
    await page.click("[data-test=save]")

    await page.wait_for_url(re.compile(r"/jobs/"))
    await expect(page.locator("[data-test=job-status]")).to_contain_text(
        re.compile("Drawing now|In the queue")
    )
    await asyncio.to_thread(gate.touch)  # the engine finishes: the page opens the new avatar by itself
    await page.wait_for_url(re.compile(r"/a/[^/?]+\?saved=1$"))
    child_id = page.url.rsplit("/", 1)[1].split("?")[0]
    child, lineage = await site.studio.show(actor(user), child_id)
    assert [a.id for a in lineage] == [parent.id, child_id] and child.spec["expression"] == "surprised"
