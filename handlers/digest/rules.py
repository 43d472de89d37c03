"""The weekly digest to the police groups: last week's figures and one chart.

Definitions (the digest message says them in words too):

- The period is the 7 days before the digest was due, [due - 7 days, due); a digest
  that fires late after downtime covers the latest such week before it goes out.
- Opened: reports filed in the period. Closed: reports that reached a final
  state (resolved, rejected or duplicate) in the period, whenever they were filed.
- Closure rate (结案率): of the reports opened in the period, the share that is
  closed by the time the digest is made. Unlike "closed / opened" it cannot
  exceed 100%.
- Median time to close: over the reports closed in the period, filing to closing.
- Open and overdue now: at the time the digest is made; overdue as in /tasks
  (not acknowledged within the community's deadline, see handlers/reports/rules.is_overdue).
- Satisfaction: the average rating (1-5) of the reports closed in the period
  that their reporter has rated so far.
- Patrol hours and fill rate: shifts that started in the period and were not
  cancelled; hours worked by confirmed volunteers, and confirmed sign-ups per
  place offered (repos.attendance.stats).
- Top volunteers: net points each person received from the community in the
  period (awards minus their reversals), people who opted out of leaderboards
  left out.

The message and its chart (the week's reports per grid, stacked by their current
state) are built in views.py; the chart is drawn when the message is sent
(bot/charts.py, matplotlib off the event loop), in the reader's language like the
rest of the message.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from handlers.community import Community
from handlers.reports.rules import is_overdue
from storage import report_states as rs
from storage.notices import Earner
from storage.repositories import Repos

DIGEST = "digest"
PERIOD = timedelta(days=7)
TOP_VOLUNTEERS = 5


# --- when --------------------------------------------------------------------------------


def due_after(community: Community, after: datetime) -> datetime:
    """The first digest moment (configured weekday and local time) strictly after `after`."""
    settings = community.broadcasts
    hour, minute = (int(part) for part in settings.digest_time.split(":"))
    tz = community.tz
    day = after.astimezone(tz).date()
    for offset in range(8 + 7):
        candidate_day = day + timedelta(days=offset)
        if candidate_day.isoweekday() != settings.digest_weekday:
            continue
        candidate = datetime.combine(candidate_day, time(hour, minute), tzinfo=tz).astimezone(UTC)
        if candidate > after:
            return candidate
    raise AssertionError("a weekday recurs within two weeks")


def week_ref(community: Community, due: datetime) -> str:
    """The schedule's ref: the ISO week of the local day the digest is due ("2026-W21")."""
    year, week, _ = due.astimezone(community.tz).date().isocalendar()
    return f"{year}-W{week:02d}"


async def arm_next(repos: Repos, community: Community, after: datetime) -> None:
    """Arm the next digest unless it is armed (or done) already: arming a done one would send it again."""
    due = due_after(community, after)
    ref = week_ref(community, due)
    armed = await repos.schedules.get(DIGEST, ref)
    if armed is None or armed.state == "cancelled":
        await repos.schedules.arm(DIGEST, ref, due)


# --- the figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class GridFigures:
    """One grid's week; `states` counts the reports opened in the period by their current state."""

    grid_key: str | None
    opened: int
    closed: int
    states: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Figures:
    start: datetime
    end: datetime
    grids: list[GridFigures]
    opened: int
    # Of the reports opened in the period, how many are closed now (the closure rate's numerator).
    opened_and_closed: int
    closed: int
    median_to_close: timedelta | None
    open_now: int
    overdue_now: int
    rating_average: float | None
    ratings: int
    patrol_minutes: int
    patrol_places: int
    patrol_confirmed: int
    top: list[Earner]

    @property
    def closure_rate(self) -> float | None:
        return self.opened_and_closed / self.opened if self.opened else None

    @property
    def fill_rate(self) -> float | None:
        return self.patrol_confirmed / self.patrol_places if self.patrol_places else None


def _grid_order(community: Community, keys: set[str | None]) -> list[str | None]:
    """The community's grids in their configured order, then grids no longer configured, then no grid."""
    configured = [grid.key for grid in community.grids]
    gone = sorted(key for key in keys if key is not None and key not in configured)
    return [*configured, *gone, *([None] if None in keys else [])]


async def collect(
    repos: Repos, community: Community, start: datetime, end: datetime, now: datetime
) -> Figures:
    opened_rows = await repos.notices.reports_opened(start, end)
    closed = await repos.notices.reports_closed(start, end)
    states: dict[str | None, dict[str, int]] = {}
    for grid_key, state, count in opened_rows:
        states.setdefault(grid_key, {})[state] = count
    closed_by_grid: dict[str | None, int] = {}
    for report in closed:
        closed_by_grid[report.grid_key] = closed_by_grid.get(report.grid_key, 0) + 1
    grids = [
        GridFigures(
            key,
            sum(states.get(key, {}).values()),
            closed_by_grid.get(key, 0),
            dict(states.get(key, {})),
        )
        for key in _grid_order(community, set(states) | set(closed_by_grid))
    ]
    durations = [(report.closed_at - report.created_at).total_seconds() for report in closed]
    ratings = [report.rating for report in closed if report.rating is not None]
    waiting = await repos.notices.unacknowledged_reports()
    patrols = await repos.attendance.stats(start, end, limit=1)
    return Figures(
        start=start,
        end=end,
        grids=grids,
        opened=sum(count for _, _, count in opened_rows),
        opened_and_closed=sum(count for _, state, count in opened_rows if state in rs.CLOSED),
        closed=len(closed),
        median_to_close=timedelta(seconds=statistics.median(durations)) if durations else None,
        open_now=await repos.notices.open_reports(),
        overdue_now=sum(1 for report in waiting if is_overdue(community, report, now)),
        rating_average=statistics.fmean(ratings) if ratings else None,
        ratings=len(ratings),
        patrol_minutes=patrols.minutes,
        patrol_places=patrols.places,
        patrol_confirmed=patrols.confirmed,
        top=await repos.notices.top_earners(start, end, TOP_VOLUNTEERS),
    )


def latest_due(community: Community, now: datetime) -> datetime:
    """The latest digest moment at or before `now`: they are a week apart, so one is in the last 7 days."""
    return due_after(community, now - PERIOD)


async def on_start(repos: Repos, community: Community, now: datetime) -> None:
    """Arm the next digest. One armed for a moment the community file no longer names (its digest
    weekday or time changed) is cancelled first, or it would go out once more at the old moment;
    one due at a configured moment while the bot was down stays, to go out now."""
    for armed in await repos.schedules.pending_of(DIGEST):
        if due_after(community, armed.due_at - timedelta(seconds=1)) != armed.due_at:
            await repos.schedules.cancel(DIGEST, armed.ref)
    await arm_next(repos, community, now)
