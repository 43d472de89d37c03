"""outbox kinds are data: no CHECK lists them

Revision ID: 0006
Revises: 0005

The features declare their outbox kinds (handlers/registry.py) and are checked against
those declarations; a CHECK listing them meant a table rebuild for every new kind.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The kinds the CHECK of 0005 allowed, put back on downgrade.
KINDS_OF_0005 = "kind IN ('message', 'card', 'card_edit', 'broadcast', 'summary', 'summary_edit')"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops a CHECK only by rebuilding the table (Database.migrate turns foreign
        # keys off for it: broadcast_recipients references the outbox).
        with op.batch_alter_table("outbox", recreate="always") as batch_op:
            batch_op.drop_constraint(op.f("ck_outbox_kind"), type_="check")
    else:
        op.drop_constraint(op.f("ck_outbox_kind"), "outbox", type_="check")


def downgrade() -> None:
    # Fails, as it should, while the outbox holds a row of a kind 0005 did not know.
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("outbox", recreate="always") as batch_op:
            batch_op.create_check_constraint("kind", KINDS_OF_0005)
    else:
        op.create_check_constraint("kind", "outbox", KINDS_OF_0005)
