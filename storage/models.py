"""Rows as plain dataclasses: what repositories return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class User:
    id: int
    display_name: str
    role: str
    language: str | None
    grid_key: str | None
    building: str | None
    unit: str | None
    privacy_accepted_at: datetime | None
    onboarded_at: datetime | None
    created_at: datetime
    leaderboard_opt_out: bool = False
    no_shows_forgiven_at: datetime | None = None
    erased_at: datetime | None = None
    declined_at: datetime | None = None


@dataclass(frozen=True)
class Identity:
    channel: str
    external_id: str
    user_id: int
    chat_id: str | None
    last_seen_at: datetime
    blocked_at: datetime | None = None


@dataclass(frozen=True)
class Invite:
    code: str
    role: str
    grid_key: str | None
    created_by: int
    created_at: datetime
    expires_at: datetime
    used_by: int | None
    used_at: datetime | None
    withdrawn_at: datetime | None


@dataclass(frozen=True)
class Conversation:
    user_id: int
    channel: str
    flow: str
    step: str
    data: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class Report:
    id: int
    ticket: str
    reporter_id: int
    category: str
    urgency: str
    description: str
    grid_key: str | None
    building: str | None
    unit: str | None
    latitude: float | None
    longitude: float | None
    anonymous: bool
    state: str
    assignee_id: int | None
    duplicate_of: int | None
    resolution_note: str | None
    rejection_reason: str | None
    rating: int | None
    rating_comment: str | None
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None
    patrol_shift_id: int | None = None


@dataclass(frozen=True)
class ReportEvent:
    id: int
    report_id: int
    actor_id: int | None
    from_state: str | None
    to_state: str
    note: str | None
    created_at: datetime


@dataclass(frozen=True)
class Media:
    id: int
    sha256: str
    mime: str
    width: int
    height: int
    size: int
    path: str
    created_at: datetime


@dataclass(frozen=True)
class ReportCard:
    report_id: int
    channel: str
    chat_id: str
    message_id: str


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    channel: str
    chat_id: str
    language: str
    kind: str
    payload: dict[str, Any]
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    failing_since: datetime | None = None
    priority: int = 0


@dataclass(frozen=True)
class Schedule:
    id: int
    kind: str
    ref: str
    due_at: datetime
    state: str
    fired_at: datetime | None


@dataclass(frozen=True)
class LedgerEntry:
    """One movement as a person sees it: `amount` is positive into their account, negative out of it."""

    id: int
    amount: int
    reason_key: str
    reason_params: dict[str, Any]
    source_key: str
    actor_id: int | None
    reverses_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class Standing:
    """A line of a leaderboard: points earned in the period asked about."""

    user_id: int
    points: int


@dataclass(frozen=True)
class PointsStatement:
    """What /points shows: spendable, held by pending redemptions, earned all-time, latest entries."""

    balance: int
    reserved: int
    lifetime: int
    recent: list[LedgerEntry]


@dataclass(frozen=True)
class PatrolSeries:
    id: int
    area: str
    weekdays: str
    start_time: str
    end_time: str
    meeting_lat: float
    meeting_lon: float
    meeting_label: str | None
    min_volunteers: int
    max_volunteers: int
    leader_id: int | None
    created_by: int
    active: bool
    generated_until: str | None
    created_at: datetime


@dataclass(frozen=True)
class PatrolShift:
    id: int
    series_id: int | None
    area: str
    starts_at: datetime
    ends_at: datetime
    meeting_lat: float
    meeting_lon: float
    meeting_label: str | None
    min_volunteers: int
    max_volunteers: int
    leader_id: int | None
    state: str
    created_by: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class PatrolSignup:
    id: int
    shift_id: int
    user_id: int
    state: str
    created_at: datetime
    updated_at: datetime
    checked_in_at: datetime | None
    checkin_method: str | None
    checkin_confirmed_by: int | None
    checked_out_at: datetime | None
    checkout_method: str | None
    minutes_worked: int | None
    flagged: bool
    no_show: bool


@dataclass(frozen=True)
class Redemption:
    id: int
    user_id: int
    reward_key: str
    cost: int
    state: str
    pickup_code: str | None
    decided_by: int | None
    reason: str | None
    created_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True)
class Honour:
    period: str
    kind: str
    rank: int
    user_id: int
    score: int
    created_at: datetime


@dataclass(frozen=True)
class VolunteerRequest:
    user_id: int
    requested_at: datetime
    decided_by: int | None
    decided_at: datetime | None
    approved: bool | None


@dataclass(frozen=True)
class AwardEntry:
    """A ledger entry as a correction sees it: who received it, and whether it was reversed already."""

    id: int
    user_id: int
    amount: int
    source_key: str
    reason_params: dict[str, Any]
    created_at: datetime
    reversed: bool


@dataclass(frozen=True)
class LedgerExportRow:
    """One ledger entry for the CSV export, with the person whose account it touched and the actor."""

    id: int
    created_at: datetime
    person_id: int | None
    person_name: str | None
    debit_kind: str
    credit_kind: str
    amount: int
    reason_key: str
    reason_params: dict[str, Any]
    source_key: str
    actor_id: int | None
    actor_name: str | None


@dataclass(frozen=True)
class PatrolHoursRow:
    """One volunteer on one patrol shift, for the CSV export of patrol hours."""

    shift_id: int
    area: str
    starts_at: datetime
    ends_at: datetime
    user_id: int
    person_name: str
    checked_in_at: datetime | None
    checkin_method: str | None
    checked_out_at: datetime | None
    checkout_method: str | None
    minutes_worked: int | None
    flagged: bool
    no_show: bool


@dataclass(frozen=True)
class Notice:
    """A recurring notice (定期通知); `rule` is "daily:07:30", "weekly:1:19:00" or "monthly:1:09:00"."""

    id: int
    author_id: int
    kind: str
    priority: str
    text: str
    audience: dict[str, Any]
    rule: str
    active: bool
    created_at: datetime
    last_sent_at: datetime | None


@dataclass(frozen=True)
class Survey:
    """A satisfaction survey (安全感/满意度调查); `questions` as stored (see storage.schema.surveys)."""

    id: int
    author_id: int
    title: str
    questions: list[dict[str, Any]]
    audience: dict[str, Any]
    sample_size: int | None
    points: int
    state: str
    created_at: datetime
    closes_at: datetime | None


@dataclass(frozen=True)
class SurveyParticipant:
    survey_id: int
    user_id: int
    grid_key: str | None
    next_question: int
    invited_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Broadcast:
    """A police broadcast (警情通报): what, to whom, and how far its delivery got."""

    id: int
    author_id: int
    kind: str
    priority: str
    text: str
    photo_id: int | None
    audience: dict[str, Any]
    state: str
    scheduled_at: datetime | None
    created_at: datetime
    expanded_at: datetime | None
    finished_at: datetime | None
    notice_id: int | None
    summary_channel: str | None
    summary_chat_id: str | None
    summary_ref: str | None


@dataclass(frozen=True)
class Subscription:
    """What a person wants to receive: kinds muted, and quiet hours as local "HH:MM" times."""

    user_id: int
    muted_kinds: list[str]
    quiet_from: str | None
    quiet_until: str | None
    updated_at: datetime


@dataclass(frozen=True)
class BroadcastCandidate:
    """A person a broadcast may reach: their newest reachable private chat and what they asked for."""

    user_id: int
    role: str
    language: str | None
    grid_key: str | None
    building: str | None
    channel: str
    chat_id: str
    muted_kinds: list[str]
    quiet_from: str | None
    quiet_until: str | None


@dataclass(frozen=True)
class BroadcastFigures:
    """Where a broadcast's delivery stands, counted from the outbox rows of its recipients."""

    people: int
    groups: int
    delivered: int
    pending: int
    failed: int
    blocked: int
    # People (not groups) whose copy was delivered, and how many of them pressed 收到.
    people_delivered: int
    acked: int
    # Copies given up after the outbox kind's horizon of platform failures (an outage).
    expired: int = 0


@dataclass(frozen=True)
class AckShare:
    """Acknowledgements of an urgent alert in one grid or building, among people who received it."""

    key: str | None
    delivered: int
    acked: int
