"""How to reach the broker, and the names everything uses there.

:class:`BrokerConfig` holds plain values (the bot's settings fill it); :func:`connect` opens a NATS
connection that reconnects forever after a broker restart and logs its troubles as one line each.
:class:`Names` derives every stream, consumer, bucket and subject from one ``prefix``, so two deployments
can share one NATS server.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from generation.worker import describe_error

__all__ = ["BrokerConfig", "BrokerUnavailable", "Names", "check_name", "connect", "redact_url"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class BrokerUnavailable(RuntimeError):
    """The broker cannot be reached (or refused us); ``str(exc)`` is one line for a person."""

    user_facing = True


def check_name(kind: str, value: str) -> str:
    """Engine, worker and instance names become parts of subjects and consumer names."""
    if not _NAME.fullmatch(value):
        raise ValueError(f"{kind} {value!r} may only use letters, digits, '-' and '_' (1-64 characters)")
    return value


def redact_url(url: str) -> str:
    """``nats://user:secret@host:4222`` -> ``nats://user:***@host:4222`` (for messages and logs)."""
    return re.sub(r"(//[^:/@]+:)[^@/]*@", r"\1***@", url)


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """``url`` is one or more ``nats://``/``tls://`` URLs, comma-separated (user:password may be in them).
    ``ack_wait_s``: how long a job may go without a heartbeat from its worker before JetStream gives it to
    another worker; workers send one every third of it. ``heartbeat_s``: how often workers announce
    themselves; one silent for three of them is taken as gone."""

    url: str = field(repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    creds_file: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    prefix: str = "chibify"
    ack_wait_s: float = 10.0
    heartbeat_s: float = 2.0
    connect_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        check_name("broker prefix", self.prefix)
        if not self.url.strip():
            raise ValueError("the broker URL is empty")
        for part in self.servers:
            if not re.match(r"^(nats|tls|ws|wss)://", part):
                raise ValueError(f"broker URL {redact_url(part)!r} must start with nats:// (or tls://)")
        if self.ack_wait_s < 0.5:
            raise ValueError("ack_wait_s must be at least 0.5 s")
        if self.heartbeat_s <= 0:
            raise ValueError("heartbeat_s must be positive")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("a TLS client certificate needs its key (and the other way round)")

    def __repr__(self) -> str:
        return f"BrokerConfig(url={self.shown_url!r}, prefix={self.prefix!r}, ack_wait_s={self.ack_wait_s})"

    @property
    def servers(self) -> list[str]:
        return [part.strip() for part in self.url.split(",") if part.strip()]

    @property
    def shown_url(self) -> str:
        return ", ".join(redact_url(s) for s in self.servers)

    @property
    def names(self) -> Names:
        return Names(self.prefix)

    def tls_context(self) -> ssl.SSLContext | None:
        if not (self.tls_ca or self.tls_cert or any(s.startswith("tls://") for s in self.servers)):
            return None
        context = (
            ssl.create_default_context(cafile=self.tls_ca) if self.tls_ca else ssl.create_default_context()
        )
        if self.tls_cert and self.tls_key:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        return context


@dataclass(frozen=True, slots=True)
class Names:
    prefix: str

    @property
    def jobs_stream(self) -> str:
        return f"{self.prefix.upper()}_JOBS"

    @property
    def results_stream(self) -> str:
        return f"{self.prefix.upper()}_RESULTS"

    @property
    def workers_bucket(self) -> str:
        return f"{self.prefix}_workers"

    @property
    def cancel_bucket(self) -> str:
        return f"{self.prefix}_cancel"

    def job_subject(self, engine: str, job_id: int) -> str:
        return f"{self.prefix}.jobs.{engine}.{job_id}"

    def engine_filter(self, engine: str) -> str:
        return f"{self.prefix}.jobs.{engine}.*"

    def engine_consumer(self, engine: str) -> str:
        return f"engine-{engine}"

    def result_subject(self, owner: str, job_id: int) -> str:
        return f"{self.prefix}.results.{owner}.{job_id}"

    def owner_filter(self, owner: str) -> str:
        return f"{self.prefix}.results.{owner}.*"

    def results_consumer(self, owner: str) -> str:
        return f"results-{owner}"

    def events_subject(self, owner: str) -> str:
        return f"{self.prefix}.events.{owner}"

    def photo_subject(self, owner: str) -> str:
        return f"{self.prefix}.photo.{owner}"

    @property
    def presence_subject(self) -> str:
        return f"{self.prefix}.presence"

    @property
    def cancel_subject(self) -> str:
        return f"{self.prefix}.cancel"


async def connect(
    config: BrokerConfig,
    *,
    name: str,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """A NATS connection (``nats.aio.client.Client``) that reconnects forever. Raises
    :class:`BrokerUnavailable` with one line if the broker cannot be reached now."""
    import nats
    from nats.errors import NoServersError

    connected = False

    async def error_cb(exc: Exception) -> None:
        if connected:  # the first connection's failure is raised as one line instead
            log.warning("broker: %s", describe_error(exc))

    async def disconnected_cb() -> None:
        if not (nc.is_closed or nc.is_draining):  # not when we leave on purpose
            log.warning("broker: disconnected from %s; reconnecting", config.shown_url)

    async def reconnected_cb() -> None:
        log.info("broker: reconnected")
        if on_reconnect is not None:
            await on_reconnect()

    options: dict[str, Any] = {
        "servers": config.servers,
        "name": name,
        "error_cb": error_cb,
        "disconnected_cb": disconnected_cb,
        "reconnected_cb": reconnected_cb,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.25,
        "connect_timeout": config.connect_timeout_s,
        "ping_interval": 10,
        "max_outstanding_pings": 3,
        "pending_size": 64 * 1024 * 1024,
    }
    if config.user:
        options["user"] = config.user
    if config.password:
        options["password"] = config.password
    if config.creds_file:
        options["user_credentials"] = config.creds_file
    try:
        tls = config.tls_context()
    except (OSError, ssl.SSLError) as exc:
        raise BrokerUnavailable(f"the broker's TLS files could not be read: {describe_error(exc)}") from None
    if tls is not None:
        options["tls"] = tls
    nc = nats.NATS()
    try:
        # The first connection fails fast (one pass over the servers); reconnecting later never gives up.
        await nc.connect(**{**options, "max_reconnect_attempts": 1})
    except (NoServersError, OSError, TimeoutError) as exc:
        raise BrokerUnavailable(
            f"cannot reach the broker at {config.shown_url} ({describe_error(exc)})"
        ) from None
    except Exception as exc:  # authorization violations and the like
        raise BrokerUnavailable(
            f"the broker at {config.shown_url} refused us: {describe_error(exc)}"
        ) from None
    nc.options["max_reconnect_attempts"] = -1
    connected = True
    return nc
