"""Migrations: up, down and up again on both databases, and the models agree with the migrations."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from storage import DatabaseBehind, SchemaMismatch, Storage, migrate
from storage.db import create_engine
from storage.models import Base, Job

_T0 = datetime(2026, 1, 1, tzinfo=UTC)

TABLES = {"users", "guilds", "avatars", "jobs", "pending_blobs"}


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    finally:
        await engine.dispose()
    return set(names) - {"alembic_version", "sqlite_sequence"}


def _diff(conn: Connection, metadata: sa.MetaData) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    return list(compare_metadata(context, metadata))


async def _schema_diff(url: str, metadata: sa.MetaData = Base.metadata) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_diff, metadata)
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    assert await migrate.current_revision(empty_db_url) is None
    await migrate.upgrade(empty_db_url)
    assert await migrate.current_revision(empty_db_url) == migrate.head_revision()
    assert await _tables(empty_db_url) == TABLES
    await migrate.downgrade(empty_db_url, "base")
    assert await migrate.current_revision(empty_db_url) is None
    assert await _tables(empty_db_url) == set()
    await migrate.upgrade(empty_db_url)
    assert await _tables(empty_db_url) == TABLES
    await migrate.check_up_to_date(empty_db_url)


async def test_models_match_migrations(empty_db_url: str) -> None:
    await migrate.upgrade(empty_db_url)
    assert await _schema_diff(empty_db_url) == []


def _full_schema(conn: Connection) -> dict[str, Any]:
    """Everything the inspector sees, per table, in a form that does not depend on column order; on
    SQLite also whether the table keeps AUTOINCREMENT (a batch rebuild could drop it)."""
    inspector = sa.inspect(conn)
    schema: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version", "sqlite_sequence"}):
        fks = inspector.get_foreign_keys(table)
        schema[table] = {
            "columns": {
                c["name"]: (str(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(table)
            },
            "pk": inspector.get_pk_constraint(table),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
            ),
            "uniques": sorted(
                (u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)
            ),
            "fks": sorted(
                (
                    f["name"],
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    f["options"].get("ondelete"),
                )
                for f in fks
            ),
            "checks": sorted(
                (c["name"], " ".join(c["sqltext"].split())) for c in inspector.get_check_constraints(table)
            ),
        }
        if conn.dialect.name == "sqlite":
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).scalar_one()
            schema[table]["autoincrement"] = "AUTOINCREMENT" in sql.upper()
    return schema


async def _inspect(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_full_schema)
    finally:
        await engine.dispose()


async def _create_all(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()


async def test_migrations_build_exactly_the_models_schema(empty_db_url: str, other_empty_db_url: str) -> None:
    """Stricter than compare_metadata: CHECK constraints, FK actions and SQLite's AUTOINCREMENT too,
    which 0002's table rebuild on SQLite must keep."""
    await migrate.upgrade(empty_db_url)
    await _create_all(other_empty_db_url)
    migrated, built = await _inspect(empty_db_url), await _inspect(other_empty_db_url)
    assert set(migrated) == TABLES
    assert migrated == built
    if "sqlite" in empty_db_url:
        assert sorted(t for t, v in migrated.items() if v["autoincrement"]) == ["avatars", "jobs", "users"]


async def test_0002_keeps_existing_jobs_and_downgrades_cleanly(empty_db_url: str) -> None:
    await migrate.upgrade(empty_db_url, "0001")
    before = await _inspect(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("INSERT INTO users (id, discord_id, created_at) VALUES (7, 70, :t)"), {"t": _T0}
            )
            for status in ("done", "queued"):
                await conn.execute(
                    sa.text(
                        "INSERT INTO jobs (public_id, user_id, kind, status, request, created_at, updated_at, "
                        "channel_id, interaction_token) "
                        "VALUES (:pid, 7, 'prompt', :status, '{\"p\": 1}', :t, :t, 99, 'tok')"
                    ),
                    {"pid": f"job-{status}", "status": status, "t": _T0},
                )
        await migrate.upgrade(empty_db_url)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(Job).order_by(Job.id))).all()
        assert [(r.id, r.status, r.request, r.channel_id, r.interaction_token) for r in rows] == [
            (1, "done", {"p": 1}, 99, "tok"),
            (2, "queued", {"p": 1}, 99, "tok"),
        ]
        # Old jobs have nobody to deliver to, so a restart never delivers them (again).
        assert [(r.messages, r.deliver_user_id, r.request_group, r.delivered_at) for r in rows] == [
            ([], None, None, None)
        ] * 2
        async with engine.begin() as conn:  # ids are not reused after the rebuild (AUTOINCREMENT kept)
            await conn.execute(sa.text("DELETE FROM jobs WHERE id = 2"))
            await conn.execute(
                sa.text(
                    "INSERT INTO jobs (public_id, user_id, kind, status, request, messages, created_at, updated_at) "
                    "VALUES ('new', 7, 'prompt', 'queued', '{}', '[]', :t, :t)"
                ),
                {"t": _T0},
            )
            assert (await conn.execute(sa.text("SELECT max(id) FROM jobs"))).scalar_one() == 3
    finally:
        await engine.dispose()

    await migrate.downgrade(empty_db_url, "0001")
    assert await migrate.current_revision(empty_db_url) == "0001"
    assert await _inspect(empty_db_url) == before
    engine = create_engine(empty_db_url)
    try:
        async with engine.connect() as conn:
            kept = (await conn.execute(sa.text("SELECT id, status, channel_id FROM jobs ORDER BY id"))).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in kept] == [(1, "done", 99), (3, "queued", None)]


