"""Security as for any public site, checked over real HTTP: CSRF on every POST, cookie flags, the headers,
the OAuth ``state``, 401 for the API without a session, 404 (never 403) for someone else's avatar, and the
rate limits."""

from __future__ import annotations

import json
import re
from http.cookies import SimpleCookie
from typing import Any

import pytest

from bot.studio import Actor, Cooldown
from bot.web.app import bind, build_app, start
from bot.web.config import WebConfig
from bot.web.session import Session, SessionCodec
from tests.web.conftest import SECRET, HttpUser, Site, actor, make_avatar, new_user

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_every_page_has_the_security_headers(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "hedy")
    avatar = await make_avatar(site.studio, user, "teal hair, beret")
    await visitor.sign_in(user)
    for path in ("/", f"/a/{avatar.id}", f"/a/{avatar.id}/edit", "/nope", "/api/avatars", "/static/app.css"):
        async with visitor.get(path) as resp:
            csp = resp.headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
            assert resp.headers["X-Content-Type-Options"] == "nosniff", path
            assert resp.headers["X-Frame-Options"] == "DENY", path
            assert resp.headers["Referrer-Policy"] == "same-origin", path
    async with visitor.get(f"/a/{avatar.id}/download/svg") as resp:
        assert resp.status == 200
        assert "sandbox" in resp.headers["Content-Security-Policy"]
        assert resp.headers["Content-Disposition"] == f'attachment; filename="{avatar.id}.svg"'
        assert resp.headers["Content-Type"].startswith("image/svg+xml")


async def test_session_cookie_is_httponly_lax_and_not_secure_over_http(site: Site) -> None:
    v = HttpUser(site)
    try:
        async with v.get("/") as resp:
            raw = resp.headers["Set-Cookie"]
    finally:
        await v.close()
    assert raw.startswith("chibify=") and "HttpOnly" in raw and "SameSite=Lax" in raw and "Path=/" in raw
    assert "Secure" not in raw


async def test_under_https_the_cookie_is_secure_host_only_and_hsts_is_sent(site: Site) -> None:
    config = WebConfig(base_url="https://chibify.example", secret=SECRET, client_id="1", client_secret="s")
    sock = bind("127.0.0.1", 0)
    runner = await start(build_app(site.studio, config), sock)
    v = HttpUser(site)
    try:
        async with v.http.get(f"http://127.0.0.1:{sock.getsockname()[1]}/") as resp:
            raw = resp.headers["Set-Cookie"]
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        await v.close()
        await runner.cleanup()
    assert (
        raw.startswith("__Host-chibify=") and "Secure" in raw and "HttpOnly" in raw and "SameSite=Lax" in raw
    )


async def test_a_post_without_the_csrf_token_is_refused(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "ivan")
    avatar = await make_avatar(site.studio, user, "navy spiky hair, scarf")
    await visitor.sign_in(user)
    token = await visitor.csrf()
    for data, headers in (
        ({}, {}),  # no token at all
        ({"csrf": "forged"}, {}),  # a wrong one
        ({"csrf": token}, {"Origin": "https://evil.example"}),  # the right one, from another site
    ):
        async with visitor.post(f"/a/{avatar.id}/delete", data=data, headers=headers) as resp:
            assert resp.status == 403
            assert "expired" in await resp.text()
    async with visitor.post(
        f"/api/avatars/{avatar.id}/preview", json={"fields": {"expression": "wink"}}
    ) as resp:
        assert resp.status == 403 and "error" in await resp.json()
    view, _ = await site.studio.show(actor(user), avatar.id)
    assert view.id == avatar.id  # still there
    async with visitor.post(f"/a/{avatar.id}/delete", data={"csrf": token}) as resp:
        assert resp.status == 303  # with the token it works


