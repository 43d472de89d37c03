"""Hazard reports: filing, the lifecycle rules, who may move a report and where to.

Nothing here tells anyone anything: each change returns what happened, and the
flows have tell.py say it (to the reporter, grid workers, the police groups).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from handlers.accounts.rules import COMMANDERS, GRID_WORKER
from handlers.attendance import rules as attendance
from handlers.community import Community
from handlers.errors import DomainError, PermissionDenied
from handlers.messages import Text, Verbatim
from handlers.timebank import rules as timebank
from storage import report_states as rs
from storage.models import Report, User
from storage.repositories import Repos

REMINDER = "report_reminder"
REASON_REPORT_RESOLVED = "points.reason.report_resolved"
ESCALATION = "report_escalation"


@dataclass(frozen=True)
class Moved:
    """A report that moved to another state, and what its reporter is to be told about it."""

    report: Report
    # What the move says in words (resolution note, rejection reason, original ticket, worker's name).
    note: str | None = None
    # The grid worker it was assigned to, who is told too.
    assignee: User | None = None


class CannotMove(DomainError):
    """The report is not (or no longer) in a state that allows the move; usually someone was faster."""

    def __init__(self, report: Report) -> None:
        # The state's name is a catalogue key: the reader sees it in their language.
        super().__init__(
            "report.cannot_move", ticket=ticket_label(report), state=Text(f"state.{report.state}")
        )


def ticket_label(report: Report) -> str:
    return f"#{report.ticket}"


def ack_deadline(community: Community, report: Report) -> timedelta:
    minutes = (
        community.escalation.urgent_ack_minutes
        if report.urgency == "urgent"
        else community.escalation.normal_ack_minutes
    )
    return timedelta(minutes=minutes)


def is_overdue(community: Community, report: Report, now: datetime) -> bool:
    return report.state == rs.SUBMITTED and report.created_at + ack_deadline(community, report) < now


def sees_reporter(viewer: User) -> bool:
    """Whether this person is shown who filed an anonymous report."""
    return viewer.role in COMMANDERS


@dataclass
class Draft:
    category: str
    urgency: str
    description: str
    anonymous: bool
    photos: list[int] = field(default_factory=list)
    grid_key: str | None = None
    building: str | None = None
    unit: str | None = None
    latitude: float | None = None
    longitude: float | None = None


async def check_rate_limit(repos: Repos, community: Community, reporter: User, now: datetime) -> None:
    recent = await repos.reports.count_since(reporter.id, now - timedelta(hours=1))
    if recent >= community.limits.reports_per_hour:
        raise DomainError("report.rate_limited", limit=community.limits.reports_per_hour)


async def submit(repos: Repos, community: Community, reporter: User, draft: Draft, now: datetime) -> Report:
    await check_rate_limit(repos, community, reporter, now)
    if community.category(draft.category) is None:
        raise DomainError("report.unknown_category")
    year = now.astimezone(community.tz).year
    number = await repos.reports.next_ticket_number(year)
    report = await repos.reports.create(
        ticket=f"{year}-{number:04d}",
        reporter_id=reporter.id,
        category=draft.category,
        urgency=draft.urgency,
        description=draft.description,
        grid_key=draft.grid_key,
        building=draft.building,
        unit=draft.unit,
        latitude=draft.latitude,
        longitude=draft.longitude,
        anonymous=draft.anonymous,
        state=rs.SUBMITTED,
        created_at=now,
        updated_at=now,
        # The patrol log: filed while checked in on a patrol, the report belongs to that shift.
        patrol_shift_id=await attendance.current_shift_id(repos, reporter.id, now),
    )
    for position, media_id in enumerate(draft.photos):
        await repos.reports.add_photo(report.id, "before", position, media_id)
    await repos.reports.add_event(report.id, reporter.id, None, rs.SUBMITTED, None, now)
    deadline = ack_deadline(community, report)
    escalate_minutes = (
        community.escalation.urgent_escalate_minutes
        if report.urgency == "urgent"
        else community.escalation.normal_escalate_minutes
    )
    await repos.schedules.arm(REMINDER, str(report.id), now + deadline)
    await repos.schedules.arm(ESCALATION, str(report.id), now + timedelta(minutes=escalate_minutes))
    return report


async def load(repos: Repos, report_id: int) -> Report:
    report = await repos.reports.get(report_id)
    if report is None:
        raise DomainError("report.not_found")
    return report


async def find_by_ticket(repos: Repos, text: str) -> Report | None:
    ticket = text.strip().lstrip("#＃").strip()
    return await repos.reports.by_ticket(ticket)


async def may_handle(repos: Repos, user: User, report: Report) -> bool:
    if user.role in COMMANDERS:
        return True
    if report.assignee_id == user.id:
        return True
    return user.role == GRID_WORKER and report.grid_key in await repos.users.grids_of(user.id)


def _require_commander(user: User) -> None:
    if user.role not in COMMANDERS:
        raise PermissionDenied()


async def _require_handler(repos: Repos, user: User, report: Report) -> None:
    if not await may_handle(repos, user, report):
        raise PermissionDenied()


def check_move(report: Report, to_state: str) -> None:
    """Explain politely why a move is impossible (usually: someone else was faster)."""
    if not rs.can_move(report.state, to_state):
        raise CannotMove(report)


async def _move(
    repos: Repos,
    community: Community,
    actor: User,
    report: Report,
    to_state: str,
    now: datetime,
    note: str | None = None,
    **values: object,
) -> Moved:
    check_move(report, to_state)
    if report.state == rs.SUBMITTED:
        values.setdefault("acknowledged_at", now)
    if to_state in rs.CLOSED:
        values["closed_at"] = now
    if not await repos.reports.move(report.id, report.state, to_state, now, **values):
        # Lost a race with another click; describe the state that won.
        raise CannotMove(await load(repos, report.id))
    await repos.reports.add_event(report.id, actor.id, report.state, to_state, note, now)
    if report.state == rs.SUBMITTED:
        await repos.schedules.cancel(REMINDER, str(report.id))
        await repos.schedules.cancel(ESCALATION, str(report.id))
    return Moved(await load(repos, report.id), note)


async def acknowledge(
    repos: Repos, community: Community, actor: User, report_id: int, now: datetime
) -> Moved:
    report = await load(repos, report_id)
    await _require_handler(repos, actor, report)
    return await _move(repos, community, actor, report, rs.ACKNOWLEDGED, now)


async def assignable_workers(repos: Repos, actor: User, report: Report) -> list[User]:
    _require_commander(actor)
    check_move(report, rs.ASSIGNED)
    if not report.grid_key:
        return []
    return await repos.users.workers_of_grid(report.grid_key)


async def assign(
    repos: Repos, community: Community, actor: User, report_id: int, worker_id: int, now: datetime
) -> Moved:
    report = await load(repos, report_id)
    _require_commander(actor)
    worker = await repos.users.get(worker_id)
    if worker is None or worker.role != GRID_WORKER:
        raise DomainError("report.not_a_worker")
    if report.grid_key not in await repos.users.grids_of(worker.id):
        raise DomainError("report.worker_wrong_grid")
    if report.state == rs.ASSIGNED and report.assignee_id == worker.id:
        raise DomainError(
            "report.already_assigned", ticket=ticket_label(report), name=Verbatim(worker.display_name)
        )
    moved = await _move(
        repos, community, actor, report, rs.ASSIGNED, now, note=worker.display_name, assignee_id=worker.id
    )
    return Moved(moved.report, moved.note, assignee=worker)


async def start_work(repos: Repos, community: Community, actor: User, report_id: int, now: datetime) -> Moved:
    report = await load(repos, report_id)
    await _require_handler(repos, actor, report)
    return await _move(repos, community, actor, report, rs.IN_PROGRESS, now)


async def check_can_resolve(repos: Repos, actor: User, report: Report) -> None:
    await _require_handler(repos, actor, report)
    check_move(report, rs.RESOLVED)


async def resolve(
    repos: Repos,
    community: Community,
    actor: User,
    report_id: int,
    note: str,
    after_photo: int | None,
    now: datetime,
) -> Moved:
    report = await load(repos, report_id)
    await check_can_resolve(repos, actor, report)
    if after_photo is not None:
        await repos.reports.add_photo(report.id, "after", 0, after_photo)
    moved = await _move(repos, community, actor, report, rs.RESOLVED, now, note=note, resolution_note=note)
    points = community.timebank.report_resolved_points
    if points:
        # The source key makes a second credit for the same report impossible.
        await repos.ledger.credit_user(
            moved.report.reporter_id,
            points,
            f"report:resolved:{moved.report.id}",
            REASON_REPORT_RESOLVED,
            {"ticket": ticket_label(moved.report)},
            actor.id,
            now,
        )
    return moved


def check_can_reject(actor: User, report: Report) -> None:
    _require_commander(actor)
    check_move(report, rs.REJECTED)


async def reject(
    repos: Repos, community: Community, actor: User, report_id: int, reason: str, now: datetime
) -> Moved:
    report = await load(repos, report_id)
    check_can_reject(actor, report)
    return await _move(
        repos, community, actor, report, rs.REJECTED, now, note=reason, rejection_reason=reason
    )


def check_can_mark_duplicate(actor: User, report: Report) -> None:
    _require_commander(actor)
    check_move(report, rs.DUPLICATE)


async def mark_duplicate(
    repos: Repos, community: Community, actor: User, report_id: int, original: Report, now: datetime
) -> Moved:
    report = await load(repos, report_id)
    check_can_mark_duplicate(actor, report)
    if original.id == report.id:
        raise DomainError("report.duplicate_of_itself")
    return await _move(
        repos,
        community,
        actor,
        report,
        rs.DUPLICATE,
        now,
        note=ticket_label(original),
        duplicate_of=original.id,
    )


async def rate(
    repos: Repos, community: Community, reporter: User, report_id: int, rating: int, now: datetime
) -> Report:
    report = await load(repos, report_id)
    if report.reporter_id != reporter.id:
        raise PermissionDenied()
    if not 1 <= rating <= 5:
        raise DomainError("rating.out_of_range")
    if report.rating is not None:
        raise DomainError("rating.already", ticket=ticket_label(report), rating=report.rating)
    if not await repos.reports.set_rating(report.id, rating, now):
        raise DomainError("rating.not_resolved")
    rated = await load(repos, report.id)
    # A rating of 4 or 5 says the tip was useful: points, once (the rating is stored once too).
    await timebank.credit_useful_report(repos, community, rated, now)
    return rated


async def waiting_for_acknowledgement(repos: Repos, report_id: int) -> Report | None:
    """The report a reminder or escalation is about, if it still waits to be acknowledged."""
    report = await repos.reports.get(report_id)
    if report is None or report.state != rs.SUBMITTED:
        return None
    return report
