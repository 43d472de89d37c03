"""patrols rewards and honours

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reward_stock",
        sa.Column("reward_key", sa.String(length=64), nullable=False),
        sa.Column("issued", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("issued >= 0", name=op.f("ck_reward_stock_issued")),
        sa.PrimaryKeyConstraint("reward_key", name=op.f("pk_reward_stock")),
    )
    op.create_table(
        "honours",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("rank", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_honours_user_id_users")),
        sa.PrimaryKeyConstraint("period", "kind", "rank", name=op.f("pk_honours")),
    )
    op.create_table(
        "patrol_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area", sa.String(length=128), nullable=False),
        sa.Column("weekdays", sa.String(length=7), nullable=False),
        sa.Column("start_time", sa.String(length=5), nullable=False),
        sa.Column("end_time", sa.String(length=5), nullable=False),
        sa.Column("meeting_lat", sa.Float(), nullable=False),
        sa.Column("meeting_lon", sa.Float(), nullable=False),
        sa.Column("meeting_label", sa.String(length=128), nullable=True),
        sa.Column("min_volunteers", sa.Integer(), nullable=False),
        sa.Column("max_volunteers", sa.Integer(), nullable=False),
        sa.Column("leader_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("generated_until", sa.String(length=10), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("min_volunteers <= max_volunteers", name=op.f("ck_patrol_series_min_below_max")),
        sa.CheckConstraint(
            "min_volunteers >= 0 AND max_volunteers >= 1", name=op.f("ck_patrol_series_sizes")
        ),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_patrol_series_created_by_users")),
        sa.ForeignKeyConstraint(["leader_id"], ["users.id"], name=op.f("fk_patrol_series_leader_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_series")),
    )
    op.create_table(
        "redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reward_key", sa.String(length=64), nullable=False),
        sa.Column("cost", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), server_default="pending", nullable=False),
        sa.Column("pickup_code", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'approved', 'rejected')", name=op.f("ck_redemptions_state")),
        sa.CheckConstraint("cost > 0", name=op.f("ck_redemptions_cost_positive")),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], name=op.f("fk_redemptions_decided_by_users")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_redemptions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("pickup_code", name=op.f("uq_redemptions_pickup_code")),
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_redemptions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            "uq_redemptions_pending",
            ["user_id", "reward_key"],
            unique=True,
            sqlite_where=sa.text("state = 'pending'"),
            postgresql_where=sa.text("state = 'pending'"),
        )

    op.create_table(
        "volunteer_requests",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approved", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_volunteer_requests_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_volunteer_requests_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_volunteer_requests")),
    )
    op.create_table(
        "patrol_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("area", sa.String(length=128), nullable=False),
        sa.Column("starts_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("meeting_lat", sa.Float(), nullable=False),
        sa.Column("meeting_lon", sa.Float(), nullable=False),
        sa.Column("meeting_label", sa.String(length=128), nullable=True),
        sa.Column("min_volunteers", sa.Integer(), nullable=False),
        sa.Column("max_volunteers", sa.Integer(), nullable=False),
        sa.Column("leader_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=12), server_default="scheduled", nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('scheduled', 'cancelled')", name=op.f("ck_patrol_shifts_state")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_patrol_shifts_ends_after_start")),
        sa.CheckConstraint("min_volunteers <= max_volunteers", name=op.f("ck_patrol_shifts_min_below_max")),
        sa.CheckConstraint(
            "min_volunteers >= 0 AND max_volunteers >= 1", name=op.f("ck_patrol_shifts_sizes")
        ),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_patrol_shifts_created_by_users")),
        sa.ForeignKeyConstraint(["leader_id"], ["users.id"], name=op.f("fk_patrol_shifts_leader_id_users")),
        sa.ForeignKeyConstraint(
            ["series_id"], ["patrol_series.id"], name=op.f("fk_patrol_shifts_series_id_patrol_series")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_shifts")),
        sa.UniqueConstraint("series_id", "starts_at", name=op.f("uq_patrol_shifts_series_id_starts_at")),
    )
    with op.batch_alter_table("patrol_shifts", schema=None) as batch_op:
        batch_op.create_index("ix_patrol_shifts_state_starts", ["state", "starts_at"], unique=False)

    op.create_table(
        "patrol_signups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shift_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_in_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checkin_method", sa.String(length=12), nullable=True),
        sa.Column("checkin_confirmed_by", sa.Integer(), nullable=True),
        sa.Column("checked_out_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checkout_method", sa.String(length=12), nullable=True),
        sa.Column("minutes_worked", sa.Integer(), nullable=True),
        sa.Column("flagged", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("no_show", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint(
            "checkin_method IS NULL OR checkin_method IN ('location', 'manual', 'auto')",
            name=op.f("ck_patrol_signups_checkin"),
        ),
        sa.CheckConstraint(
            "checkout_method IS NULL OR checkout_method IN ('location', 'manual', 'auto')",
            name=op.f("ck_patrol_signups_checkout"),
        ),
        sa.CheckConstraint(
            "state IN ('confirmed', 'waiting', 'cancelled')", name=op.f("ck_patrol_signups_state")
        ),
        sa.CheckConstraint(
            "minutes_worked IS NULL OR minutes_worked >= 0", name=op.f("ck_patrol_signups_minutes")
        ),
        sa.ForeignKeyConstraint(
            ["checkin_confirmed_by"], ["users.id"], name=op.f("fk_patrol_signups_checkin_confirmed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"],
            ["patrol_shifts.id"],
            name=op.f("fk_patrol_signups_shift_id_patrol_shifts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_patrol_signups_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_signups")),
        sa.UniqueConstraint("shift_id", "user_id", name=op.f("uq_patrol_signups_shift_id_user_id")),
    )
    with op.batch_alter_table("patrol_signups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_patrol_signups_shift_state", ["shift_id", "state", "created_at"], unique=False
        )
        batch_op.create_index("ix_patrol_signups_user_state", ["user_id", "state"], unique=False)

    if op.get_bind().dialect.name == "sqlite":
        # Not batch mode: recreating `reports` would drop it, and with foreign keys
        # on, dropping cascades to its events and photos. SQLite can add a nullable
        # referencing column in place.
        op.execute(
            "ALTER TABLE reports ADD COLUMN patrol_shift_id INTEGER "
            "CONSTRAINT fk_reports_patrol_shift_id_patrol_shifts REFERENCES patrol_shifts (id)"
        )
    else:
        op.add_column("reports", sa.Column("patrol_shift_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_reports_patrol_shift_id_patrol_shifts"),
            "reports",
            "patrol_shifts",
            ["patrol_shift_id"],
            ["id"],
        )

    op.add_column(
        "users", sa.Column("no_shows_forgiven_at", storage.types.UTCDateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("no_shows_forgiven_at")

    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_reports_patrol_shift_id_patrol_shifts"), type_="foreignkey")
        batch_op.drop_column("patrol_shift_id")

    with op.batch_alter_table("patrol_signups", schema=None) as batch_op:
        batch_op.drop_index("ix_patrol_signups_user_state")
        batch_op.drop_index("ix_patrol_signups_shift_state")

    op.drop_table("patrol_signups")
    with op.batch_alter_table("patrol_shifts", schema=None) as batch_op:
        batch_op.drop_index("ix_patrol_shifts_state_starts")

    op.drop_table("patrol_shifts")
    op.drop_table("volunteer_requests")
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_redemptions_pending",
            sqlite_where=sa.text("state = 'pending'"),
            postgresql_where=sa.text("state = 'pending'"),
        )
        batch_op.drop_index(batch_op.f("ix_redemptions_user_id"))

    op.drop_table("redemptions")
    op.drop_table("patrol_series")
    op.drop_table("honours")
    op.drop_table("reward_stock")
