"""Pending blobs: a new picture's bytes commit with its avatar row; the file is written after.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 05:00:00+00:00

Adds the table ``pending_blobs`` (``key`` = the blob key, ``data``, ``created_at``). A row lives from the
commit that stores its avatar until the blob file is durable (``storage.journal``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_blobs",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_pending_blobs")),
    )


def downgrade() -> None:
    if op.get_context().as_sql:  # a script for later: it cannot look, so it says what to check
        op.execute("-- pending_blobs must be empty here: start chibify once (it writes them out) first")
    else:
        left = op.get_bind().execute(sa.text("SELECT count(*) FROM pending_blobs")).scalar_one()
        if left:
            # Their bytes live only here: opening the storage once writes them out as files.
            raise RuntimeError(
                f"{left} pictures are not in the blob store yet: start chibify once (it writes them "
                "out), then downgrade"
            )
    op.drop_table("pending_blobs")
