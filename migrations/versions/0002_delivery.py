"""Delivery is durable state: who gets a job's result, its request group, its messages, when delivered.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 09:00:00+00:00

Adds to ``jobs``: ``deliver_user_id`` (the Discord user to deliver to; NULL for console jobs),
``request_group`` (indexed: the jobs of one request), ``messages`` (JSON list of
``[channel_id, message_id]``, ``[]`` for existing rows) and ``delivered_at``.

Existing jobs keep ``deliver_user_id`` NULL, so none of them is picked up for delivery again.

On SQLite the batch operations rebuild the table (``messages`` becomes NOT NULL without a server
default, like the model); ``sqlite_autoincrement`` is passed along so row ids are still never reused.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("deliver_user_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("request_group", sa.String(length=32), nullable=True))
        # The server default fills the existing rows; the model has none, so it is dropped below.
        batch.add_column(sa.Column("messages", sa.JSON(), server_default="[]", nullable=False))
        batch.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(batch.f("ix_jobs_request_group"), ["request_group"], unique=False)

    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("messages", existing_type=sa.JSON(), existing_nullable=False, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_index(batch.f("ix_jobs_request_group"))
        batch.drop_column("delivered_at")
        batch.drop_column("messages")
        batch.drop_column("request_group")
        batch.drop_column("deliver_user_id")
