"""outbox: a priority per row (its lane), so interactive messages never wait behind bulk

Revision ID: 0013
Revises: 0011

Rows queued before this migration are all priority 0 (interactive): they go out first, in
the order they were queued, as they would have before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("priority", sa.SmallInteger(), server_default="0", nullable=False))
    op.create_index("ix_outbox_lanes", "outbox", ["state", "priority", "next_attempt_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_lanes", table_name="outbox")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("outbox") as batch_op:
            batch_op.drop_column("priority")
    else:
        op.drop_column("outbox", "priority")
