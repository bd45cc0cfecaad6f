"""Alembic environment (async template), used by both ``alembic`` on the command line and
:mod:`storage.migrate`.

The database URL comes from, in order: ``alembic -x url=...``, ``config.attributes["url"]``, the
``CHIBIFY_DATABASE_URL`` environment variable, and finally the embedded default
``sqlite+aiosqlite:///data/chibify.db``. A caller that already holds a (sync-facing) connection can put
it in ``config.attributes["connection"]``; :mod:`storage.migrate` does that.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from storage.db import DEFAULT_DATABASE_URL, create_engine, normalize_url
from storage.models import Base, UTCDateTime

config = context.config

if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def get_url() -> str:
    x_url = context.get_x_argument(as_dictionary=True).get("url")
    if x_url:
        return x_url
    attr_url = config.attributes.get("url")
    if attr_url:
        return str(attr_url)
    return os.environ.get("CHIBIFY_DATABASE_URL") or DEFAULT_DATABASE_URL


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Write storage's UTCDateTime as the plain column type it stands for."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=render_item,
        # SQLite can roll DDL back too (storage.db emits BEGIN itself), so a failed migration leaves
        # no half-built schema behind on either database.
        transactional_ddl=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``) instead of running it."""
    url = normalize_url(get_url())
    _configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    # Foreign keys off on SQLite: batch migrations rebuild tables, which must not cascade.
    engine = create_engine(get_url(), sqlite_foreign_keys=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
