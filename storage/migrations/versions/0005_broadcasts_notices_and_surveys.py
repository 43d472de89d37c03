"""broadcasts notices and surveys

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _outbox_kinds("kind IN ('message', 'card', 'card_edit', 'broadcast', 'summary', 'summary_edit')")
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=12), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_sent_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('police', 'fraud', 'missing', 'weather', 'emergency', 'community')",
            name=op.f("ck_notices_kind"),
        ),
        sa.CheckConstraint("priority IN ('info', 'important', 'urgent')", name=op.f("ck_notices_priority")),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_notices_author_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    op.create_table(
        "subscriptions",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("muted_kinds", sa.JSON(), nullable=False),
        sa.Column("quiet_from", sa.String(length=5), nullable=True),
        sa.Column("quiet_until", sa.String(length=5), nullable=True),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_subscriptions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_subscriptions")),
    )
    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=True),
        sa.Column("points", sa.Integer(), server_default="0", nullable=False),
        sa.Column("state", sa.String(length=8), server_default="open", nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closes_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('open', 'closed')", name=op.f("ck_surveys_state")),
        sa.CheckConstraint("points >= 0", name=op.f("ck_surveys_points")),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_surveys_author_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
    )
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=12), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=True),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("scheduled_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expanded_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("notice_id", sa.Integer(), nullable=True),
        sa.Column("summary_channel", sa.String(length=16), nullable=True),
        sa.Column("summary_chat_id", sa.String(length=128), nullable=True),
        sa.Column("summary_ref", sa.String(length=128), nullable=True),
        sa.CheckConstraint(
            "kind IN ('police', 'fraud', 'missing', 'weather', 'emergency', 'community')",
            name=op.f("ck_broadcasts_kind"),
        ),
        sa.CheckConstraint(
            "priority IN ('info', 'important', 'urgent')", name=op.f("ck_broadcasts_priority")
        ),
        sa.CheckConstraint(
            "state IN ('scheduled', 'sending', 'sent', 'cancelled')", name=op.f("ck_broadcasts_state")
        ),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_broadcasts_author_id_users")),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], name=op.f("fk_broadcasts_notice_id_notices")),
        sa.ForeignKeyConstraint(["photo_id"], ["media.id"], name=op.f("fk_broadcasts_photo_id_media")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.create_index("ix_broadcasts_state_scheduled", ["state", "scheduled_at"], unique=False)

    op.create_table(
        "survey_answers",
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("answer", sa.String(length=64), nullable=False),
        sa.Column("answered_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_survey_answers_survey_id_surveys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_survey_answers_user_id_users")),
        sa.PrimaryKeyConstraint("survey_id", "user_id", "question", name=op.f("pk_survey_answers")),
    )
    op.create_table(
        "survey_participants",
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("grid_key", sa.String(length=64), nullable=True),
        sa.Column("next_question", sa.Integer(), server_default="0", nullable=False),
        sa.Column("invited_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name=op.f("fk_survey_participants_survey_id_surveys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_survey_participants_user_id_users")),
        sa.PrimaryKeyConstraint("survey_id", "user_id", name=op.f("pk_survey_participants")),
    )
    op.create_table(
        "broadcast_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("grid_key", sa.String(length=64), nullable=True),
        sa.Column("building", sa.String(length=32), nullable=True),
        sa.Column("acked_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_broadcast_recipients_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_broadcast_recipients_outbox_id_outbox")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_broadcast_recipients_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_recipients")),
        sa.UniqueConstraint(
            "broadcast_id",
            "channel",
            "chat_id",
            name=op.f("uq_broadcast_recipients_broadcast_id_channel_chat_id"),
        ),
    )
    with op.batch_alter_table("broadcast_recipients", schema=None) as batch_op:
        batch_op.create_index("ix_broadcast_recipients_outbox", ["outbox_id"], unique=False)
        batch_op.create_index("ix_broadcast_recipients_user", ["user_id", "broadcast_id"], unique=False)

    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("blocked_at", storage.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_column("blocked_at")

    with op.batch_alter_table("broadcast_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcast_recipients_user")
        batch_op.drop_index("ix_broadcast_recipients_outbox")

    op.drop_table("broadcast_recipients")
    op.drop_table("survey_participants")
    op.drop_table("survey_answers")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcasts_state_scheduled")

    op.drop_table("broadcasts")
    op.drop_table("surveys")
    op.drop_table("subscriptions")
    op.drop_table("notices")
    _outbox_kinds("kind IN ('message', 'card', 'card_edit')")


def _outbox_kinds(condition: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite changes a CHECK only by rebuilding the table, which is why this runs before
        # anything references the outbox. Elsewhere a rebuild would restart the id sequence.
        with op.batch_alter_table("outbox", recreate="always") as batch_op:
            batch_op.drop_constraint(op.f("ck_outbox_kind"), type_="check")
            batch_op.create_check_constraint("kind", condition)
    else:
        op.drop_constraint(op.f("ck_outbox_kind"), "outbox", type_="check")
        op.create_check_constraint("kind", "outbox", condition)
