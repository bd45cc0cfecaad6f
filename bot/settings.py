"""Typed settings, read from the environment (prefix ``CHIBIFY_``) and an optional ``.env`` file.

This is the only module that reads the environment; everything else gets plain values handed down.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, TextIO

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.logsafe import RedactingFilter

EngineName = Literal["chibi", "diffusion", "gan"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHIBIFY_", env_file=".env", extra="ignore", env_ignore_empty=True
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
    engine: EngineName = Field(
        "chibi",
        description="Default engine: chibi (built in, no download), diffusion or gan (trained models shipped in the package).",
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
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")

    @field_validator("diffusion_options", mode="before")
    @classmethod
    def _options_as_text(cls, v: object) -> object:
        # JSON numbers and booleans ({"steps": 20, "warmup": false}) are what people write; the engine's
        # option parser reads text and says what is wrong with a value, so hand every value on as text.
        if isinstance(v, dict):
            return {k: (str(x).lower() if isinstance(x, bool) else str(x)) for k, x in v.items()}
        return v

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
