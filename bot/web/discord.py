"""Discord's side of the web: OAuth2 sign-in (authorization-code flow, scope ``identify``) and, with the bot
token, removing the bot's messages that showed an avatar deleted on the web.

Plain HTTP with aiohttp's client (no discord.py here). The access token lives only inside
:meth:`DiscordOAuth.sign_in`: it is used once for ``/users/@me`` and revoked at once; it is never stored
and never logged.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import aiohttp

log = logging.getLogger(__name__)

API_VERSION = "v10"
TIMEOUT = aiohttp.ClientTimeout(total=15)


def _basic(user: str, password: str) -> str:
    """HTTP Basic client authentication (RFC 6749 2.3.1: each part form-encoded first)."""
    raw = f"{quote_plus(user)}:{quote_plus(password)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class SignInFailed(Exception):
    """Discord refused or failed the sign-in; the message is safe to show (no token in it)."""


@dataclass(frozen=True)
class DiscordUser:
    id: int
    name: str  # global display name, else the username
    locale: str | None


class DiscordOAuth:
    def __init__(
        self, http: aiohttp.ClientSession, *, discord_url: str, client_id: str, client_secret: str
    ) -> None:
        self._http = http
        self._url = discord_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret

    @property
    def api(self) -> str:
        return f"{self._url}/api/{API_VERSION}"

    def authorize_url(self, *, state: str, redirect_uri: str) -> str:
        query = urlencode(
            {
                "client_id": self._client_id,
                "response_type": "code",
                "scope": "identify",
                "state": state,
                "redirect_uri": redirect_uri,
                "prompt": "none",
            }
        )
        return f"{self._url}/oauth2/authorize?{query}"

    async def sign_in(self, code: str, *, redirect_uri: str) -> DiscordUser:
        """Exchange the code for a token on the server, read who signed in, revoke the token."""
        auth = {"Authorization": _basic(self._client_id, self._client_secret)}
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        try:
            async with self._http.post(
                f"{self.api}/oauth2/token", data=form, headers=auth, timeout=TIMEOUT
            ) as resp:
                body: Any = await resp.json(content_type=None)
                if resp.status != 200 or not isinstance(body, dict) or "access_token" not in body:
                    error = body.get("error") if isinstance(body, dict) else None
                    log.warning("Discord refused the OAuth2 code exchange: HTTP %s %s", resp.status, error)
                    raise SignInFailed(f"Discord refused the sign-in ({error or resp.status}).")
                token = str(body["access_token"])
            headers = {"Authorization": f"Bearer {token}"}
            try:
                async with self._http.get(f"{self.api}/users/@me", headers=headers, timeout=TIMEOUT) as resp:
                    me: Any = await resp.json(content_type=None)
                    if resp.status != 200 or not isinstance(me, dict) or "id" not in me:
                        log.warning("Discord answered /users/@me with HTTP %s", resp.status)
                        raise SignInFailed("Discord did not say who signed in.")
            finally:
                await self._revoke(token, auth)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("Discord sign-in failed: %s", type(exc).__name__)
            raise SignInFailed("Discord could not be reached. Try again in a moment.") from None
        name = me.get("global_name") or me.get("username") or "?"
        return DiscordUser(int(me["id"]), str(name), me.get("locale"))

    async def _revoke(self, token: str, auth: dict[str, str]) -> None:
        form = {"token": token, "token_type_hint": "access_token"}
        try:
            async with self._http.post(
                f"{self.api}/oauth2/token/revoke", data=form, headers=auth, timeout=TIMEOUT
            ) as resp:
                if resp.status != 200:
                    log.info("Discord did not revoke the sign-in token: HTTP %s", resp.status)
        except (aiohttp.ClientError, TimeoutError):
            log.info("could not reach Discord to revoke the sign-in token")


async def delete_bot_messages(
    http: aiohttp.ClientSession, *, discord_url: str, bot_token: str, messages: Sequence[tuple[int, int]]
) -> int:
    """Delete the bot's messages (channel id, message id) that showed a deleted avatar; returns how many
    went. A message already gone counts as removed; other failures are logged and skipped."""
    removed = 0
    headers = {"Authorization": f"Bot {bot_token}"}
    for channel_id, message_id in messages:
        url = f"{discord_url.rstrip('/')}/api/{API_VERSION}/channels/{int(channel_id)}/messages/{int(message_id)}"
        try:
            async with http.delete(url, headers=headers, timeout=TIMEOUT) as resp:
                if resp.status in (200, 204, 404):
                    removed += 1
                else:
                    log.info(
                        "could not delete message %s in %s: HTTP %s", message_id, channel_id, resp.status
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("could not delete message %s: %s", message_id, type(exc).__name__)
    return removed