async def test_sign_out_revokes_the_session_and_the_api_answers_401(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "judy")
    await make_avatar(site.studio, user, "lavender bob")
    async with visitor.get("/api/avatars") as resp:
        assert resp.status == 401 and (await resp.json())["error"] == "Sign in first."
    await visitor.sign_in(user)
    cookie = next(c for c in visitor.http.cookie_jar if c.key == "chibify").value
    async with visitor.get("/api/avatars") as resp:
        assert resp.status == 200 and (await resp.json())["total"] == 1
    async with visitor.post("/logout", data={"csrf": await visitor.csrf()}) as resp:
        assert resp.status == 303
    # a copy of the old cookie, replayed after signing out, is no session at all
    thief = HttpUser(site)
    try:
        async with thief.http.get(f"{site.url}/api/avatars", headers={"Cookie": f"chibify={cookie}"}) as resp:
            assert resp.status == 401
    finally:
        await thief.close()
    async with visitor.get("/a/anything") as resp:  # signed out: sign in first, then back to that page
        assert resp.status == 303 and resp.headers["Location"] == "/?next=%2Fa%2Fanything"
    async with visitor.get("/?next=/a/anything") as resp:
        assert 'href="/login?next=%2Fa%2Fanything"' in await resp.text()
    async with visitor.get("/?next=https://evil.example/") as resp:
        assert 'href="/login"' in await resp.text()


async def test_someone_elses_avatar_is_404_on_every_route(
    visitor: HttpUser, visitor2: HttpUser, site: Site
) -> None:
    alice, bob = new_user(site.emulator, "alice"), new_user(site.emulator, "bob")
    hers = await make_avatar(site.studio, alice, "pink curly hair, flower")
    await visitor.sign_in(bob)
    token = await visitor.csrf()
    reads = (
        "",
        "/edit",
        "/image.png",
        "/thumb.png",
        "/download/svg",
        "/download/stickers",
        "/download/original",
    )
    for path in reads:
        async with visitor.get(f"/a/{hers.id}{path}") as resp:
            assert resp.status == 404, path
    async with visitor.get(f"/api/avatars/{hers.id}") as resp:
        assert resp.status == 404 and "error" in await resp.json()
    posts: list[tuple[str, dict[str, Any]]] = [
        (f"/a/{hers.id}/delete", {"data": {"csrf": token}}),
        (f"/a/{hers.id}/favourite", {"data": {"csrf": token, "on": "1"}}),
        (f"/a/{hers.id}/edit", {"data": {"csrf": token, "state": '{"fields": {"expression": "wink"}}'}}),
        (f"/api/avatars/{hers.id}/preview", {"json": {"fields": {}}, "headers": {"X-CSRF-Token": token}}),
    ]
    for path, kw in posts:
        async with visitor.post(path, **kw) as resp:
            assert resp.status == 404, path
    # the 404 says nothing about whether the avatar exists: same page as an id that never existed
    async with visitor.get("/a/neverexisted123") as never, visitor.get(f"/a/{hers.id}") as hidden:
        assert never.status == hidden.status == 404

        def same(text: str, avatar_id: str) -> str:
            return re.sub(r'content="[^"]+"', "", text.replace(avatar_id, "ID"))

        assert same(await never.text(), "neverexisted123") == same(await hidden.text(), hers.id)
    view, _ = await site.studio.show(actor(alice), hers.id)
    assert not view.favourite and view.id == hers.id
    # and Alice still reaches it
    await visitor2.sign_in(alice)
    async with visitor2.get(f"/a/{hers.id}") as resp:
        assert resp.status == 200


async def test_oauth_state_must_be_the_one_we_issued(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "kim")
    # a callback nobody started here (a forged link with someone's code) signs nobody in
    async with visitor.get("/callback?code=abc&state=made-up") as resp:
        assert resp.status == 400 and "did not start here" in await resp.text()
    async with visitor.get("/login") as resp:
        issued = dict(re.findall(r"[?&](\w+)=([^&]+)", resp.headers["Location"]))["state"]
    exchanges = site.emulator.oauth.exchanges
    async with visitor.get("/callback?code=abc&state=" + issued[:-2] + "xx") as resp:
        assert resp.status == 400
    assert site.emulator.oauth.exchanges == exchanges  # no code was exchanged for a bad state
    async with visitor.get("/api/avatars") as resp:
        assert resp.status == 401
    # the state is single-use: a refused callback used it up, the right state now fails too
    async with visitor.get(f"/callback?code=abc&state={issued}") as resp:
        assert resp.status == 400
    await visitor.sign_in(user)  # a fresh sign-in works
    async with visitor.get("/api/avatars") as resp:
        assert resp.status == 200


async def test_sign_in_comes_back_to_the_page_asked_for(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "kai")
    assert await visitor.sign_in(user, next_path="/forget") == "/forget"


