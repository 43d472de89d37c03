"""time bank ledger

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "point_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("balance", sa.Integer(), server_default="0", nullable=False),
        sa.Column("merged_into", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(user_id IS NULL) = (kind IN ('community', 'spent'))", name=op.f("ck_point_accounts_owner")
        ),
        sa.CheckConstraint(
            "balance >= 0 OR kind = 'community'", name=op.f("ck_point_accounts_not_overdrawn")
        ),
        sa.CheckConstraint(
            "kind IN ('community', 'user', 'reserved', 'spent')", name=op.f("ck_point_accounts_kind")
        ),
        sa.ForeignKeyConstraint(
            ["merged_into"], ["point_accounts.id"], name=op.f("fk_point_accounts_merged_into_point_accounts")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_point_accounts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_accounts")),
    )
    with op.batch_alter_table("point_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_point_accounts_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            "uq_point_accounts_open",
            ["user_id", "kind"],
            unique=True,
            sqlite_where=sa.text("merged_into IS NULL"),
            postgresql_where=sa.text("merged_into IS NULL"),
        )
        batch_op.create_index(
            "uq_point_accounts_system",
            ["kind"],
            unique=True,
            sqlite_where=sa.text("user_id IS NULL"),
            postgresql_where=sa.text("user_id IS NULL"),
        )

    op.create_table(
        "point_earnings",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("grid_key", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_point_earnings_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "period", name=op.f("pk_point_earnings")),
    )
    with op.batch_alter_table("point_earnings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_point_earnings_period_grid_points", ["period", "grid_key", "points"], unique=False
        )
        batch_op.create_index("ix_point_earnings_period_points", ["period", "points"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("debit_account_id", sa.Integer(), nullable=False),
        sa.Column("credit_account_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=128), nullable=False),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column("reason_key", sa.String(length=64), nullable=False),
        sa.Column("reason_params", sa.JSON(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_entries_amount_positive")),
        sa.CheckConstraint(
            "debit_account_id <> credit_account_id", name=op.f("ck_ledger_entries_two_accounts")
        ),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_ledger_entries_actor_id_users")),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["point_accounts.id"],
            name=op.f("fk_ledger_entries_credit_account_id_point_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id"],
            ["point_accounts.id"],
            name=op.f("fk_ledger_entries_debit_account_id_point_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"], ["ledger_entries.id"], name=op.f("fk_ledger_entries_reverses_id_ledger_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_ledger_entries_reverses_id")),
        sa.UniqueConstraint("source_key", name=op.f("uq_ledger_entries_source_key")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entries_credit", ["credit_account_id", "id"], unique=False)
        batch_op.create_index("ix_ledger_entries_debit", ["debit_account_id", "id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("leaderboard_opt_out", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("leaderboard_opt_out")

    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_debit")
        batch_op.drop_index("ix_ledger_entries_credit")

    op.drop_table("ledger_entries")
    with op.batch_alter_table("point_earnings", schema=None) as batch_op:
        batch_op.drop_index("ix_point_earnings_period_points")
        batch_op.drop_index("ix_point_earnings_period_grid_points")

    op.drop_table("point_earnings")
    with op.batch_alter_table("point_accounts", schema=None) as batch_op:
        batch_op.drop_index("uq_point_accounts_system")
        batch_op.drop_index("uq_point_accounts_open")
        batch_op.drop_index(batch_op.f("ix_point_accounts_user_id"))

    op.drop_table("point_accounts")
