"""The Prometheus endpoint of ``python -m bot``: ``GET /metrics`` while the bot runs.

``CHIBIFY_METRICS_PORT`` turns it on (``CHIBIFY_METRICS_HOST``, default ``127.0.0.1``, is where it listens).
It runs in the bot's own event loop on aiohttp (no thread), is bound before anything else starts, so a
port already in use stops the bot at once with one line (:class:`~bot.errors.Unavailable`, exit 2), and
closes after the generation service has drained. It serves the generation service's registry
(``chibify_generation_*``, see generation/metrics.py) and prometheus_client's default one (``process_*``,
``python_*``).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.errors import Unavailable

__all__ = ["MetricsServer", "serve_metrics"]

log = logging.getLogger(__name__)

_HINT = "Set CHIBIFY_METRICS_PORT to a free port, or leave it empty to turn metrics off."


class MetricsServer:
    """``GET /metrics`` on ``host:port`` (port 0: any free port; :attr:`port` says which after start)."""

    def __init__(self, host: str, port: int, registries: tuple[CollectorRegistry, ...] = (REGISTRY,)) -> None:
        self.host = host
        self.port = port
        self.registries: list[CollectorRegistry] = list(registries)
        self._runner: web.AppRunner | None = None

    def add(self, registry: CollectorRegistry) -> None:
        """Serve ``registry`` too (the generation service's, once it exists)."""
        if registry not in self.registries:
            self.registries.append(registry)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    async def _metrics(self, request: web.Request) -> web.Response:
        body = b"".join(generate_latest(registry) for registry in self.registries)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise Unavailable(
                    f"the metrics port {self.host}:{self.port} is already in use.", _HINT
                ) from None
            reason = exc.strerror or str(exc)
            raise Unavailable(f"cannot serve metrics on {self.host}:{self.port}: {reason}.", _HINT) from None
        self._runner = runner
        if self.port == 0:
            self.port = runner.addresses[0][1]
        log.info("metrics on %s", self.url)

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


@asynccontextmanager
async def serve_metrics(host: str, port: int | None) -> AsyncIterator[MetricsServer]:
    """A started server for the block, closed after; with ``port`` None (metrics off) one that never listens,
    so callers can ``add`` registries either way."""
    server = MetricsServer(host, port if port is not None else 0)
    if port is None:
        yield server
        return
    await server.start()
    try:
        yield server
    finally:
        await server.close()
