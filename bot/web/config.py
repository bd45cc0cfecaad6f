"""What the web adapter needs to know, as plain values: built once from :class:`~bot.settings.Settings`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.errors import BadInput, Unavailable
from bot.settings import Settings

DISCORD_URL = "https://discord.com"
LOCAL_HOST = "127.0.0.1"
MIN_SECRET_CHARS = 32
SESSION_MAX_AGE_S = 7 * 24 * 3600

_SECRET_HINT = (
    "Set CHIBIFY_WEB_SECRET to a long random string, e.g. the output of "
    "python -c 'import secrets; print(secrets.token_urlsafe(32))'."
)


@dataclass(frozen=True)
class WebConfig:
    """``local_user`` set: everyone who reaches 127.0.0.1 is that console user, no sign-in. Otherwise people
    sign in with Discord OAuth2 (``client_id``/``client_secret``), and ``base_url`` is where Discord sends
    them back (``<base_url>/callback`` must be listed as a redirect in the developer portal)."""

    base_url: str
    secret: bytes
    client_id: str | None = None
    client_secret: str | None = None
    local_user: str | None = None
    discord_url: str = DISCORD_URL
    bot_token: str | None = None  # to delete the bot's messages that showed a deleted avatar
    session_max_age_s: int = SESSION_MAX_AGE_S
    preview_rate: tuple[int, float] = (40, 10.0)  # previews per window per user
    save_rate: tuple[int, float] = (6, 60.0)  # saves per window per user (the studio's gate checks too)

    @property
    def secure(self) -> bool:
        """Cookies get ``Secure`` (and the ``__Host-`` name) when the site is served over https."""
        return self.base_url.startswith("https://")

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/callback"

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def cookie_name(self) -> str:
        return "__Host-chibify" if self.secure else "chibify"


def check_base_url(url: str) -> str:
    """``http(s)://host[:port]`` with no path, query or fragment; the trailing slash is dropped."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(
            f"CHIBIFY_WEB_BASE_URL {url!r} is not an http(s) address.",
            "Use the address people open, e.g. https://chibify.example.com.",
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BadInput(
            f"CHIBIFY_WEB_BASE_URL {url!r} has a path.",
            "Serve the web at the root of its own host name, e.g. https://chibify.example.com.",
        )
    return f"{parts.scheme}://{parts.netloc}"


def web_config(
    settings: Settings, *, host: str, port: int, local_user: str | None = None, discord_url: str = DISCORD_URL
) -> WebConfig:
    """The web's configuration, or a :class:`~bot.errors.UserError` that says which setting is missing."""
    bot_token = settings.discord_token.get_secret_value() if settings.discord_token else None
    if local_user is not None:
        if host != LOCAL_HOST:
            raise BadInput(
                f"--local-user serves without sign-in, so it listens on {LOCAL_HOST} only (not {host}).",
                "Drop --host, or set up Discord sign-in (see docs/web.md).",
            )
        return WebConfig(
            base_url=f"http://{LOCAL_HOST}:{port}",
            secret=secrets.token_bytes(32),
            local_user=local_user,
            discord_url=discord_url,
            bot_token=bot_token,
        )
    missing = [
        name
        for name, value in (
            ("CHIBIFY_DISCORD_CLIENT_ID", settings.discord_client_id),
            ("CHIBIFY_DISCORD_CLIENT_SECRET", settings.discord_client_secret),
            ("CHIBIFY_WEB_SECRET", settings.web_secret),
        )
        if value is None
    ]
    if missing:
        raise Unavailable(
            f"Discord sign-in needs {', '.join(missing)}.",
            "See docs/web.md, or run `chibify web --local-user NAME` for a private gallery without sign-in.",
        )
    assert settings.web_secret is not None and settings.discord_client_secret is not None
    secret = settings.web_secret.get_secret_value()
    if len(secret) < MIN_SECRET_CHARS:
        raise BadInput(f"CHIBIFY_WEB_SECRET is {len(secret)} characters; use at least 32.", _SECRET_HINT)
    shown_host = f"[{host}]" if ":" in host else host
    base = (
        settings.web_base_url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown_host}:{port}"
    )
    return WebConfig(
        base_url=check_base_url(base),
        secret=secret.encode("utf-8"),
        client_id=str(settings.discord_client_id),
        client_secret=settings.discord_client_secret.get_secret_value(),
        discord_url=discord_url,
        bot_token=bot_token,
    )
