"""``python -m bot``: settings -> logging -> storage -> generation service -> Discord bot; owns the lifetimes.

Refuses to start without a token (exit 2) or with a database that is behind (exit 2, names
``chibify db upgrade``). SIGTERM/SIGINT: stop intake, drain the running batch for a bounded time, close.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from bot.errors import UserError
from bot.settings import Settings, configure_logging

log = logging.getLogger("bot")


async def run(settings: Settings) -> int:
    from bot.app import open_app
    from bot.client import build_bot
    from bot.metrics_server import serve_metrics
    from bot.web.process import web_process

    assert settings.discord_token is not None
    token = settings.discord_token.get_secret_value()
    # Metrics bind first (a port in use stops us before the worker starts) and close after the drain.
    async with (
        serve_metrics(settings.metrics_host, settings.metrics_port) as metrics,
        open_app(settings) as app,
        web_process(settings),  # CHIBIFY_WEB_PORT: the web gallery in its own process, stopped first
    ):
        if app.service is not None:
            metrics.add(app.service.metrics.registry)
        bot = build_bot(app)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
                pass
        runner = asyncio.create_task(bot.start(token), name="discord-client")
        stopper = asyncio.create_task(stop.wait(), name="sigterm")
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            log.info("SIGTERM: stopping intake and draining (up to %.0f s)", settings.job_timeout_s)
            if app.service is not None:
                await app.service.stop(drain_timeout=settings.job_timeout_s)
        stopper.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await bot.close()
        if runner in done:
            runner.result()  # a login failure surfaces here
        else:
            await asyncio.gather(runner, return_exceptions=True)
    return 0


def main() -> int:
    try:
        settings = Settings()
    except Exception as exc:  # pydantic ValidationError
        print(f"chibify bot: bad setting: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        settings.log_level,
        secrets=[settings.discord_token.get_secret_value()] if settings.discord_token else [],
    )
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        print(
            "chibify bot: no Discord token. Set CHIBIFY_DISCORD_TOKEN (in the environment or .env) to your "
            "bot's token from https://discord.com/developers/applications, or use the `chibify` console.",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(run(settings))
    except UserError as exc:
        print(f"chibify bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
