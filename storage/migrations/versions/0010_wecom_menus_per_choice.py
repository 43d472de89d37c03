"""wecom: numbered choices unique per chat, CLI-granted wecom staff reachable at once

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The old table held one menu per chat; what it remembered is only the last menu shown,
    # which is exactly what could act on the wrong card. It is not carried over: a reply to a
    # menu shown before the upgrade is answered as text.
    op.drop_table("menus")
    op.create_table(
        "menu_entries",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=True),
        sa.Column("menu", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("shown_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('open', 'closed', 'spent')", name=op.f("ck_menu_entries_state")),
        sa.PrimaryKeyConstraint("channel", "chat_id", "number", name=op.f("pk_menu_entries")),
    )
    # On WeChat Work a member's UserID is their private chat with the app, and the app may
    # write first: staff granted from the command line before they ever wrote are reachable.
    op.execute("UPDATE identities SET chat_id = external_id WHERE channel = 'wecom' AND chat_id IS NULL")


def downgrade() -> None:
    op.drop_table("menu_entries")
    op.create_table(
        "menus",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "chat_id", name=op.f("pk_menus")),
    )
