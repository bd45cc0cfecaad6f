"""Storage fixtures parametrized over both databases: every test using ``storage`` runs on SQLite and
on PostgreSQL (the PostgreSQL run skips or fails as described in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from storage import Storage, User, users

from .helpers import tx

if TYPE_CHECKING:
    from tests.conftest import PostgresServer

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest) -> str:
    """A migrated, empty database of the current backend."""
    fixture = "sqlite_url" if backend == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def storage(db_url: str, tmp_path: Path) -> AsyncIterator[Storage]:
    st = await Storage.open(db_url, tmp_path / "data")
    try:
        yield st
    finally:
        await st.close()


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all (for migration tests)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database("chibify_test_mig")
    try:
        yield server.url_for(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def other_empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second database with no tables (to compare two schemas)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database("chibify_test_other")
    try:
        yield server.url_for(name)
    finally:
        server.drop_database(name)


@pytest.fixture
async def alice(storage: Storage) -> User:
    return await tx(storage, users.get_or_create_user, discord_id=111_111_111_111_111_111)


@pytest.fixture
async def bob(storage: Storage) -> User:
    return await tx(storage, users.get_or_create_user, discord_id=222_222_222_222_222_222)
