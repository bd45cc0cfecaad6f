"""Fixtures for the web adapter: one real App (SQLite, a real chibi worker process), the Discord emulator as
the OAuth2 provider, the web served on 127.0.0.1 over real HTTP, and one real Chromium (Debian's, driven by
Playwright) for the whole session.

Every test module sets ``pytestmark = pytest.mark.asyncio(loop_scope="session")``: the App, the servers and
the browser live in the session's event loop. Tests share the database, so each makes its own users
(:func:`new_user`) and never counts rows it did not make.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from bot.app import App, open_app
from bot.settings import Settings
from bot.studio import Actor, AvatarView, Cooldown, Studio
from bot.web.app import bind, build_app, start
from bot.web.config import WebConfig
from storage import migrate
from tests.discord.emulator import DiscordEmulator
from tests.discord.models import User
from tests.discord.oauth import OAuthApp

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER_ENV = "CHIBIFY_REQUIRE_BROWSER"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECRET = b"test-secret-" + b"x" * 40


@dataclass
class Site:
    url: str
    app: App
    emulator: DiscordEmulator
    config: WebConfig
    oauth_app: OAuthApp | None

    @property
    def studio(self) -> Studio:
        return self.app.studio


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def web_app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[App]:
    data_dir = tmp_path_factory.mktemp("chibify-web")
    settings = Settings(data_dir=data_dir, queue_max_per_user=8, batch_window_ms=10, job_timeout_s=60.0)
    await migrate.upgrade(settings.resolved_database_url)
    async with open_app(settings, recover=False) as app:
        # The studio's gate limits saves (as /edit in Discord); tests that check it lower it themselves.
        app.studio.cooldown = Cooldown(10_000, 1.0)
        yield app


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def emulator() -> AsyncIterator[DiscordEmulator]:
    emu = DiscordEmulator()
    await emu.start()
    try:
        yield emu
    finally:
        await emu.close()
    assert not emu.internal_errors, emu.internal_errors


async def _serve(app: App, emulator: DiscordEmulator, **options: Any) -> tuple[web.AppRunner, Site]:
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    oauth_app = None if options.get("local_user") else emulator.oauth.register_app(f"{url}/callback")
    config = WebConfig(
        base_url=url,
        secret=SECRET,
        client_id=oauth_app.client_id if oauth_app else None,
        client_secret=oauth_app.client_secret if oauth_app else None,
        discord_url=emulator.base_url,
        bot_token=emulator.token,
        **options,
    )
    runner = await start(build_app(app.studio, config), sock)
    return runner, Site(url, app, emulator, config, oauth_app)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def site(web_app: App, emulator: DiscordEmulator) -> AsyncIterator[Site]:
    """The web with Discord sign-in (the emulator is Discord)."""
    runner, served = await _serve(web_app, emulator, preview_rate=(12, 60.0))
    try:
        yield served
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def local_site(web_app: App, emulator: DiscordEmulator) -> AsyncIterator[Site]:
    """``chibify web --local-user console-web``: no sign-in."""
    runner, served = await _serve(web_app, emulator, local_user="console-web")
    try:
        yield served
    finally:
        await runner.cleanup()


# --- the browser ---------------------------------------------------------------------------------------


def _browser_missing(reason: str) -> None:
    if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        pytest.fail(f"a browser is required ({REQUIRE_BROWSER_ENV}=1) but {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason} (apt-get install -y chromium; pip install playwright)")


def _chromium_present() -> bool:
    return CHROMIUM.exists()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    if not _chromium_present():
        _browser_missing(f"{CHROMIUM} does not exist")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _browser_missing("the playwright package is not installed")
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser context (its own cookies: one person) at desktop width."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    errors: list[str] = []
    pg = await context.new_page()
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # Console errors (a CSP violation is one) and failed sub-resources; a page answering 404 on purpose is not
    # an error, so the browser's own "Failed to load resource" lines are left to the response listener.
    pg.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    pg.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    try:
        yield pg
    finally:
        await context.close()
    # A script error or a CSP violation (Chromium logs those as console errors) fails the test.
    assert not errors, errors


# --- people and avatars --------------------------------------------------------------------------------


def new_user(emulator: DiscordEmulator, name: str) -> User:
    """A Discord user of this test only (the session shares one database)."""
    return emulator.add_user(f"{name}{secrets.token_hex(3)}", global_name=name.capitalize())


async def make_avatar(studio: Studio, user: User | str, prompt: str, seed: int | None = None) -> AvatarView:
    """An avatar made the way the bot makes one (same studio, real worker), for a Discord or console user."""
    actor = Actor(console_name=user) if isinstance(user, str) else Actor(discord_id=user.id)
    outcome = await studio.finish(await studio.submit_create(actor, prompt, seed=seed))
    return outcome.avatars[0]


def actor(user: User) -> Actor:
    return Actor(discord_id=user.id)


async def browser_sign_in(page: Any, site: Site, user: User) -> None:
    """Sign in as ``user`` the way a person does: the button, Discord's account and consent screens."""
    await page.goto(site.url + "/")
    await page.click("[data-test=sign-in]")
    await page.click(f"button[data-user='{user.username}']")
    await page.click("button[value=authorize]")
    await page.wait_for_url(site.url + "/")


class HttpUser:
    """A browser-less visitor with its own cookie jar, for checks on status codes and headers."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.http.close()

    async def sign_in(self, user: User, next_path: str = "") -> str:
        """Sign in through the emulated Discord screens; returns where the site sends the visitor after."""
        login = "/login" + (f"?next={quote(next_path)}" if next_path else "")
        async with self.http.get(self.site.url + login, allow_redirects=False) as resp:
            assert resp.status == 302, resp.status
            authorize = resp.headers["Location"]
        fields = dict(parse_qsl(urlsplit(authorize).query))
        emu = self.site.emulator.base_url
        async with self.http.post(f"{emu}/oauth2/authorize", data={**fields, "login": str(user.id)}) as resp:
            assert resp.status == 200
        async with self.http.post(
            f"{emu}/oauth2/authorize", data={**fields, "decision": "authorize"}, allow_redirects=False
        ) as resp:
            callback = resp.headers["Location"]
        async with self.http.get(callback, allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
            return resp.headers["Location"]

    async def csrf(self) -> str:
        async with self.http.get(self.site.url + "/") as resp:
            found = re.search(r'name="csrf-token" content="([^"]+)"', await resp.text())
        assert found is not None
        return found.group(1)

    def get(self, path: str, **kw: Any) -> Any:
        return self.http.get(self.site.url + path, allow_redirects=False, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.http.post(self.site.url + path, allow_redirects=False, **kw)


@pytest_asyncio.fixture(loop_scope="session")
async def visitor(site: Site) -> AsyncIterator[HttpUser]:
    v = HttpUser(site)
    try:
        yield v
    finally:
        await v.close()


@pytest_asyncio.fixture(loop_scope="session")
async def visitor2(site: Site) -> AsyncIterator[HttpUser]:
    v = HttpUser(site)
    try:
        yield v
    finally:
        await v.close()
