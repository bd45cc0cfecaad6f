"""Keep credentials out of logs: a :class:`logging.Filter` that scrubs tokens from every record.

Tokens are credentials: the bot token for good, an interaction token for 15 minutes (it can edit and post
as the bot in that channel). discord.py's DEBUG logs carry both kinds: every gateway payload
(INTERACTION_CREATE has ``'token': '...'``), every HTTP route (``/webhooks/<app id>/<token>/...``,
``/interactions/<id>/<token>/callback``), and exceptions that quote a URL; SQLAlchemy's engine log holds
stored interaction tokens as bare SQL parameters and row values, caught by their shape (Discord's all
begin ``aW50ZXJhY3Rpb246``, the base64 of ``interaction:``). :class:`RedactingFilter`,
installed on the root handlers by :func:`bot.settings.configure_logging`, replaces them with
``[redacted]`` in the formatted message, the exception text and the stack text, whatever logger and level
the record came from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = ["REDACTED", "RedactingFilter", "scrub"]

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8

# Keys whose values are credentials, in payload dumps: JSON ("token": "...") or Python reprs ('token': '...').
_SECRET_KEY = r"[A-Za-z_-]*token|client_secret|secret|password|authorization|cookie"
_QUOTED_VALUE = re.compile(
    rf"""(?P<key>(?P<q>["'])(?:{_SECRET_KEY})(?P=q)\s*:\s*)(?P<v>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""",
    re.IGNORECASE,
)
# Interaction tokens in REST paths: /webhooks/<application id>/<token>, /interactions/<id>/<token>.
_PATH_TOKEN = re.compile(r"(?P<key>/(?:webhooks|interactions)/\d+/)(?P<v>[^/\s?#'\"<>]+)")
# Authorization headers as text: "Authorization: Bot xyz", "authorization=Bearer xyz".
_AUTH_HEADER = re.compile(
    r"(?P<key>\bauthorization\b\s*[:=]\s*(?:Bot\s+|Bearer\s+|Basic\s+)?)(?P<v>[^\s,'\"}]+)", re.I
)
# Tokens in query strings and form bodies: ?access_token=..., &code=... (an OAuth code buys a token).
_QUERY_TOKEN = re.compile(
    r"(?P<key>[?&;](?:[A-Za-z_]*token|code|client_secret|state)=)(?P<v>[^&\s'\"#]+)", re.I
)
# Passwords in URLs: postgresql+asyncpg://user:password@host/db.
_URL_PASSWORD = re.compile(r"(?P<key>[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<v>[^/\s@]+)(?=@)", re.I)

_PATTERNS = (_QUOTED_VALUE, _PATH_TOKEN, _AUTH_HEADER, _QUERY_TOKEN, _URL_PASSWORD)
# An interaction token anywhere (an SQL parameter, a row, a repr): Discord's are base64 of
# "interaction:<id>:<secret>", so they all begin with the base64 of "interaction:".
_INTERACTION_TOKEN = re.compile(r"aW50ZXJhY3Rpb246[A-Za-z0-9+/_=-]{8,}")
_SCRUBBED = "_chibify_scrubbed"
_EXCEPTIONS = logging.Formatter()  # formats exc_info as every standard Formatter does, to scrub the text


def _keep_key(match: re.Match[str]) -> str:
    value = match.group("v")
    quote = value[0] if value[:1] in {'"', "'"} else ""
    return f"{match.group('key')}{quote}{REDACTED}{quote}"


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and everything shaped like a token replaced by ``[redacted]``."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(_keep_key, text)
    return _INTERACTION_TOKEN.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Scrubs each record in place (message with its args, exception text, stack text); never drops one.

    Put it on handlers, not loggers: a handler's filters see the records that propagate to it from every
    logger (``discord.gateway``, ``discord.http``, ``aiohttp.*``), a logger's filters only its own.
    ``secrets`` are exact strings (the bot token); more can be added later with :meth:`add_secret`.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("")
        self._secrets: list[str] = []
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, secret: str) -> None:
        """Scrub this exact string from now on. Strings under 8 characters are ignored: they would mangle
        ordinary words ("x" in every "exit"), and no real token is that short (Discord's are 70 or so)."""
        secret = secret.strip()
        if len(secret) >= MIN_SECRET_LENGTH and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)  # a longer secret that contains a shorter one first

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SCRUBBED, False):  # one record, several handlers: scrub once
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format: let the handler report it, but without the raw args
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg, record.args = scrub(message, self._secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXCEPTIONS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self._secrets)
        setattr(record, _SCRUBBED, True)
        return True