async def test_cancelling_on_discord_says_so(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "lena")
    async with visitor.get("/login") as resp:
        location = resp.headers["Location"]
    fields = dict(re.findall(r"[?&](\w+)=([^&]+)", location))
    from urllib.parse import unquote

    fields = {k: unquote(v) for k, v in fields.items()}
    emu = site.emulator.base_url
    async with visitor.http.post(f"{emu}/oauth2/authorize", data={**fields, "login": str(user.id)}):
        pass
    async with visitor.http.post(
        f"{emu}/oauth2/authorize", data={**fields, "decision": "cancel"}, allow_redirects=False
    ) as resp:
        back = resp.headers["Location"]
    async with visitor.http.get(back) as resp:
        assert resp.status == 200 and "Sign-in cancelled." in await resp.text()
    async with visitor.get("/api/avatars") as resp:
        assert resp.status == 401


async def test_preview_is_rate_limited(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "mia")
    avatar = await make_avatar(site.studio, user, "black bob")
    await visitor.sign_in(user)
    headers = {"X-CSRF-Token": await visitor.csrf()}
    statuses = []
    for i in range(site.config.preview_rate[0] + 1):
        body = {"fields": {"expression": "wink" if i % 2 else "smile"}}
        async with visitor.post(f"/api/avatars/{avatar.id}/preview", json=body, headers=headers) as resp:
            statuses.append(resp.status)
            if resp.status == 429:
                assert int(resp.headers["Retry-After"]) >= 1
                assert "Slow down" in (await resp.json())["error"]
    assert statuses[:-1] == [200] * site.config.preview_rate[0] and statuses[-1] == 429


async def test_save_goes_through_the_studios_gate(visitor: HttpUser, site: Site) -> None:
    user = new_user(site.emulator, "nia")
    avatar = await make_avatar(site.studio, user, "brown ponytail")
    await visitor.sign_in(user)
    token = await visitor.csrf()
    old = site.studio.cooldown
    site.studio.cooldown = Cooldown(1, 60.0)  # one save a minute, as a strict server would set it
    try:
        state = json.dumps({"fields": {"hair_color": "#123456"}})
        async with visitor.post(f"/a/{avatar.id}/edit", data={"csrf": token, "state": state}) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/jobs/")
            job = resp.headers["Location"]
        state = json.dumps({"fields": {"hair_color": "#654321"}})
        async with visitor.post(f"/a/{avatar.id}/edit", data={"csrf": token, "state": state}) as resp:
            assert resp.status == 429 and "Slow down" in await resp.text()
    finally:
        site.studio.cooldown = old
    async with visitor.get(job) as resp:  # the first one was made
        assert resp.status == 303 and resp.headers["Location"].endswith("?saved=1")


async def test_a_tampered_or_expired_cookie_is_no_session() -> None:
    codec = SessionCodec(SECRET, max_age_s=60)
    session = Session()
    session.set("uid", "42")
    value = codec.dumps(session)
    assert codec.loads(value) is not None and codec.loads(value).discord_id == 42  # type: ignore[union-attr]
    body, mac = value.split(".")
    forged = SimpleCookie()
    forged["x"] = body[:-2] + "AA." + mac
    assert codec.loads(forged["x"].value) is None
    assert SessionCodec(b"another-secret" * 3, 60).loads(value) is None
    old = Session({"sid": "s", "csrf": "c", "iat": 0, "uid": "42"})
    assert codec.loads(codec.dumps(old)) is None


async def test_local_user_mode_needs_no_sign_in_and_refuses_other_host_names(local_site: Site) -> None:
    mine = await make_avatar(local_site.studio, "console-web", "yellow twin tails")
    v = HttpUser(local_site)
    try:
        async with v.get("/api/avatars") as resp:
            assert resp.status == 200
            assert mine.id in [a["id"] for a in (await resp.json())["avatars"]]
        async with v.get("/") as resp:
            text = await resp.text()
            assert "sign-in" not in text and "console-web" in text
        async with v.get("/login") as resp:
            assert resp.status == 303  # nobody signs in
        # a page on another name that resolves to this machine (DNS rebinding) is refused
        async with v.get("/api/avatars", headers={"Host": "evil.example:80"}) as resp:
            assert resp.status == 421
    finally:
        await v.close()
    view, _ = await local_site.studio.show(Actor(console_name="console-web"), mine.id)
    assert view.id == mine.id
