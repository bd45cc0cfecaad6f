"""Initial schema: users, guilds, jobs, avatars.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 03:06:58+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AVATAR_KINDS = ("prompt", "selfie", "edit", "variation", "reroll")
JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
PROMPT_POLICIES = ("strict", "standard", "off")


def _enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "guilds",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("allowed_channels", sa.JSON(), nullable=False),
        sa.Column("per_user_daily_limit", sa.Integer(), nullable=True),
        sa.Column("max_queued_per_user", sa.Integer(), nullable=True),
        sa.Column(
            "prompt_policy", _enum(PROMPT_POLICIES, "prompt_policy"), server_default="standard", nullable=False
        ),
        sa.Column("engine", sa.String(length=64), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guilds")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("discord_id", sa.BigInteger(), nullable=True),
        sa.Column("console_name", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("language", sa.String(length=16), server_default="en", nullable=False),
        sa.Column("default_style", sa.String(length=32), server_default="chibi", nullable=False),
        sa.Column("public_results", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("consent_store_selfies", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("consent_training", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint("(discord_id IS NULL) <> (console_name IS NULL)", name=op.f("ck_users_one_identity")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("console_name", name=op.f("uq_users_console_name")),
        sa.UniqueConstraint("discord_id", name=op.f("uq_users_discord_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", _enum(AVATAR_KINDS, "job_kind"), nullable=False),
        sa.Column("status", _enum(JOB_STATUSES, "job_status"), server_default="queued", nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("avatar_id", sa.Integer(), nullable=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("interaction_token", sa.Text(), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        # jobs.avatar_id and avatars.job_id reference each other. With use_alter=True this constraint is
        # written inline where the dialect cannot ALTER constraints (SQLite, which accepts the forward
        # reference) and left out of CREATE TABLE elsewhere; it is then added below once avatars exists.
        sa.ForeignKeyConstraint(
            ["avatar_id"],
            ["avatars.id"],
            name=op.f("fk_jobs_avatar_id_avatars"),
            ondelete="SET NULL",
            use_alter=True,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_jobs_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_jobs_public_id"), "jobs", ["public_id"], unique=True)
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"], unique=False)
    op.create_index("ix_jobs_user_id_status", "jobs", ["user_id", "status"], unique=False)

    op.create_table(
        "avatars",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("kind", _enum(AVATAR_KINDS, "avatar_kind"), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("engine", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("favourite", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_avatars_job_id_jobs"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_avatars_owner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["avatars.id"], name=op.f("fk_avatars_parent_id_avatars"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_avatars")),
        sa.UniqueConstraint("job_id", name=op.f("uq_avatars_job_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_avatars_blob_key"), "avatars", ["blob_key"], unique=False)
    op.create_index("ix_avatars_owner_id_id", "avatars", ["owner_id", "id"], unique=False)
    op.create_index(op.f("ix_avatars_parent_id"), "avatars", ["parent_id"], unique=False)
    op.create_index(op.f("ix_avatars_public_id"), "avatars", ["public_id"], unique=True)

    if op.get_context().dialect.supports_alter:
        op.create_foreign_key(
            op.f("fk_jobs_avatar_id_avatars"), "jobs", "avatars", ["avatar_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    if op.get_context().dialect.supports_alter:
        op.drop_constraint(op.f("fk_jobs_avatar_id_avatars"), "jobs", type_="foreignkey")
    op.drop_index(op.f("ix_avatars_public_id"), table_name="avatars")
    op.drop_index(op.f("ix_avatars_parent_id"), table_name="avatars")
    op.drop_index("ix_avatars_owner_id_id", table_name="avatars")
    op.drop_index(op.f("ix_avatars_blob_key"), table_name="avatars")
    op.drop_table("avatars")
    op.drop_index("ix_jobs_user_id_status", table_name="jobs")
    op.drop_index(op.f("ix_jobs_status"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_public_id"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("users")
    op.drop_table("guilds")
