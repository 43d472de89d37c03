"""Tables of the Shouwang database (SQLAlchemy Core).

The migrations under storage/migrations create exactly these tables; a test
compares the two so they cannot drift apart.
"""

from __future__ import annotations

import sqlalchemy as sa

from storage.roles import RESIDENT, ROLES
from storage.types import UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

REPORT_STATES = ("submitted", "acknowledged", "assigned", "in_progress", "resolved", "rejected", "duplicate")
URGENCIES = ("normal", "urgent")
# "expired": given up after its kind's horizon of transient failures (a platform outage).
OUTBOX_STATES = ("pending", "sent", "failed", "blocked", "expired")
SCHEDULE_STATES = ("pending", "done", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("display_name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False, server_default=RESIDENT),
    sa.Column("language", sa.String(8), nullable=True),
    sa.Column("grid_key", sa.String(64), nullable=True),
    sa.Column("building", sa.String(32), nullable=True),
    sa.Column("unit", sa.String(32), nullable=True),
    sa.Column("privacy_accepted_at", UTCDateTime, nullable=True),
    sa.Column("onboarded_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Left out of points leaderboards (but still earning and redeeming).
    sa.Column("leaderboard_opt_out", sa.Boolean, nullable=False, server_default=sa.false()),
    # No-shows before this moment no longer count towards a sign-up ban (police lift bans).
    sa.Column("no_shows_forgiven_at", UTCDateTime, nullable=True),
    # Erased on request (/deleteme, `shouwang person erase`): the row stays, nameless, so the
    # reports, shifts and ledger entries that name it still add up.
    sa.Column("erased_at", UTCDateTime, nullable=True),
    # Declined the privacy notice: nothing kept but the platform identity and this moment,
    # so the bot does not start asking again each time they write.
    sa.Column("declined_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(_in("role", ROLES), name="role"),
)

identities = sa.Table(
    "identities",
    metadata,
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("external_id", sa.String(128), primary_key=True),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("chat_id", sa.String(128), nullable=True),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    # The person blocked the bot on this channel: skipped by broadcasts until they write again.
    sa.Column("blocked_at", UTCDateTime, nullable=True),
)

grid_assignments = sa.Table(
    "grid_assignments",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("grid_key", sa.String(64), primary_key=True),
)

invites = sa.Table(
    "invites",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("grid_key", sa.String(64), nullable=True),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("used_at", UTCDateTime, nullable=True),
    # Taken back by its maker (or an admin) before anyone used it.
    sa.Column("withdrawn_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(_in("role", ROLES), name="role"),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("flow", sa.String(32), nullable=False),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

ticket_counters = sa.Table(
    "ticket_counters",
    metadata,
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_seq", sa.Integer, nullable=False),
)

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ticket", sa.String(16), nullable=False, unique=True),
    sa.Column("reporter_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("urgency", sa.String(8), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("grid_key", sa.String(64), nullable=True),
    sa.Column("building", sa.String(32), nullable=True),
    sa.Column("unit", sa.String(32), nullable=True),
    sa.Column("latitude", sa.Float, nullable=True),
    sa.Column("longitude", sa.Float, nullable=True),
    sa.Column("anonymous", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("assignee_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("duplicate_of", sa.Integer, sa.ForeignKey("reports.id"), nullable=True),
    sa.Column("resolution_note", sa.Text, nullable=True),
    sa.Column("rejection_reason", sa.Text, nullable=True),
    sa.Column("rating", sa.Integer, nullable=True),
    sa.Column("rating_comment", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    # Filed by a volunteer while checked in on a patrol (the patrol log).
    sa.Column("patrol_shift_id", sa.Integer, sa.ForeignKey("patrol_shifts.id"), nullable=True),
    sa.CheckConstraint(_in("state", REPORT_STATES), name="state"),
    sa.CheckConstraint(_in("urgency", URGENCIES), name="urgency"),
    sa.CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="rating"),
    sa.Index("ix_reports_reporter_created", "reporter_id", "created_at"),
    sa.Index("ix_reports_grid_state", "grid_key", "state"),
)

report_events = sa.Table(
    "report_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "report_id", sa.Integer, sa.ForeignKey("reports.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("from_state", sa.String(16), nullable=True),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

media = sa.Table(
    "media",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("mime", sa.String(32), nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("path", sa.String(256), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

report_photos = sa.Table(
    "report_photos",
    metadata,
    sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("media_id", sa.Integer, sa.ForeignKey("media.id"), nullable=False),
    sa.CheckConstraint(_in("kind", ("before", "after")), name="kind"),
)

report_cards = sa.Table(
    "report_cards",
    metadata,
    sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("chat_id", sa.String(128), primary_key=True),
    sa.Column("message_id", sa.String(128), nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("chat_id", sa.String(128), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("state", sa.String(8), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    # When its sends began failing: the kind's horizon (how long to keep trying) counts from here.
    sa.Column("failing_since", UTCDateTime, nullable=True),
    # Its lane (handlers/registry.py Lane): due rows are claimed lowest first, then by id.
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="0"),
    sa.CheckConstraint(_in("state", OUTBOX_STATES), name="state"),
    sa.Index("ix_outbox_due", "state", "next_attempt_at"),
    sa.Index("ix_outbox_lanes", "state", "priority", "next_attempt_at", "id"),
)

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("ref", sa.String(64), nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(12), nullable=False, server_default="pending"),
    sa.Column("fired_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("kind", "ref"),
    sa.CheckConstraint(_in("state", SCHEDULE_STATES), name="state"),
    sa.Index("ix_schedules_due", "state", "due_at"),
)

# Inbound messages of channels that push to us (WeChat Work callbacks): stored
# before the HTTP answer, so a retry of the same message is recognised and a
# crash after answering loses nothing.
inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("dedupe_key", sa.String(128), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("state", sa.String(8), nullable=False, server_default="pending"),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("processed_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("channel", "dedupe_key"),
    sa.CheckConstraint(_in("state", ("pending", "done", "failed")), name="state"),
    sa.Index("ix_inbox_pending", "state", "id"),
)

# The numbered choices shown in chats without buttons (WeChat Work), one row per number, so
# "5" is understood after a restart too. A number is unique among a chat's open choices (two
# cards never both offer "1"); a number that is no longer open is kept, so a late reply gets
# "that menu is gone" instead of acting on whatever took the number next.
# state: open (the reply acts), closed (replaced by a newer copy of the same card, or expired:
# its number is not given out again until the person writes), spent (the person wrote since:
# the number may be given out again).
MENU_STATES = ("open", "closed", "spent")
menu_entries = sa.Table(
    "menu_entries",
    metadata,
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("chat_id", sa.String(128), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("action", sa.String(64), nullable=True),
    sa.Column("menu", sa.String(32), nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("shown_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(_in("state", MENU_STATES), name="state"),
)

link_codes = sa.Table(
    "link_codes",
    metadata,
    sa.Column("code", sa.String(16), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime, nullable=True),
    # The account on the other channel that typed the code and confirmed; the code's maker confirms
    # next. Not a foreign key: a claimer merged away or erased meanwhile just fails the check.
    sa.Column("claimed_by", sa.Integer, nullable=True),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
)

# Every link of two accounts, so an admin can undo it: the identities that came from the account
# merged away (`former_user_id`, no longer a user) are split off again into a user of their own.
account_links = sa.Table(
    "account_links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("former_user_id", sa.Integer, nullable=False),
    # The merged-away account's name, given back to it if the link is undone.
    sa.Column("former_name", sa.String(128), nullable=False),
    # [[channel, external_id], ...] of the identities the merged-away account brought.
    sa.Column("identities", sa.JSON, nullable=False),
    sa.Column("former_role", sa.String(16), nullable=False),
    sa.Column("linked_at", UTCDateTime, nullable=False),
    sa.Column("undone_at", UTCDateTime, nullable=True),
    # The user the identities were split off into.
    sa.Column("undone_into", sa.Integer, nullable=True),
)

# The time bank (storage/ledger.py explains the accounts). `balance` is the sum
# of the account's entries, kept in the same transaction as each entry so the
# CHECK below makes an overdraft impossible; only the community account, which
# issues points, goes below zero. An account of a person merged into another
# (linked accounts) is closed by pointing `merged_into` at the survivor; its
# history stays, attributed to the surviving person.
COMMUNITY = "community"
USER = "user"
RESERVED = "reserved"
SPENT = "spent"
ACCOUNT_KINDS = (COMMUNITY, USER, RESERVED, SPENT)
# Accounts nobody owns: exactly one of each.
SYSTEM_KINDS = (COMMUNITY, SPENT)

point_accounts = sa.Table(
    "point_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True, index=True),
    sa.Column("balance", sa.Integer, nullable=False, server_default="0"),
    sa.Column("merged_into", sa.Integer, sa.ForeignKey("point_accounts.id"), nullable=True),
    sa.CheckConstraint(_in("kind", ACCOUNT_KINDS), name="kind"),
    sa.CheckConstraint(f"(user_id IS NULL) = ({_in('kind', SYSTEM_KINDS)})", name="owner"),
    sa.CheckConstraint(f"balance >= 0 OR kind = '{COMMUNITY}'", name="not_overdrawn"),
    # One open account of each kind per person, and one of each system account.
    sa.Index(
        "uq_point_accounts_open",
        "user_id",
        "kind",
        unique=True,
        sqlite_where=sa.text("merged_into IS NULL"),
        postgresql_where=sa.text("merged_into IS NULL"),
    ),
    sa.Index(
        "uq_point_accounts_system",
        "kind",
        unique=True,
        sqlite_where=sa.text("user_id IS NULL"),
        postgresql_where=sa.text("user_id IS NULL"),
    ),
)

# Append-only: rows are inserted, never updated or deleted (merging two people
# re-points `actor_id`, as it does everywhere else). `source_key` names the
# event that caused the movement ("patrol:checkout:123"), so the same check-out
# can never be credited twice; `reverses_id` is unique, so an entry is
# reversed at most once. `period` is the month of the community's calendar the
# points count towards (a reversal counts towards its original's month).
ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("debit_account_id", sa.Integer, sa.ForeignKey("point_accounts.id"), nullable=False),
    sa.Column("credit_account_id", sa.Integer, sa.ForeignKey("point_accounts.id"), nullable=False),
    sa.Column("amount", sa.Integer, nullable=False),
    sa.Column("source_key", sa.String(128), nullable=False, unique=True),
    sa.Column("reverses_id", sa.Integer, sa.ForeignKey("ledger_entries.id"), nullable=True, unique=True),
    sa.Column("reason_key", sa.String(64), nullable=False),
    sa.Column("reason_params", sa.JSON, nullable=False),
    sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
    # A person's statement: newest entries into or out of one account.
    sa.Index("ix_ledger_entries_credit", "credit_account_id", "id"),
    sa.Index("ix_ledger_entries_debit", "debit_account_id", "id"),
)

# Net points each person received from the community per period ("2026-05",
# or "all" for all time): a cache of ledger_entries kept on every post, so a
# leaderboard is a walk down one index, stopping after the top ten, instead of
# a sum over a month of entries. `grid_key` copies the person's current grid
# (kept in step by UserRepo.update) so that a grid's board is such a walk too,
# however few of the community's earners live in it.
point_earnings = sa.Table(
    "point_earnings",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("period", sa.String(7), primary_key=True),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("grid_key", sa.String(64), nullable=True),
    sa.Index("ix_point_earnings_period_points", "period", "points"),
    sa.Index("ix_point_earnings_period_grid_points", "period", "grid_key", "points"),
)

# --- Patrols (群防群治) -------------------------------------------------------

SHIFT_STATES = ("scheduled", "cancelled")
# confirmed: has a place; waiting: on the waiting list (ordered by created_at, id);
# cancelled: withdrew (or was taken off by police).
SIGNUP_STATES = ("confirmed", "waiting", "cancelled")
CHECK_METHODS = ("location", "manual", "auto")

# A recurring series ("every Friday 19:00-21:00, route A") that generates
# shifts ahead of time. `weekdays` holds the ISO weekdays it runs on ("5",
# "1234567"); times are wall-clock times in the community's time zone.
patrol_series = sa.Table(
    "patrol_series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("area", sa.String(128), nullable=False),
    sa.Column("weekdays", sa.String(7), nullable=False),
    sa.Column("start_time", sa.String(5), nullable=False),
    sa.Column("end_time", sa.String(5), nullable=False),
    sa.Column("meeting_lat", sa.Float, nullable=False),
    sa.Column("meeting_lon", sa.Float, nullable=False),
    sa.Column("meeting_label", sa.String(128), nullable=True),
    sa.Column("min_volunteers", sa.Integer, nullable=False),
    sa.Column("max_volunteers", sa.Integer, nullable=False),
    sa.Column("leader_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # The last local date ("2026-12-01") shifts have been generated for.
    sa.Column("generated_until", sa.String(10), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("min_volunteers >= 0 AND max_volunteers >= 1", name="sizes"),
    sa.CheckConstraint("min_volunteers <= max_volunteers", name="min_below_max"),
)

patrol_shifts = sa.Table(
    "patrol_shifts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("series_id", sa.Integer, sa.ForeignKey("patrol_series.id"), nullable=True),
    sa.Column("area", sa.String(128), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("meeting_lat", sa.Float, nullable=False),
    sa.Column("meeting_lon", sa.Float, nullable=False),
    sa.Column("meeting_label", sa.String(128), nullable=True),
    sa.Column("min_volunteers", sa.Integer, nullable=False),
    sa.Column("max_volunteers", sa.Integer, nullable=False),
    sa.Column("leader_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("state", sa.String(12), nullable=False, server_default="scheduled"),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Set once attendance is settled after the end: no-shows marked, open check-ins closed.
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(_in("state", SHIFT_STATES), name="state"),
    sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    sa.CheckConstraint("min_volunteers >= 0 AND max_volunteers >= 1", name="sizes"),
    sa.CheckConstraint("min_volunteers <= max_volunteers", name="min_below_max"),
    # A series generates each of its shifts once, however often generation runs.
    sa.UniqueConstraint("series_id", "starts_at"),
    sa.Index("ix_patrol_shifts_state_starts", "state", "starts_at"),
)

# One row per person and shift: the sign-up, then attendance on the same row.
patrol_signups = sa.Table(
    "patrol_signups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shift_id", sa.Integer, sa.ForeignKey("patrol_shifts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    # Waiting-list order: who asked first gets the freed place.
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("checked_in_at", UTCDateTime, nullable=True),
    sa.Column("checkin_method", sa.String(12), nullable=True),
    sa.Column("checkin_confirmed_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("checked_out_at", UTCDateTime, nullable=True),
    sa.Column("checkout_method", sa.String(12), nullable=True),
    # Check-in to check-out, clipped to the shift; set at check-out.
    sa.Column("minutes_worked", sa.Integer, nullable=True),
    # A forgotten check-out closed automatically at the shift's end: for review.
    sa.Column("flagged", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("no_show", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("shift_id", "user_id"),
    sa.CheckConstraint(_in("state", SIGNUP_STATES), name="state"),
    sa.CheckConstraint(f"checkin_method IS NULL OR {_in('checkin_method', CHECK_METHODS)}", name="checkin"),
    sa.CheckConstraint(
        f"checkout_method IS NULL OR {_in('checkout_method', CHECK_METHODS)}", name="checkout"
    ),
    sa.CheckConstraint("minutes_worked IS NULL OR minutes_worked >= 0", name="minutes"),
    sa.Index("ix_patrol_signups_shift_state", "shift_id", "state", "created_at"),
    sa.Index("ix_patrol_signups_user_state", "user_id", "state"),
)

# Residents asking to become volunteers where the community wants police to approve them.
volunteer_requests = sa.Table(
    "volunteer_requests",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("decided_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    sa.Column("approved", sa.Boolean, nullable=True),
)

# --- Rewards and honours ------------------------------------------------------

REDEMPTION_STATES = ("pending", "approved", "rejected")

# The catalogue lives in the community file; this is what was asked for and
# what became of it. The points are held in the ledger under "redemption:<id>".
redemptions = sa.Table(
    "redemptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("reward_key", sa.String(64), nullable=False),
    sa.Column("cost", sa.Integer, nullable=False),
    sa.Column("state", sa.String(12), nullable=False, server_default="pending"),
    sa.Column("pickup_code", sa.String(16), nullable=True, unique=True),
    sa.Column("decided_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(_in("state", REDEMPTION_STATES), name="state"),
    sa.CheckConstraint("cost > 0", name="cost_positive"),
    # A double-clicked "redeem" asks once: one pending request per person and reward.
    sa.Index(
        "uq_redemptions_pending",
        "user_id",
        "reward_key",
        unique=True,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    ),
)

# How many of each reward have been handed out; approval takes one only while
# `issued` is below the stock the community file gives.
reward_stock = sa.Table(
    "reward_stock",
    metadata,
    sa.Column("reward_key", sa.String(64), primary_key=True),
    sa.Column("issued", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("issued >= 0", name="issued"),
)

# Monthly honours (平安卫士, 优秀志愿者): decided once per month and kind.
honours = sa.Table(
    "honours",
    metadata,
    sa.Column("period", sa.String(7), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    # Points earned, or minutes patrolled, that won it.
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


# --- Broadcasts, notices and surveys (警情通报) -------------------------------------

BROADCAST_KINDS = ("police", "fraud", "missing", "weather", "emergency", "community")
PRIORITIES = ("info", "important", "urgent")
BROADCAST_STATES = ("scheduled", "sending", "sent", "cancelled")

broadcasts = sa.Table(
    "broadcasts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(12), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("photo_id", sa.Integer, sa.ForeignKey("media.id"), nullable=True),
    # {"type": "community" | "grids" | "volunteers" | "groups", "grids": [...]}
    sa.Column("audience", sa.JSON, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("scheduled_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # When the recipients were listed and their outbox rows written (once).
    sa.Column("expanded_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    # Sent by a recurring notice.
    sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id"), nullable=True),
    # Where the author's delivery report lives, so it can be edited as delivery progresses.
    sa.Column("summary_channel", sa.String(16), nullable=True),
    sa.Column("summary_chat_id", sa.String(128), nullable=True),
    sa.Column("summary_ref", sa.String(128), nullable=True),
    sa.CheckConstraint(_in("kind", BROADCAST_KINDS), name="kind"),
    sa.CheckConstraint(_in("priority", PRIORITIES), name="priority"),
    sa.CheckConstraint(_in("state", BROADCAST_STATES), name="state"),
    sa.Index("ix_broadcasts_state_scheduled", "state", "scheduled_at"),
)

# One row per person or group chat a broadcast goes to; the outbox row carries the delivery.
broadcast_recipients = sa.Table(
    "broadcast_recipients",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("broadcast_id", sa.Integer, sa.ForeignKey("broadcasts.id", ondelete="CASCADE"), nullable=False),
    # NULL for a group chat.
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("chat_id", sa.String(128), nullable=False),
    sa.Column("outbox_id", sa.Integer, sa.ForeignKey("outbox.id"), nullable=True),
    # Copied when listed, so acknowledgement rates by grid and building stay as they were.
    sa.Column("grid_key", sa.String(64), nullable=True),
    sa.Column("building", sa.String(32), nullable=True),
    sa.Column("acked_at", UTCDateTime, nullable=True),
    sa.Column("reminded_at", UTCDateTime, nullable=True),
    # A recipient is listed once, however often listing is retried.
    sa.UniqueConstraint("broadcast_id", "channel", "chat_id"),
    sa.Index("ix_broadcast_recipients_user", "user_id", "broadcast_id"),
    sa.Index("ix_broadcast_recipients_outbox", "outbox_id"),
)

# What each resident wants to receive; no row means everything, no quiet hours.
subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # Broadcast kinds this person opted out of (urgent alerts come anyway).
    sa.Column("muted_kinds", sa.JSON, nullable=False),
    # Local wall-clock times ("22:00", "07:00"): information notices wait until the end.
    sa.Column("quiet_from", sa.String(5), nullable=True),
    sa.Column("quiet_until", sa.String(5), nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Recurring notices; each firing becomes a broadcast.
notices = sa.Table(
    "notices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(12), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("audience", sa.JSON, nullable=False),
    # "daily:07:30", "weekly:1:19:00" (ISO weekday), "monthly:1:09:00" (day of month).
    sa.Column("rule", sa.String(32), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_sent_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(_in("kind", BROADCAST_KINDS), name="kind"),
    sa.CheckConstraint(_in("priority", PRIORITIES), name="priority"),
)

SURVEY_STATES = ("open", "closed")

# Satisfaction surveys (安全感/满意度): questions as JSON
# ([{"text": ..., "type": "scale" | "choice", "choices": [...]}]).
surveys = sa.Table(
    "surveys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("questions", sa.JSON, nullable=False),
    sa.Column("audience", sa.JSON, nullable=False),
    sa.Column("sample_size", sa.Integer, nullable=True),
    sa.Column("points", sa.Integer, nullable=False, server_default="0"),
    sa.Column("state", sa.String(8), nullable=False, server_default="open"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("closes_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(_in("state", SURVEY_STATES), name="state"),
    sa.CheckConstraint("points >= 0", name="points"),
)

survey_participants = sa.Table(
    "survey_participants",
    metadata,
    sa.Column("survey_id", sa.Integer, sa.ForeignKey("surveys.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("grid_key", sa.String(64), nullable=True),
    # Index of the next question to answer; equal to the number of questions when done.
    sa.Column("next_question", sa.Integer, nullable=False, server_default="0"),
    sa.Column("invited_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
)

survey_answers = sa.Table(
    "survey_answers",
    metadata,
    sa.Column("survey_id", sa.Integer, sa.ForeignKey("surveys.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("question", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("answer", sa.String(64), nullable=False),
    sa.Column("answered_at", UTCDateTime, nullable=False),
)

# Privileged actions (grants, revocations, links, awards, exports, erasures, broadcasts, views of an
# anonymous reporter's name): who did what, when, to whom. Append-only: the migration adds triggers
# that refuse UPDATE and DELETE. Ids are plain integers, not foreign keys, so that merging or erasing
# a person never has to rewrite history (an erased person's id stays, their name does not).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    # The Shouwang user who acted; None for the operator's command line and the bot itself.
    sa.Column("actor_id", sa.Integer, nullable=True),
    # "cli", "system" or the actor's channel: where the action came from.
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    # The person acted on, if any.
    sa.Column("subject_id", sa.Integer, nullable=True, index=True),
    # What else was acted on ("report:2026-0001", "broadcast:12"), never a name or a message text.
    sa.Column("target", sa.String(64), nullable=True),
    sa.Column("detail", sa.JSON, nullable=False),
)
