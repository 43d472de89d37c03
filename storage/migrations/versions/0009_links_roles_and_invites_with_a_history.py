"""account links that can be undone, two-sided link confirmation, withdrawn invites

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "invites", sa.Column("withdrawn_at", storage.types.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column("link_codes", sa.Column("claimed_by", sa.Integer(), nullable=True))
    op.add_column(
        "link_codes", sa.Column("claimed_at", storage.types.UTCDateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "account_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("former_user_id", sa.Integer(), nullable=False),
        sa.Column("former_name", sa.String(length=128), nullable=False),
        sa.Column("identities", sa.JSON(), nullable=False),
        sa.Column("former_role", sa.String(length=16), nullable=False),
        sa.Column("linked_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("undone_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("undone_into", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_account_links_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_links")),
    )
    op.create_index(op.f("ix_account_links_user_id"), "account_links", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_account_links_user_id"), table_name="account_links")
    op.drop_table("account_links")
    with op.batch_alter_table("link_codes") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
    with op.batch_alter_table("invites") as batch:
        batch.drop_column("withdrawn_at")
