"""outbox: a message given up after its kind's horizon is 'expired'; when its sends began failing

Revision ID: 0011
Revises: 0010

A platform outage no longer fails a message after a number of attempts: transient errors are
retried until the outbox kind's horizon has passed since the first failure (`failing_since`),
and a message given up then is recorded as 'expired', apart from permanent failures.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

STATES_OF_0001 = "state IN ('pending', 'sent', 'failed', 'blocked')"
STATES = "state IN ('pending', 'sent', 'failed', 'blocked', 'expired')"


def upgrade() -> None:
    failing_since = sa.Column("failing_since", storage.types.UTCDateTime(timezone=True), nullable=True)
    if op.get_bind().dialect.name == "sqlite":
        # SQLite changes a CHECK only by rebuilding the table (Database.migrate turns foreign
        # keys off for it: broadcast_recipients references the outbox).
        with op.batch_alter_table("outbox", recreate="always") as batch_op:
            batch_op.add_column(failing_since)
            batch_op.drop_constraint(op.f("ck_outbox_state"), type_="check")
            batch_op.create_check_constraint("state", STATES)
    else:
        op.add_column("outbox", failing_since)
        op.drop_constraint(op.f("ck_outbox_state"), "outbox", type_="check")
        op.create_check_constraint("state", "outbox", STATES)


def downgrade() -> None:
    # Expired messages were not sent: 'failed' is what the older schema called them.
    op.execute("UPDATE outbox SET state = 'failed' WHERE state = 'expired'")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("outbox", recreate="always") as batch_op:
            batch_op.drop_constraint(op.f("ck_outbox_state"), type_="check")
            batch_op.create_check_constraint("state", STATES_OF_0001)
            batch_op.drop_column("failing_since")
    else:
        op.drop_constraint(op.f("ck_outbox_state"), "outbox", type_="check")
        op.create_check_constraint("state", "outbox", STATES_OF_0001)
        op.drop_column("outbox", "failing_since")
