"""Signed cookie sessions and CSRF tokens.

The session is a small JSON object in one cookie, signed with HMAC-SHA256 under ``CHIBIFY_WEB_SECRET``
(readable by its owner, unforgeable by anyone). It holds the signed-in Discord user's id and name, the
CSRF token, the OAuth ``state`` while a sign-in is under way, and a one-shot flash message. Every session
has a random id; signing out revokes that id for the rest of the session's lifetime, so a copied cookie
stops working too (the list is kept in this process's memory: a restart forgets it). No OAuth token is ever
kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from aiohttp import web

#: Where the session sits on the request (a typed ``web.RequestKey`` on aiohttp >= 3.14).
SESSION_KEY: Any = (
    web.RequestKey("chibify_session", object) if hasattr(web, "RequestKey") else "chibify.session"
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Session:
    """One visitor's session. Changes are written back as a new cookie when the response goes out."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})
        self.changed = data is None
        if "sid" not in self.data:
            self.renew()

    def renew(self) -> None:
        """A new id and CSRF token (at sign-in: a session id seen before signing in is never trusted)."""
        self.data["sid"] = secrets.token_urlsafe(16)
        self.data["csrf"] = secrets.token_urlsafe(24)
        self.data["iat"] = int(time.time())
        self.changed = True

    @property
    def sid(self) -> str:
        return str(self.data["sid"])

    @property
    def csrf(self) -> str:
        return str(self.data["csrf"])

    @property
    def discord_id(self) -> int | None:
        value = self.data.get("uid")
        return int(value) if value is not None else None

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        if self.data.get(key) != value:
            self.data[key] = value
            self.changed = True

    def pop(self, key: str, default: Any = None) -> Any:
        if key in self.data:
            self.changed = True
            return self.data.pop(key)
        return default

    def clear(self) -> None:
        self.data = {}
        self.renew()

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token).encode(), self.csrf.encode())


class SessionCodec:
    """Turns a session into a cookie value and back; a bad signature, an expired or revoked session
    reads as no session at all."""

    def __init__(self, key: bytes, max_age_s: int) -> None:
        self._key = hashlib.sha256(b"chibify-web-session\0" + key).digest()
        self.max_age_s = max_age_s
        self._revoked: dict[str, float] = {}  # sid -> when its cookie would have expired

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    def dumps(self, session: Session) -> str:
        body = _b64(json.dumps(session.data, separators=(",", ":"), ensure_ascii=True).encode("ascii"))
        return f"{body}.{self._sign(body)}"

    def loads(self, value: str | None) -> Session | None:
        if not value or value.count(".") != 1 or len(value) > 4096:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac.encode("ascii", "replace"), self._sign(body).encode("ascii")):
            return None
        try:
            data = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            return None
        issued = data.get("iat")
        if not isinstance(issued, int) or time.time() - issued > self.max_age_s:
            return None
        if data["sid"] in self._revoked:
            return None
        return Session(data)

    def revoke(self, session: Session) -> None:
        now = time.time()
        for sid, until in list(self._revoked.items()):
            if until < now:
                del self._revoked[sid]
        self._revoked[session.sid] = int(session.get("iat", now)) + self.max_age_s


def session_of(request: web.Request) -> Session:
    session = request.get(SESSION_KEY)
    assert isinstance(session, Session), "the session middleware runs first"
    return session
