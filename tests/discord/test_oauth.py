"""The emulator's OAuth2 provider behaves like Discord's where the web's sign-in depends on it."""

from __future__ import annotations

import base64

import aiohttp

from tests.discord.emulator import DiscordEmulator

REDIRECT = "http://127.0.0.1:9/callback"


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def _code(emulator: DiscordEmulator, http: aiohttp.ClientSession, client_id: str, **extra: str) -> str:
    fields = {
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "identify",
        "state": "s1",
        **extra,
    }
    base = emulator.base_url
    async with http.post(
        f"{base}/oauth2/authorize", data={**fields, "login": str(emulator.alice.id)}
    ) as resp:
        assert resp.status == 200 and "Authorize" in await resp.text()
    async with http.post(
        f"{base}/oauth2/authorize", data={**fields, "decision": "authorize"}, allow_redirects=False
    ) as resp:
        location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?code=") and location.endswith("&state=s1")
    return location.split("code=", 1)[1].split("&", 1)[0]


async def test_code_flow_bearer_me_revoke_and_the_bots_own_me(emulator: DiscordEmulator) -> None:
    app = emulator.oauth.register_app(REDIRECT)
    emulator.oauth.set_locale(emulator.alice, "zh-CN")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(
            f"{emulator.base_url}/oauth2/authorize",
            params={"client_id": app.client_id, "redirect_uri": "http://evil.example/cb", "response_type": "code",
                    "scope": "identify"},
        ) as resp:  # fmt: skip
            assert resp.status == 400 and "redirect_uri" in await resp.text()
        code = await _code(emulator, http, app.client_id)
        token_url = f"{emulator.api_base}/oauth2/token"
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        async with http.post(token_url, data=form, headers=basic(app.client_id, "wrong")) as resp:
            assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"
        good = basic(app.client_id, app.client_secret)
        async with http.post(token_url, data={**form, "redirect_uri": "http://x/cb"}, headers=good) as resp:
            assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"
        async with http.post(token_url, data=form, headers=good) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["token_type"] == "Bearer" and body["scope"] == "identify"
        async with http.post(token_url, data=form, headers=good) as resp:
            assert resp.status == 400  # a code works once
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        async with http.get(f"{emulator.api_base}/users/@me", headers=bearer) as resp:
            me = await resp.json()
            assert me["id"] == str(emulator.alice.id) and me["locale"] == "zh-CN"
        async with http.get(
            f"{emulator.api_base}/users/@me", headers={"Authorization": f"Bot {emulator.token}"}
        ) as resp:
            assert (await resp.json())["id"] == str(emulator.bot.id)  # the bot's route is untouched
        async with http.post(
            f"{emulator.api_base}/oauth2/token/revoke", data={"token": body["access_token"]}, headers=good
        ) as resp:
            assert resp.status == 200
        async with http.get(f"{emulator.api_base}/users/@me", headers=bearer) as resp:
            assert resp.status == 401
    assert emulator.oauth.exchanges == 1 and emulator.oauth.live_tokens() == []
