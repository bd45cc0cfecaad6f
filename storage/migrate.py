"""Schema migrations, callable from the application (``chibify db upgrade``) and the tests.

The Alembic configuration is built in code, with ``script_location`` pointing at the importable
``migrations`` package, so this works from a source checkout and from an installed wheel alike; the
``alembic.ini`` at the repository root is only for the ``alembic`` command line.

Each function opens its own short-lived engine and runs Alembic on a connection handed over through
``config.attributes["connection"]``, so it can be awaited from inside a running event loop.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine, redact_url
from storage.errors import DatabaseBehind, SchemaMismatch

__all__ = [
    "alembic_config",
    "check_up_to_date",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]

log = logging.getLogger(__name__)

UPGRADE_HINT = "run `chibify db upgrade`"


def _script_location() -> Path:
    spec = importlib.util.find_spec("migrations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the `migrations` package is not importable; is chibify installed?")
    return Path(next(iter(spec.submodule_search_locations)))


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic :class:`Config` for chibify's migrations (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(_script_location()))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.attributes["url"] = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    return config


def head_revision() -> str:
    """The newest revision this code knows about."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - there is always at least the initial revision
        raise RuntimeError("no migration scripts found")
    return head


async def _run_command(url: str | URL, fn: Callable[[Config], Any]) -> None:
    # Foreign keys off on SQLite while migrating: batch operations rebuild tables, which must not cascade.
    engine = create_engine(url, sqlite_foreign_keys=False)
    try:
        async with engine.begin() as conn:

            def run(sync_conn: Connection) -> None:
                config = alembic_config(url)
                config.attributes["connection"] = sync_conn
                fn(config)

            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def upgrade(url: str | URL, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (default: the newest), in one transaction."""
    log.info("upgrading database %s to %s", redact_url(url), revision)
    await _run_command(url, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(url: str | URL, revision: str) -> None:
    """Take the database at ``url`` back to ``revision`` (``"base"`` removes every table)."""
    log.info("downgrading database %s to %s", redact_url(url), revision)
    await _run_command(url, lambda cfg: command.downgrade(cfg, revision))


def _current(sync_conn: Connection) -> str | None:
    return MigrationContext.configure(sync_conn).get_current_revision()


async def current_revision(target: str | URL | AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty (never migrated) database."""
    if isinstance(target, AsyncEngine):
        async with target.connect() as conn:
            return await conn.run_sync(_current)
    engine = create_engine(target)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


async def check_up_to_date(target: str | URL | AsyncEngine) -> None:
    """Raise :class:`DatabaseBehind` unless the database is at :func:`head_revision`.

    A revision this code does not know (the database was upgraded by a newer chibify) raises
    :class:`SchemaMismatch`.
    """
    current = await current_revision(target)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise DatabaseBehind(f"the database has no tables yet: {UPGRADE_HINT}")
    scripts = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in scripts.walk_revisions()}
    if current not in known:
        raise SchemaMismatch(
            f"the database is at revision {current}, which this version of chibify does not know "
            f"(it expects {head}); was it upgraded by a newer version?"
        )
    raise DatabaseBehind(
        f"the database is at revision {current} but this version needs {head}: {UPGRADE_HINT}"
    )
