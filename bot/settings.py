"""Typed settings, read from the environment (prefix ``CHIBIFY_``) and an optional ``.env`` file.

This is the only module that reads the environment; everything else gets plain values handed down.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.logsafe import RedactingFilter
from generation.broker.config import BrokerConfig
from generation.engines import USER_ENGINES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHIBIFY_",
        env_file=".env",
        extra="ignore",
        env_ignore_empty=True,
        hide_input_in_errors=True,  # a bad URL may hold a password: errors name the setting, not its value
    )

    discord_token: SecretStr | None = Field(None, description="Bot token from the Discord developer portal.")
    dev_guild_id: int | None = Field(
        None, description="Sync slash commands to this guild only (instant, for testing)."
    )
    shard_count: int | None = Field(None, ge=1, description="Run sharded with this many shards (large bots).")
    data_dir: Path = Field(Path("data"), description="Folder for the SQLite file and the image blobs.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default sqlite+aiosqlite:///<data_dir>/chibify.db. PostgreSQL: postgresql+asyncpg://...",
    )
    engine: str = Field(
        "chibi",
        description=f"Default engine, one of {', '.join(USER_ENGINES)}: chibi (built in, no download), diffusion or gan (trained models shipped in the package).",
    )
    diffusion_model: str | None = Field(
        None,
        description="Diffusion model: a local diffusers folder (or a hub id when downloads are allowed); default: the shipped chibify-mini.",
    )
    gan_model: str | None = Field(
        None, description="GAN model folder (gan.json inside); default: the shipped chibify-gan."
    )
    diffusion_allow_download: bool = Field(
        False, description="Let the diffusion engine download from a model hub."
    )
    diffusion_options: dict[str, str] = Field(
        default_factory=dict,
        description='More diffusion settings as JSON, e.g. {"steps": 20, "loras": "chibi.safetensors@0.8"}.',
    )
    queue_max_total: int = Field(
        200, ge=1, description="Jobs allowed in the queue at once, all users together."
    )
    queue_max_per_user: int = Field(5, ge=1, description="Jobs one user may have queued at once.")
    batch_max: int = Field(4, ge=1, le=64, description="Largest batch the worker runs in one go.")
    batch_window_ms: int = Field(50, ge=0, le=5000, description="How long to wait to fill a batch (ms).")
    job_timeout_s: float = Field(
        120.0, gt=0, description="A job running longer than this is killed and failed."
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Serve Prometheus metrics on this port (off when unset)."
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the metrics endpoint listens on; 0.0.0.0 lets a Prometheus elsewhere scrape it.",
    )
    # --- scaling out: generation workers on other machines through NATS JetStream (docs/scaling.md) ---
    broker_url: SecretStr | None = Field(
        None,
        description="nats://host:4222 (user:password@ allowed; comma-separate a cluster). Set: no local worker; `chibify worker` processes draw.",
    )
    broker_user: str | None = Field(None, description="Broker user name (or put it in the URL).")
    broker_password: SecretStr | None = Field(None, description="Broker password (or put it in the URL).")
    broker_creds: Path | None = Field(
        None, description="A NATS credentials file (.creds) instead of a password."
    )
    broker_tls_ca: Path | None = Field(None, description="CA certificate that signed the broker's (TLS).")
    broker_tls_cert: Path | None = Field(
        None, description="Client certificate, when the broker asks for one (TLS)."
    )
    broker_tls_key: Path | None = Field(None, description="The client certificate's key.")
    broker_prefix: str = Field(
        "chibify",
        description="Prefix of the broker's streams and subjects (two deployments can share one NATS).",
    )
    broker_ack_wait_s: float = Field(
        10.0,
        ge=1.0,
        le=3600.0,
        description="A job whose worker sends no heartbeat for this long goes to another worker (seconds).",
    )
    broker_heartbeat_s: float = Field(
        2.0,
        ge=0.1,
        le=60.0,
        description="How often workers announce themselves; one silent for three of these is taken as gone (seconds).",
    )
    instance: str = Field(
        "bot",
        description="This bot process's name at the broker; give each bot process sharing one database its own.",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    # --- the web gallery and editor (bot/web/, docs/web.md) ---
    web_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve the web gallery on this port; python -m bot runs it in its own process (off when unset).",
    )
    web_host: str = Field(
        "127.0.0.1", description="Address the web gallery listens on; 0.0.0.0 behind a reverse proxy."
    )
    web_base_url: str | None = Field(
        None,
        description="The address people open (https://...); Discord sends them back to <this>/callback.",
    )
    web_secret: SecretStr | None = Field(
        None, description="Key that signs the web's session cookies: 32+ random characters."
    )
    discord_client_id: int | None = Field(
        None, description="OAuth2 client id of the Discord application (sign-in to the web gallery)."
    )
    discord_client_secret: SecretStr | None = Field(
        None, description="OAuth2 client secret of the Discord application."
    )

    @field_validator("diffusion_options", mode="before")
    @classmethod
    def _options_as_text(cls, v: object) -> object:
        # JSON numbers and booleans ({"steps": 20, "warmup": false}) are what people write; the engine's
        # option parser reads text and says what is wrong with a value, so hand every value on as text.
        if isinstance(v, dict):
            return {k: (str(x).lower() if isinstance(x, bool) else str(x)) for k, x in v.items()}
        return v

    @field_validator("engine")
    @classmethod
    def _engine(cls, v: str) -> str:
        if v not in USER_ENGINES:
            raise ValueError(f"engine must be one of {', '.join(USER_ENGINES)}")
        return v

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            for part in filter(None, (p.strip() for p in v.get_secret_value().split(","))):
                if not re.match(r"^(nats|tls|ws|wss)://[^/]", part):
                    raise ValueError("the broker URL must look like nats://host:4222 (or tls://...)")
        return v

    @field_validator("instance", "broker_prefix")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v):
            raise ValueError("use only letters, digits, '-' and '_' (1-64 characters)")
        return v

    def broker(self) -> BrokerConfig | None:
        """The broker settings as plain values, or None (the embedded default: one local worker)."""
        if self.broker_url is None or not self.broker_url.get_secret_value().strip():
            return None
        return BrokerConfig(
            url=self.broker_url.get_secret_value(),
            user=self.broker_user,
            password=self.broker_password.get_secret_value() if self.broker_password else None,
            creds_file=str(self.broker_creds) if self.broker_creds else None,
            tls_ca=str(self.broker_tls_ca) if self.broker_tls_ca else None,
            tls_cert=str(self.broker_tls_cert) if self.broker_tls_cert else None,
            tls_key=str(self.broker_tls_key) if self.broker_tls_key else None,
            prefix=self.broker_prefix,
            ack_wait_s=self.broker_ack_wait_s,
            heartbeat_s=self.broker_heartbeat_s,
        )

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("log level must be DEBUG, INFO, WARNING or ERROR")
        return v

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'chibify.db').as_posix()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


def configure_logging(
    level: str, *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> logging.Handler | None:
    """Handlers are configured once, here, by the entry points.

    Like :func:`logging.basicConfig`, a stderr handler (or one on ``stream``, always added when given) is
    put on the root logger at ``level`` when it has none yet. Every root handler, ours and any already there,
    gets a :class:`~bot.logsafe.RedactingFilter`: ``secrets`` (the bot token) and anything shaped like a
    token (payload ``"token"`` keys, ``/webhooks/<id>/<token>``, ``Authorization: Bot ...``) never reach
    the output, at any level, discord.py's DEBUG payloads included. Returns the handler it added, if any.
    """
    root = logging.getLogger()
    added: logging.Handler | None = None
    if stream is not None or not root.handlers:
        added = logging.StreamHandler(stream if stream is not None else sys.stderr)
        added.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        root.addHandler(added)
        root.setLevel(getattr(logging, level.upper(), logging.INFO))
    redact = RedactingFilter(secrets)
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(redact)
    # discord.py is chatty at INFO about the gateway, alembic about its plugins at import; keep them to
    # warnings unless debugging.
    for chatty in ("discord", "alembic"):
        logging.getLogger(chatty).setLevel(logging.NOTSET if level.upper() == "DEBUG" else logging.WARNING)
    return added
