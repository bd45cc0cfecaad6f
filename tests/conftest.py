"""Shared fixtures: real databases for storage (SQLite files and the local PostgreSQL server).

PostgreSQL: the server at ``CHIBIFY_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``, trust auth) gets one throwaway database per test
session, ``chibify_test_<random>``, migrated once and dropped at the end; tests start from emptied tables.
If the server cannot be reached the PostgreSQL tests are skipped, or fail when
``CHIBIFY_REQUIRE_POSTGRES=1`` (CI sets it).

SQLite: one migrated template file per session, copied for each test (fast and fully isolated).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy.engine import make_url

from storage import Storage, migrate

POSTGRES_URL_ENV = "CHIBIFY_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "CHIBIFY_REQUIRE_POSTGRES"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STORAGE_TABLES = ("avatars", "jobs", "users", "guilds")


@dataclass(frozen=True)
class PostgresServer:
    """A reachable PostgreSQL server on which tests may create and drop databases."""

    admin_url: str

    def _connect(self, database: str | None = None) -> psycopg2.extensions.connection:
        url = make_url(self.admin_url)
        if database is not None:
            url = url.set(database=database)
        conn = psycopg2.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            dbname=url.database or "postgres",
            connect_timeout=3,
        )
        conn.autocommit = True
        return conn

    def url_for(self, database: str) -> str:
        url = make_url(self.admin_url).set(drivername="postgresql+asyncpg", database=database)
        return url.render_as_string(hide_password=False)

    def create_database(self, prefix: str = "chibify_test") -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        return name

    def drop_database(self, name: str) -> None:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        finally:
            conn.close()

    def empty_tables(self, database: str, tables: tuple[str, ...] = STORAGE_TABLES) -> None:
        """Delete every row (DELETE is far quicker than TRUNCATE on tables this small)."""
        conn = self._connect(database)
        try:
            with conn.cursor() as cur:
                for table in tables:
                    cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
        finally:
            conn.close()


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
        pytest.fail(f"PostgreSQL required ({REQUIRE_POSTGRES_ENV}=1) but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason} (set {REQUIRE_POSTGRES_ENV}=1 to make this a failure)")


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The local PostgreSQL server; skips (or fails, see module doc) when it is unreachable."""
    server = PostgresServer(os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL)
    try:
        server._connect().close()
    except psycopg2.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _postgres_unavailable(
            f"cannot connect to {make_url(server.admin_url).render_as_string(hide_password=True)}: {first_line}"
        )
    return server


@pytest.fixture(scope="session")
def migrated_postgres_db(postgres_server: PostgresServer) -> Iterator[str]:
    """Name of this session's throwaway PostgreSQL database, migrated to head; dropped at the end."""
    name = postgres_server.create_database()
    try:
        asyncio.run(migrate.upgrade(postgres_server.url_for(name)))
        yield name
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, migrated_postgres_db: str) -> str:
    """URL of the session's PostgreSQL database with every storage table emptied."""
    postgres_server.empty_tables(migrated_postgres_db)
    return postgres_server.url_for(migrated_postgres_db)


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database file migrated to head, to copy from."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(migrate.upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def sqlite_url(migrated_sqlite_template: Path, tmp_path: Path) -> str:
    """URL of a fresh, migrated SQLite file for this test only."""
    path = tmp_path / "chibify.db"
    shutil.copyfile(migrated_sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def sqlite_storage(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Storage]:
    """A :class:`Storage` on a fresh SQLite database with blobs under ``tmp_path/data/blobs``."""
    storage = await Storage.open(sqlite_url, tmp_path / "data")
    try:
        yield storage
    finally:
        await storage.close()
