"""Engines and sessions.

Nothing here runs at import time: the entry point calls :func:`create_engine` once, builds a
sessionmaker with :func:`make_sessionmaker`, and disposes the engine on shutdown.

One session per unit of work::

    async with sessionmaker() as session, session.begin():
        ...

SQLite specifics (applied on every new DBAPI connection):

* ``journal_mode=WAL`` so readers never block the writer and vice versa;
* ``foreign_keys=ON`` so ``ON DELETE CASCADE`` / ``SET NULL`` work as on PostgreSQL;
* ``synchronous=FULL``: a commit the user was told about survives a power cut;
* ``busy_timeout`` so a second writer waits instead of failing with "database is locked";
* SQLAlchemy emits ``BEGIN IMMEDIATE`` itself (the ``sqlite3`` driver's legacy transaction handling is
  switched off). Every transaction takes SQLite's write lock up front, so a read-then-write transaction
  can never fail half-way with ``SQLITE_BUSY`` and SAVEPOINTs really nest inside the transaction.
  Writers are serialised, which is what SQLite does anyway.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = [
    "DEFAULT_DATABASE_URL",
    "create_engine",
    "is_sqlite",
    "make_sessionmaker",
    "normalize_url",
    "redact_url",
]

log = logging.getLogger(__name__)

#: The embedded default: a SQLite file under ./data (relative to the working directory).
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/chibify.db"

#: How long a SQLite connection waits for another writer before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: How long a task waits for the (single) pooled SQLite connection, in seconds.
SQLITE_POOL_TIMEOUT_S = 60.0

_DRIVER_ALIASES = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
}


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and swap sync drivers for the async ones storage uses.

    ``sqlite:///x.db`` becomes ``sqlite+aiosqlite:///x.db`` and ``postgres://`` or ``postgresql://``
    becomes ``postgresql+asyncpg://``, so the URLs people paste from other tools just work.
    """
    parsed = make_url(url) if isinstance(url, str) else url
    driver = _DRIVER_ALIASES.get(parsed.drivername)
    if driver is not None:
        parsed = parsed.set(drivername=driver)
    if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    return parsed


def redact_url(url: str | URL) -> str:
    """The URL with any password hidden, for logs and error messages."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def is_sqlite(url: str | URL) -> bool:
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.get_backend_name() == "sqlite"


def _sqlite_database(url: URL) -> str:
    """The database of a SQLite URL; in-memory databases are refused."""
    database = url.database or ""
    if database in ("", ":memory:") or "mode=memory" in database or database.startswith("file::memory:"):
        # Each engine (the app's, the migration runner's) would see its own empty database.
        raise ValueError("in-memory SQLite is not supported; use a database file (e.g. under a temp dir)")
    return database


def create_engine(url: str | URL, *, echo: bool = False, sqlite_foreign_keys: bool = True) -> AsyncEngine:
    """Create the :class:`AsyncEngine` for ``url`` (SQLite via aiosqlite or PostgreSQL via asyncpg).

    For a SQLite file the parent directory is created if missing. ``sqlite_foreign_keys=False`` is only
    for migrations: Alembic's batch mode rebuilds tables, which must not fire ``ON DELETE`` actions.
    """
    parsed = normalize_url(url)
    # hide_parameters: SQL parameters (interaction tokens, prompts) never reach a log or an error message
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True
        engine = create_async_engine(parsed, **kwargs)
        log.debug("created PostgreSQL engine for %s", redact_url(parsed))
        return engine

    database = _sqlite_database(parsed)
    if not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # Every SQLite transaction takes the write lock (BEGIN IMMEDIATE), so extra connections would only
    # sleep in SQLite's busy handler. One pooled connection makes tasks queue in asyncio instead, first
    # come first served. Other processes still wait via busy_timeout.
    kwargs.update(pool_size=1, max_overflow=0, pool_timeout=SQLITE_POOL_TIMEOUT_S)
    engine = create_async_engine(parsed, **kwargs)
    _install_sqlite_hooks(engine, foreign_keys=sqlite_foreign_keys)
    log.debug("created SQLite engine for %s", redact_url(parsed))
    return engine


def _install_sqlite_hooks(engine: AsyncEngine, *, foreign_keys: bool) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the sqlite3 driver; SQLAlchemy emits BEGIN below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS:d}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (``expire_on_commit=False``)."""
    return async_sessionmaker(engine, expire_on_commit=False)