async def test_schema_comparison_is_not_vacuous(empty_db_url: str) -> None:
    """The comparison above would notice a model change that has no migration."""
    await migrate.upgrade(empty_db_url)
    changed = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["avatars"].append_column(sa.Column("mood", sa.String(16)))
    sa.Index("ix_users_language", changed.tables["users"].c.language)
    kinds = {d[0] for d in await _schema_diff(empty_db_url, changed)}
    assert {"add_column", "add_index"} <= kinds


async def test_check_up_to_date_says_how_to_fix(empty_db_url: str, tmp_path: Path) -> None:
    with pytest.raises(DatabaseBehind, match="chibify db upgrade"):
        await migrate.check_up_to_date(empty_db_url)
    with pytest.raises(DatabaseBehind, match="chibify db upgrade"):
        await Storage.open(empty_db_url, tmp_path)
    st = await Storage.open(empty_db_url, tmp_path, upgrade=True)
    await st.close()
    await migrate.check_up_to_date(empty_db_url)


async def test_unknown_revision_is_reported(empty_db_url: str) -> None:
    await migrate.upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffffffff'"))
    finally:
        await engine.dispose()
    with pytest.raises(SchemaMismatch, match="ffffffff") as info:
        await migrate.check_up_to_date(empty_db_url)
    assert not isinstance(info.value, DatabaseBehind)


def test_config_finds_scripts_without_an_ini_file() -> None:
    config = migrate.alembic_config()
    assert config.config_file_name is None
    location = Path(config.get_main_option("script_location") or "")
    assert (location / "env.py").is_file()
    assert (location / "versions" / "__init__.py").is_file()
    assert migrate.head_revision() == "0003"


# --- URL resolution in migrations/env.py (-x url=, then config.attributes, then env var, then default) ---


def _run_alembic_upgrade(attributes_url: str | None, x_url: str | None) -> None:
    config = migrate.alembic_config(attributes_url)
    if x_url is not None:
        config.cmd_opts = argparse.Namespace(x=[f"url={x_url}"])
    command.upgrade(config, "head")


def _sqlite(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def test_env_url_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x_db, attr_db, env_db = tmp_path / "x.db", tmp_path / "attr.db", tmp_path / "env.db"
    monkeypatch.setenv("CHIBIFY_DATABASE_URL", _sqlite(env_db))

    _run_alembic_upgrade(_sqlite(attr_db), _sqlite(x_db))
    assert x_db.exists() and not attr_db.exists() and not env_db.exists()

    _run_alembic_upgrade(_sqlite(attr_db), None)
    assert attr_db.exists() and not env_db.exists()

    _run_alembic_upgrade(None, None)
    assert env_db.exists()


def test_env_default_url_is_data_dir_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHIBIFY_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    _run_alembic_upgrade(None, None)
    assert (tmp_path / "data" / "chibify.db").is_file()


def test_offline_sql_renders(capsys: pytest.CaptureFixture[str]) -> None:
    config = migrate.alembic_config("postgresql+asyncpg://nobody@127.0.0.1/none")
    command.upgrade(config, "head", sql=True)
    out = capsys.readouterr().out
    assert "CREATE TABLE avatars" in out
    assert "ALTER TABLE jobs ADD CONSTRAINT fk_jobs_avatar_id_avatars" in out
