"""No credentials in logs: the bot token and interaction tokens never reach the output, at any level.

The records here are the ones discord.py and aiohttp really write (same loggers, same format strings and
argument shapes as in their sources), sent through the handler :func:`configure_logging` installs; the last
test runs the real bot against the emulator at DEBUG and reads everything it logged.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import sqlite3
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from bot.logsafe import REDACTED, RedactingFilter, scrub
from bot.settings import configure_logging
from tests.bot.conftest import BotFactory, result_message
from tests.discord.emulator import DiscordEmulator

BOT_TOKEN = "MTE5NjQ4NzI5MzE0MzY4NzE2OA.GhXq3b.c2VjcmV0LWJvdC10b2tlbi1mb3ItdGVzdHMtb25seQ"
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTE5NjQ4NzI5MzE0MzY4NzE2OTpTZWNyZXRJbnRlcmFjdGlvblRva2VuRm9yVGVzdHM"
APP_ID = "1196487293143687168"


@contextlib.contextmanager
def debug_logs(secret: str) -> Iterator[io.StringIO]:
    """configure_logging at DEBUG writing to a buffer; every piece of global logging state restored after."""
    loggers = [logging.getLogger(name) for name in ("", "discord", "alembic")]
    levels = [logger.level for logger in loggers]
    filters = {handler: list(handler.filters) for handler in loggers[0].handlers}
    out = io.StringIO()
    added = configure_logging("DEBUG", secrets=[secret], stream=out)
    try:
        yield out
    finally:
        if added is not None:
            loggers[0].removeHandler(added)
        for handler, kept in filters.items():
            handler.filters[:] = kept
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    with debug_logs(BOT_TOKEN) as out:
        yield out


def interaction_create() -> dict[str, Any]:
    """An INTERACTION_CREATE frame as discord.gateway parses and logs it (a dict, printed with %s)."""
    return {
        "t": "INTERACTION_CREATE",
        "s": 7,
        "op": 0,
        "d": {
            "id": "1196487300000000000",
            "application_id": APP_ID,
            "type": 2,
            "token": INTERACTION_TOKEN,
            "data": {"name": "avatar", "options": [{"name": "prompt", "value": "cat's ears", "type": 3}]},
            "member": {"user": {"id": "42", "username": "alice"}},
        },
    }


def test_gateway_payloads_lose_their_tokens_and_keep_the_rest(log_output: io.StringIO) -> None:
    gateway = logging.getLogger("discord.gateway")
    gateway.debug("For Shard ID %s: WebSocket Event: %s", None, interaction_create())
    # The raw TEXT frame (JSON) and a VOICE_SERVER_UPDATE, whose token joins a voice call.
    gateway.debug("Received %s", '{"t":"INTERACTION_CREATE","d":{"token":"' + INTERACTION_TOKEN + '"}}')
    gateway.debug("Voice event: %s", {"t": "VOICE_SERVER_UPDATE", "d": {"token": "voice-secret-42"}})
    text = log_output.getvalue()
    assert INTERACTION_TOKEN not in text and "voice-secret-42" not in text
    assert f"'token': '{REDACTED}'" in text and f'"token":"{REDACTED}"' in text
    assert "INTERACTION_CREATE" in text and "cat's ears" in text and "'username': 'alice'" in text
    assert len(text.splitlines()) == 3


def test_http_routes_headers_and_the_bot_token_are_scrubbed(log_output: io.StringIO) -> None:
    http = logging.getLogger("discord.http")
    base = "https://discord.com/api/v10"
    callback = f"{base}/interactions/1196487300000000000/{INTERACTION_TOKEN}/callback?with_response=1"
    original = f"{base}/webhooks/{APP_ID}/{INTERACTION_TOKEN}/messages/@original"
    http.debug("%s %s with %s has returned %s", "POST", callback, '{"type":5,"data":{}}', 200)
    http.debug("%s %s has received %s", "PATCH", original, {"id": "1", "content": "done"})
    logging.getLogger("discord.webhook.async_").debug(
        "Webhook ID %s with %s %s has returned status code %s", APP_ID, "PATCH", original, 401
    )
    http.debug("headers: %s", {"Authorization": f"Bot {BOT_TOKEN}", "User-Agent": "DiscordBot"})
    http.debug("sent Authorization: Bot %s to %s", BOT_TOKEN, "/users/@me")
    logging.getLogger("bot").info("logged in with %s", BOT_TOKEN)  # the exact token, anywhere
    text = log_output.getvalue()
    assert INTERACTION_TOKEN not in text and BOT_TOKEN not in text
    assert f"/interactions/1196487300000000000/{REDACTED}/callback?with_response=1" in text
    assert text.count(f"/webhooks/{APP_ID}/{REDACTED}/messages/@original") == 2
    assert f"'Authorization': '{REDACTED}'" in text and "'User-Agent': 'DiscordBot'" in text
    assert f"Authorization: Bot {REDACTED} to /users/@me" in text
    assert f"logged in with {REDACTED}" in text


def test_exception_and_stack_text_are_scrubbed(log_output: io.StringIO) -> None:
    url = yarl.URL(f"https://discord.com/api/v10/webhooks/{APP_ID}/{INTERACTION_TOKEN}/messages/@original")
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bot {BOT_TOKEN}"}))
    info = aiohttp.RequestInfo(url, "PATCH", headers, url)
    try:
        raise aiohttp.ClientResponseError(info, (), status=401, message="Unauthorized")
    except aiohttp.ClientResponseError as exc:
        assert INTERACTION_TOKEN in str(exc)  # what an unfiltered traceback would print
        logging.getLogger("discord.client").exception("Ignoring exception in %s", "on_interaction")
    logging.getLogger("aiohttp.client").warning("stack at %s", url, stack_info=True)
    text = log_output.getvalue()
    assert INTERACTION_TOKEN not in text and BOT_TOKEN not in text
    assert "Traceback (most recent call last)" in text and "ClientResponseError" in text
    assert f"/webhooks/{APP_ID}/{REDACTED}/messages/@original" in text
    assert "Stack (most recent call last)" in text


def test_stored_interaction_tokens_in_sql_logs_are_scrubbed(log_output: io.StringIO) -> None:
    """aiosqlite logs every call it runs at DEBUG (a partial holding the SQL and its parameters), and
    SQLAlchemy's engine log (echo) prints parameters as bare tuples: no key to go by, so an interaction
    token is known by its shape (base64 of "interaction:<id>:<secret>")."""
    connection = sqlite3.connect(":memory:")
    params = (1, "bbddc41662d4", INTERACTION_TOKEN, "2026-12-05 09:26:56")
    call = functools.partial(connection.execute, "INSERT INTO jobs VALUES (?, ?, ?, ?)", params)
    logging.getLogger("aiosqlite").debug("executing %s", call)
    logging.getLogger("aiosqlite").debug("operation %s completed", call)
    logging.getLogger("sqlalchemy.engine.Engine").warning("[cached since 3.2s ago] %r", params)
    connection.close()
    text = log_output.getvalue()
    assert INTERACTION_TOKEN not in text
    assert text.count(f"(1, 'bbddc41662d4', '{REDACTED}', '2026-12-05 09:26:56')") == 3


def test_filter_keeps_every_record_and_leaves_harmless_text_alone() -> None:
    harmless = [
        "token bucket refilled: 5 tokens left",
        "{'token_type': 'Bearer', 'expires_in': 604800}",
        "GET /api/v10/channels/123/messages/456 has returned 200",
        "error code: 50027 Invalid Webhook Token",
    ]
    for text in harmless:
        assert scrub(text, [BOT_TOKEN]) == text
    secrets = {
        "postgresql+asyncpg://chibify:hunter2@db/chibify": "postgresql+asyncpg://chibify:[redacted]@db/chibify",
        "GET /oauth2/callback?code=abc123&state=xyz HTTP/1.1": f"GET /oauth2/callback?code={REDACTED}&state={REDACTED} HTTP/1.1",
        '{"access_token": "at-1", "refresh_token": "rt-2"}': f'{{"access_token": "{REDACTED}", "refresh_token": "{REDACTED}"}}',
        "authorization=Bearer at-1": f"authorization=Bearer {REDACTED}",
    }
    for raw, expected in secrets.items():
        assert scrub(raw) == expected
    record = logging.LogRecord("discord.http", logging.DEBUG, __file__, 1, "token %s", (BOT_TOKEN,), None)
    assert RedactingFilter([BOT_TOKEN, "x"]).filter(record) is True
    assert record.getMessage() == f"token {REDACTED}"
    # A secret too short to be a token would mangle ordinary words: it is not used for exact matching.
    assert scrub("exit code 2", ["x"]) == "exit code 2"


def test_configure_logging_scrubs_records_for_handlers_already_installed() -> None:
    """A handler someone installed before (a platform's, or pytest's) gets the filter too."""
    root = logging.getLogger()
    out = io.StringIO()
    theirs = logging.StreamHandler(out)
    root.addHandler(theirs)
    levels = {name: logging.getLogger(name).level for name in ("", "discord", "alembic")}
    try:
        assert configure_logging("INFO", secrets=[BOT_TOKEN]) is None  # a handler exists: none added
        root.setLevel(logging.INFO)
        logging.getLogger("bot").warning("token is %s", BOT_TOKEN)
    finally:
        root.removeHandler(theirs)
        for handler in root.handlers:
            handler.filters[:] = [f for f in handler.filters if not isinstance(f, RedactingFilter)]
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    assert out.getvalue() == f"token is {REDACTED}\n"


@pytest.mark.asyncio(loop_scope="module")
async def test_a_real_bot_at_debug_logs_no_token(emulator: DiscordEmulator, make_bot: BotFactory) -> None:
    with debug_logs(emulator.token) as out:
        logging.getLogger("bot.test").debug("configured with %s", emulator.token)  # the exact secret
        async with emulator.running(make_bot()):
            handle = await emulator.slash(emulator.alice, "avatar", {"prompt": "cat ears, glasses"})
            await result_message(handle)
    text = out.getvalue()
    # discord.py logged the interaction's payload and its webhook routes, and they were scrubbed.
    assert "INTERACTION_CREATE" in text and f"'token': '{REDACTED}'" in text
    assert f"/webhooks/{emulator.application_id}/{REDACTED}/" in text
    assert f"/interactions/{handle.id}/{REDACTED}/callback" in text
    assert handle.token not in text
    assert emulator.token not in text and f"configured with {REDACTED}" in text
