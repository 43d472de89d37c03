"""users: when a person was erased, and when they declined the privacy notice

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch rebuild of users on SQLite would trip every foreign key naming it.
    op.add_column("users", sa.Column("erased_at", storage.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("declined_at", storage.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # SQLite drops a column in place since 3.35; a batch rebuild would trip the foreign keys.
    for column in ("declined_at", "erased_at"):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE users DROP COLUMN {column}")
        else:
            op.drop_column("users", column)
