"""The emulator's OAuth2 provider: Discord's authorization-code flow for "Sign in with Discord" tests.

Registered on the emulator's server by :meth:`OAuthProvider.add_routes`, before the REST catch-all:

* ``GET /oauth2/authorize`` checks ``client_id``, ``redirect_uri`` (exactly as registered),
  ``response_type=code`` and a ``scope`` holding ``identify``, then shows Discord's two screens: pick an
  account (the emulated browser's Discord login, kept in a cookie on the emulator's origin, so each browser
  context is its own person) and the consent screen, whose **Authorize** sends the browser to
  ``redirect_uri?code=...&state=...`` and **Cancel** to ``redirect_uri?error=access_denied&state=...``.
* ``POST /api/v10/oauth2/token`` exchanges a code once (client authenticated with HTTP Basic or form
  fields, ``redirect_uri`` equal to the authorize one, codes live 10 minutes) for a Bearer token.
* ``POST /api/v10/oauth2/token/revoke`` revokes a token.
* ``GET /api/v10/users/@me`` with ``Authorization: Bearer <token>`` answers the signed-in user (with
  ``locale``); with a bot token it is the emulator's own REST route as before.

Everything is recorded (:attr:`OAuthProvider.authorize_requests`, ``exchanges``, ``revoked``) for tests.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus, urlencode

from aiohttp import web

if TYPE_CHECKING:
    from tests.discord.emulator import DiscordEmulator
    from tests.discord.models import User

CODE_TTL_S = 600.0
TOKEN_TTL_S = 7 * 24 * 3600
BROWSER_COOKIE = "emulated_discord_login"


@dataclass
class OAuthApp:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass
class Grant:
    client_id: str
    user_id: int
    redirect_uri: str
    scope: str
    expires: float
    used: bool = False


@dataclass
class Token:
    client_id: str
    user_id: int
    scope: str
    expires: float
    revoked: bool = False


def _found(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


class OAuthProvider:
    def __init__(self, emulator: DiscordEmulator) -> None:
        self.emu = emulator
        self.apps: dict[str, OAuthApp] = {}
        self.grants: dict[str, Grant] = {}
        self.tokens: dict[str, Token] = {}
        self.locales: dict[int, str] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.exchanges = 0
        self.revoked: list[str] = []

    # --- test helpers -----------------------------------------------------------------------------------

    def register_app(self, redirect_uri: str) -> OAuthApp:
        """An OAuth2 application (its client id is the bot's application id, as on Discord)."""
        client_id = str(self.emu.application_id) if not self.apps else str(secrets.randbelow(10**18))
        app = OAuthApp(client_id, secrets.token_urlsafe(24), (redirect_uri,))
        self.apps[client_id] = app
        return app

    def set_locale(self, user: User, locale: str) -> None:
        self.locales[user.id] = locale

    def live_tokens(self) -> list[str]:
        now = time.time()
        return [t for t, tok in self.tokens.items() if not tok.revoked and tok.expires > now]

    # --- routes -----------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Call before the REST catch-all route is added (aiohttp matches routes in order)."""
        app.router.add_get("/oauth2/authorize", self.authorize)
        app.router.add_post("/oauth2/authorize", self.decide)
        app.router.add_post("/api/v10/{tail:oauth2/token}", self.token)
        app.router.add_post("/api/v10/{tail:oauth2/token/revoke}", self.revoke)
        app.router.add_get("/api/v10/{tail:users/@me}", self.me)

    def _check_request(self, q: Any) -> tuple[OAuthApp | None, str | None]:
        app = self.apps.get(q.get("client_id", ""))
        if app is None:
            return None, "Unknown Application"
        if q.get("redirect_uri") not in app.redirect_uris:
            return app, "Invalid OAuth2 redirect_uri"
        if q.get("response_type") != "code":
            return app, "Invalid response_type"
        if "identify" not in (q.get("scope") or "").split():
            return app, "Invalid scope"
        return app, None

    def _page(self, title: str, body: str, status: int = 200) -> web.Response:
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Discord (emulated)</title>"
            "<link rel='icon' href='data:,'></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
        )
        return web.Response(status=status, text=page, content_type="text/html")

    def _hidden(self, q: Any) -> str:
        keys = ("client_id", "redirect_uri", "response_type", "scope", "state", "prompt")
        return "".join(
            f"<input type='hidden' name='{k}' value='{html.escape(q[k], quote=True)}'>"
            for k in keys
            if k in q
        )

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        self.authorize_requests.append(dict(q))
        _, error = self._check_request(q)
        if error:
            return self._page(error, "<p>The application sent a bad sign-in link.</p>", status=400)
        login = request.cookies.get(BROWSER_COOKIE)
        user = self.emu.users.get(int(login)) if login and login.isdigit() else None
        if user is None:
            buttons = "".join(
                f"<button type='submit' name='login' value='{u.id}' data-user='{html.escape(u.username)}'>"
                f"Log in as {html.escape(u.global_name or u.username)}</button>"
                for u in self.emu.users.values()
                if not u.bot
            )
            return self._page("Log in to Discord", f"<form method='post'>{self._hidden(q)}{buttons}</form>")
        name = html.escape(user.global_name or user.username)
        return self._page(
            f"An external application wants to access your Discord account ({name})",
            "<p>It will be able to access your username, avatar and banner (identify).</p>"
            f"<form method='post'>{self._hidden(q)}"
            "<button type='submit' name='decision' value='cancel'>Cancel</button>"
            "<button type='submit' name='decision' value='authorize'>Authorize</button></form>",
        )

    async def decide(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        q = {k: str(v) for k, v in form.items()}
        app, error = self._check_request(q)
        if error or app is None:
            return self._page(error or "Unknown Application", "", status=400)
        if q.get("login"):
            resp = _found(f"/oauth2/authorize?{urlencode({k: q[k] for k in q if k != 'login'})}")
            resp.set_cookie(BROWSER_COOKIE, q["login"], path="/", httponly=True, samesite="Lax")
            return resp
        login = request.cookies.get(BROWSER_COOKIE, "")
        user = self.emu.users.get(int(login)) if login.isdigit() else None
        if user is None:
            return self._page("Log in first", "", status=401)
        state = {"state": q["state"]} if "state" in q else {}
        sep = "&" if "?" in q["redirect_uri"] else "?"
        if q.get("decision") != "authorize":
            return _found(f"{q['redirect_uri']}{sep}{urlencode({'error': 'access_denied', **state})}")
        code = secrets.token_urlsafe(20)
        self.grants[code] = Grant(
            app.client_id, user.id, q["redirect_uri"], q["scope"], time.time() + CODE_TTL_S
        )
        return _found(f"{q['redirect_uri']}{sep}{urlencode({'code': code, **state})}")

    def _client(self, request: web.Request, form: Any) -> OAuthApp | None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                client_id, secret = unquote_plus(client_id), unquote_plus(secret)
            except (binascii.Error, UnicodeDecodeError):
                return None
        app = self.apps.get(str(client_id))
        if app is None or not secrets.compare_digest(str(secret or ""), app.client_secret):
            return None
        return app

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        app = self._client(request, form)
        if app is None:
            return _json(401, {"error": "invalid_client"})
        if form.get("grant_type") != "authorization_code":
            return _json(400, {"error": "unsupported_grant_type"})
        grant = self.grants.get(str(form.get("code", "")))
        if (
            grant is None
            or grant.used
            or grant.expires < time.time()
            or grant.client_id != app.client_id
            or grant.redirect_uri != form.get("redirect_uri")
        ):
            return _json(400, {"error": "invalid_grant", "error_description": 'Invalid "code" in request.'})
        grant.used = True
        self.exchanges += 1
        access = secrets.token_urlsafe(24)
        self.tokens[access] = Token(app.client_id, grant.user_id, grant.scope, time.time() + TOKEN_TTL_S)
        return _json(
            200,
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL_S,
                "refresh_token": secrets.token_urlsafe(24),
                "scope": grant.scope,
            },
        )

    async def revoke(self, request: web.Request) -> web.Response:
        form = await request.post()
        if self._client(request, form) is None:
            return _json(401, {"error": "invalid_client"})
        token = self.tokens.get(str(form.get("token", "")))
        if token is not None and not token.revoked:
            token.revoked = True
            self.revoked.append(str(form.get("token")))
        return _json(200, {})

    async def me(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return await self.emu.rest.handle(request)  # the bot's own GET /users/@me
        token = self.tokens.get(auth[7:])
        if token is None or token.revoked or token.expires < time.time():
            return _json(401, {"message": "401: Unauthorized", "code": 0})
        user = self.emu.users[token.user_id]
        return _json(
            200, {**user.to_dict(), "locale": self.locales.get(user.id, "en-US"), "mfa_enabled": False}
        )
