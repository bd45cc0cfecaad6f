"""The web application: its state, the middlewares (security headers, sessions, errors, CSRF) and serving.

``build_app`` makes an :class:`aiohttp.web.Application` around a :class:`~bot.studio.Studio`;
``serve`` is what ``chibify web`` runs: storage and the generation service (:func:`bot.app.open_app`), the
site, then a wait for SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import jinja2
from aiohttp import web

from bot.errors import (
    BadInput,
    Busy,
    GenerationFailed,
    Limited,
    NotFoundError,
    Refused,
    Unavailable,
    UserError,
)
from bot.settings import Settings
from bot.studio import Actor, Cooldown, Studio
from bot.web import i18n
from bot.web.config import WebConfig
from bot.web.discord import DiscordOAuth
from bot.web.gallery import Gallery
from bot.web.jobs import Saves
from bot.web.session import SESSION_KEY, Session, SessionCodec, session_of

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
LANG_COOKIE = "chibify_lang"

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
#: Downloads (SVG above all) are never run as a page, even when opened directly.
DOWNLOAD_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class WebState:
    config: WebConfig
    studio: Studio
    gallery: Gallery
    saves: Saves
    codec: SessionCodec
    templates: jinja2.Environment
    preview_limit: Cooldown
    static_version: str
    http: aiohttp.ClientSession | None = None
    oauth: DiscordOAuth | None = None
    thumbs: dict[str, bytes] = field(default_factory=dict)


STATE = web.AppKey("chibify_web", WebState)


def state_of(request: web.Request) -> WebState:
    return request.app[STATE]


# --- who is asking, in which language ------------------------------------------------------------------


def lang_of(request: web.Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in i18n.LANGS:
        return chosen
    session = request.get(SESSION_KEY)
    if isinstance(session, Session) and session.get("lang") in i18n.LANGS:
        return str(session.get("lang"))
    return i18n.from_accept_language(request.headers.get("Accept-Language"))


def actor_of(request: web.Request) -> Actor | None:
    """The signed-in Discord user (``discord:<id>``, as in the bot) or the ``--local-user``; None if neither."""
    state = state_of(request)
    lang = lang_of(request)
    if state.config.local_user is not None:
        return Actor(console_name=state.config.local_user, language=lang)
    uid = session_of(request).discord_id
    return Actor(discord_id=uid, language=lang) if uid is not None else None


def require_actor(request: web.Request) -> Actor:
    actor = actor_of(request)
    if actor is None:
        raise web.HTTPUnauthorized()
    return actor


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def flash(request: web.Request, kind: str, text: str) -> None:
    session_of(request).set("flash", [kind, text])


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (never another host: no ``//x`` or ``\\x``), else default."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


# --- rendering -----------------------------------------------------------------------------------------


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    state = state_of(request)
    lang = lang_of(request)
    session = session_of(request)
    actor = actor_of(request)
    message = session.pop("flash")
    context.setdefault("page", "plain")
    user_name = state.config.local_user if state.config.local_user is not None else session.get("name")
    html = state.templates.get_template(template).render(
        lang=lang,
        t=lambda key, **v: i18n.t(key, lang, **v),
        csrf=session.csrf,
        signed_in=actor is not None,
        local=state.config.local_user is not None,
        user_name=user_name,
        flash=message,
        path_qs=request.path_qs,
        v=state.static_version,
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def redirect(location: str, *, status: int = 303) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


def json_response(data: Any, *, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json"
    )


def _error(
    request: web.Request, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    if wants_json(request):
        resp = json_response({"error": message}, status=status)
    else:
        resp = render(
            request, "error.html", status=status, message=message, status_code=status, back=_back(request)
        )
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def _back(request: web.Request) -> str | None:
    """The page a refused form was sent from (this site's own pages only), to offer a way back to it."""
    referer = urlsplit(request.headers.get("Referer", ""))
    if request.method != "POST" or f"{referer.scheme}://{referer.netloc}" != state_of(request).config.origin:
        return None
    path = referer.path + (f"?{referer.query}" if referer.query else "")
    return local_path(path, "") or None


_STATUS: tuple[tuple[type[UserError], int], ...] = (
    (NotFoundError, 404),
    (BadInput, 400),
    (Refused, 422),
    (Limited, 429),
    (Busy, 503),
    (Unavailable, 503),
    (GenerationFailed, 502),
)


# --- middlewares ---------------------------------------------------------------------------------------


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = state_of(request)
    if state.config.local_user is not None and not _local_host(request, state.config):
        # --local-user has no sign-in: only this machine's own names may reach it (no DNS rebinding).
        return web.Response(status=421, text="Misdirected request: open http://127.0.0.1 directly.\n")
    resp = await handler(request)
    h = resp.headers
    h.setdefault("Content-Security-Policy", CSP)
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "same-origin"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Cross-Origin-Resource-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    if request.path.startswith("/static/"):  # the pages ask for them with ?v=<version>
        h.setdefault("Cache-Control", "public, max-age=604800")
    h.setdefault("Cache-Control", "no-store")
    if state.config.secure:
        h["Strict-Transport-Security"] = "max-age=31536000"
    return resp


def _local_host(request: web.Request, config: WebConfig) -> bool:
    port = urlsplit(config.base_url).port
    return request.host in (f"127.0.0.1:{port}", f"localhost:{port}")


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = state_of(request)
    session = state.codec.loads(request.cookies.get(state.config.cookie_name)) or Session()
    request[SESSION_KEY] = session
    resp = await handler(request)
    _write_cookie(resp, request, state)
    return resp


def _write_cookie(resp: web.StreamResponse, request: web.Request, state: WebState) -> None:
    session = request[SESSION_KEY]
    if not session.changed or resp.prepared:
        return
    resp.set_cookie(
        state.config.cookie_name,
        state.codec.dumps(session),
        max_age=state.config.session_max_age_s,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=state.config.secure,
    )


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure is one clear sentence: a page, or ``{"error": ...}`` under /api."""
    lang = lang_of(request)
    try:
        return await handler(request)
    except web.HTTPUnauthorized:
        if wants_json(request):
            return json_response({"error": i18n.t("err_401", lang)}, status=401)
        if request.method == "GET" and request.path != "/":  # sign in, then come back here
            return redirect("/?" + urlencode({"next": request.path_qs}))
        return redirect("/")
    except web.HTTPNotFound:
        return _error(request, 404, i18n.t("err_404", lang))
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return _error(request, 405, f"{request.method} is not allowed here (use {allowed}).")
    except web.HTTPRequestEntityTooLarge:
        return _error(request, 413, "That request is too large.")
    except web.HTTPRedirection as exc:
        return redirect(exc.headers.get("Location", "/"), status=exc.status)
    except web.HTTPException as exc:
        return _error(request, exc.status, exc.reason)
    except RateLimited as exc:
        return _error(
            request, 429, i18n.t("err_rate", lang, seconds=exc.seconds), {"Retry-After": str(exc.seconds)}
        )
    except NotFoundError:
        return _error(request, 404, i18n.t("err_404", lang))
    except UserError as exc:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
        headers = {"Retry-After": "20"} if status == 429 else None
        return _error(request, status, str(exc), headers)
    except Exception:
        ref = secrets.token_hex(3)
        log.exception("web request %s %s failed (ref %s)", request.method, request.path, ref)
        return _error(request, 500, i18n.t("err_500", lang, ref=ref))


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every POST carries the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``) and, when
    the browser says where it comes from, comes from this site."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        state = state_of(request)
        origin = request.headers.get("Origin")
        token = request.headers.get("X-CSRF-Token")
        if token is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            token = str((await request.post()).get("csrf") or "")
        if (origin is not None and origin != state.config.origin) or not session_of(request).check_csrf(
            token
        ):
            return _error(request, 403, i18n.t("err_403_csrf", lang_of(request)))
    return await handler(request)


class RateLimited(Exception):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"retry in {seconds} s")
        self.seconds = seconds


def limit(cooldown: Cooldown, key: str) -> None:
    """Count one request against ``cooldown``; :class:`RateLimited` (429) when over."""
    wait = cooldown.retry_after(key)
    if wait > 0:
        raise RateLimited(max(1, round(wait)))
    cooldown.hit(key)


# --- building and serving ------------------------------------------------------------------------------


def build_app(studio: Studio, config: WebConfig) -> web.Application:
    from bot.web import routes

    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    if studio.cooldown is None:  # the studio's admission gate limits saves, as it limits /edit in Discord
        studio.cooldown = Cooldown(*config.save_rate)
    app = web.Application(middlewares=[security_headers, sessions, errors, csrf], client_max_size=64 * 1024)
    state = WebState(
        config=config,
        studio=studio,
        gallery=Gallery(studio),
        saves=Saves(studio),
        codec=SessionCodec(config.secret, config.session_max_age_s),
        templates=templates,
        preview_limit=Cooldown(*config.preview_rate),
        static_version=_static_version(),
    )
    app[STATE] = state
    routes.add_routes(app)

    async def open_http(app: web.Application) -> AsyncIterator[None]:
        state.http = aiohttp.ClientSession()
        if config.client_id and config.client_secret:
            state.oauth = DiscordOAuth(
                state.http,
                discord_url=config.discord_url,
                client_id=config.client_id,
                client_secret=config.client_secret,
            )
        yield
        await state.saves.close()
        await state.http.close()

    app.cleanup_ctx.append(open_http)
    return app


def _static_version() -> str:
    """Changes whenever a static file changes, so browsers never keep an old script or style."""
    stamps = [int(p.stat().st_mtime) for p in sorted((HERE / "static").iterdir())]
    return format(hash(tuple(stamps)) & 0xFFFFFF, "x")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or :class:`~bot.errors.Unavailable` with one line when the port is taken."""
    hint = "Pick another port with --port (or CHIBIFY_WEB_PORT)."
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise Unavailable(f"the web port {host}:{port} is already in use.", hint) from None
        raise Unavailable(f"cannot serve the web on {host}:{port}: {exc.strerror or exc}.", hint) from None
    sock.setblocking(False)
    return sock


async def start(app: web.Application, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


async def serve(settings: Settings, config: WebConfig, *, host: str, port: int) -> int:
    """``chibify web``: bind first (a taken port stops us before the worker starts), then storage and the
    generation service, then serve until SIGTERM/SIGINT; in-flight saves finish while the service drains."""
    from bot.app import open_app

    sock = bind(host, port)
    try:
        async with open_app(settings, recover=False) as opened:
            runner = await start(build_app(opened.studio, config), sock)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            who = f"as {config.local_user!r}, no sign-in" if config.local_user else "with Discord sign-in"
            print(f"chibify web: serving {config.base_url} ({who}); Ctrl+C stops it", flush=True)
            started = time.monotonic()
            try:
                await stop.wait()
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
                log.info("web: stopping after %.0f s", time.monotonic() - started)
                await runner.cleanup()
    finally:
        sock.close()
    return 0
