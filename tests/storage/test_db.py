"""Engine set-up, URLs, time zones and import hygiene."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import Storage, users
from storage.db import create_engine, is_sqlite, normalize_url, redact_url
from storage.models import UTCDateTime, new_public_id

from .helpers import tx


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
        ("sqlite+aiosqlite:///data/x.db", "sqlite+aiosqlite:///data/x.db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=False) == expected


def test_unsupported_urls_and_redaction() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        normalize_url("mysql://u@h/db")
    for memory in (
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite+aiosqlite:///file::memory:?cache=shared&uri=true",
    ):
        with pytest.raises(ValueError, match="in-memory"):
            create_engine(memory)
    assert "hunter2" not in redact_url("postgresql+asyncpg://u:hunter2@h/db")
    assert is_sqlite("sqlite:///x.db") and not is_sqlite("postgresql://h/db")


async def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'sub' / 'dir' / 'x.db'}")
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            busy_timeout = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
            assert busy_timeout is not None and busy_timeout >= 1000
            assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 2  # FULL
    finally:
        await engine.dispose()
    assert (tmp_path / "sub" / "dir" / "x.db").exists()


async def test_sqlite_transactions_roll_back_completely(tmp_path: Path) -> None:
    """SQLAlchemy, not the sqlite3 driver, begins transactions: DDL and savepoints roll back too."""
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(RuntimeError):
            async with engine.begin() as conn:
                await conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
                raise RuntimeError("roll back")
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert names == []
    finally:
        await engine.dispose()


def test_utc_datetime_round_trip_rules() -> None:
    t = UTCDateTime()
    sqlite = sa.create_engine("sqlite://").dialect
    aware = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=8)))
    stored = t.process_bind_param(aware, sqlite)
    assert stored == datetime(2024, 5, 1, 4, 0)  # converted to UTC, naive for SQLite
    back = t.process_result_value(stored, sqlite)
    assert back == aware and back is not None and back.tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        t.process_bind_param(datetime(2024, 5, 1), sqlite)
    assert t.process_bind_param(None, sqlite) is None


def test_public_ids_are_long_random_and_url_safe() -> None:
    ids = {new_public_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) >= 16 and i.replace("-", "").replace("_", "").isalnum() for i in ids)


async def test_storage_open_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "odd ?#% name" / "data"
    st = await Storage.open(None, data, upgrade=True)
    try:
        user = await tx(st, users.get_or_create_user, console_name="me")
        assert user.id == 1
    finally:
        await st.close()
    assert (data / "chibify.db").is_file() and (data / "blobs").is_dir()
    async with await Storage.open(None, data) as again:  # already migrated: opens without upgrade
        assert await tx(again, users.get_user, console_name="me") is not None


def test_importing_storage_creates_no_engine_and_pulls_in_no_bot_code() -> None:
    code = (
        "import gc, sys\n"
        "import storage, storage.facade, storage.jobstore, storage.migrate, storage.db, storage.blobs\n"
        "import storage.users, storage.guilds, storage.avatars, storage.jobs, storage.refs\n"
        "from sqlalchemy.ext.asyncio import AsyncEngine\n"
        "from sqlalchemy.engine import Engine\n"
        "assert not [o for o in gc.get_objects() if isinstance(o, (AsyncEngine, Engine))], 'engine at import'\n"
        "bad = {'discord', 'torch', 'bot', 'generation'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
