"""The web gallery as a child of ``python -m bot`` (with ``CHIBIFY_WEB_PORT`` set).

It runs ``chibify web`` in its own process, so a slow page never holds up the bot's event loop and the bot
process stays free of the web's work; it shares the database and the image store through the same settings
(environment and ``.env``). It is started after the bot's own parts and stopped (SIGTERM, then a bounded
wait, then SIGKILL) before they close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

from bot.settings import Settings

log = logging.getLogger(__name__)


def command(settings: Settings) -> list[str]:
    assert settings.web_port is not None
    return [
        sys.executable,
        "-m",
        "bot.cli",
        "web",
        "--host",
        settings.web_host,
        "--port",
        str(settings.web_port),
    ]


@contextlib.asynccontextmanager
async def web_process(settings: Settings) -> AsyncIterator[asyncio.subprocess.Process | None]:
    """The running web process for the block (None when ``CHIBIFY_WEB_PORT`` is unset)."""
    if settings.web_port is None:
        yield None
        return
    from bot.web.config import web_config

    web_config(settings, host=settings.web_host, port=settings.web_port)  # a missing setting stops us here
    proc = await asyncio.create_subprocess_exec(*command(settings), stdin=asyncio.subprocess.DEVNULL)
    log.info("web gallery starting on %s:%s (pid %s)", settings.web_host, settings.web_port, proc.pid)
    stopping = False

    async def watch() -> None:
        code = await proc.wait()
        if not stopping:
            log.error("the web gallery stopped on its own (exit %s); the bot goes on without it", code)

    watcher = asyncio.create_task(watch(), name="web-process")
    try:
        yield proc
    finally:
        stopping = True
        if proc.returncode is None:
            proc.terminate()
            try:
                # it lets its saves in progress finish, as the bot does: give it the same drain time
                await asyncio.wait_for(asyncio.shield(watcher), settings.job_timeout_s + 10)
            except TimeoutError:
                log.warning("the web gallery did not stop in time; killing it")
                proc.kill()
        await asyncio.gather(watcher, return_exceptions=True)
