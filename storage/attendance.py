"""Check-in, check-out, hours worked and no-shows of patrol sign-ups.

Every change is a conditional UPDATE ("only if not checked in yet", "only if
the shift is not closed yet"), so two clicks, a leader and the volunteer at
once, or a check-out racing the closing job change a sign-up exactly once; the
caller learns from the return value whether it was the one that did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam

from storage import schema as t
from storage.models import PatrolShift, PatrolSignup
from storage.rows import Repo, all_models, from_mapping

CONFIRMED = "confirmed"
SCHEDULED = "scheduled"


@dataclass(frozen=True)
class Attendance:
    """A sign-up together with its shift."""

    signup: PatrolSignup
    shift: PatrolShift


@dataclass(frozen=True)
class RosterLine:
    """One confirmed person on a shift's roster."""

    signup: PatrolSignup
    display_name: str


@dataclass(frozen=True)
class VolunteerMinutes:
    user_id: int
    display_name: str
    minutes: int


@dataclass(frozen=True)
class PatrolStats:
    """Shifts that started in a period (not cancelled) and what happened on them."""

    shifts: int
    places: int
    confirmed: int
    no_shows: int
    flagged: int
    minutes: int
    reports: int
    top: list[VolunteerMinutes]


def _joined() -> sa.Select[Any]:
    """Sign-ups with their shift, the shift's columns prefixed "shift__"."""
    s, p = t.patrol_signups, t.patrol_shifts
    return sa.select(s, *(column.label(f"shift__{column.name}") for column in p.c)).join(
        p, p.c.id == s.c.shift_id
    )


def _attendance(row: sa.Row[Any]) -> Attendance:
    mapping = row._mapping
    return Attendance(from_mapping(PatrolSignup, mapping), from_mapping(PatrolShift, mapping, "shift__"))


def _shift_open() -> sa.ColumnElement[bool]:
    """The sign-up's shift is still running its course: scheduled and not closed."""
    p = t.patrol_shifts.c
    return (
        sa.select(p.id)
        .where(p.id == t.patrol_signups.c.shift_id, p.state == SCHEDULED, p.closed_at.is_(None))
        .exists()
    )


class AttendanceRepo(Repo):
    # -- reading ----------------------------------------------------------------

    async def get(self, signup_id: int) -> Attendance | None:
        row = (await self.c.execute(_joined().where(t.patrol_signups.c.id == signup_id))).first()
        return None if row is None else _attendance(row)

    async def confirmed_overlapping(self, user_id: int, start: datetime, end: datetime) -> list[Attendance]:
        """This person's confirmed sign-ups on scheduled shifts starting by `end` and ending after `start`.

        Soonest first.
        """
        s, p = t.patrol_signups.c, t.patrol_shifts.c
        rows = await self.c.execute(
            _joined()
            .where(
                s.user_id == user_id,
                s.state == CONFIRMED,
                p.state == SCHEDULED,
                p.starts_at <= end,
                p.ends_at > start,
            )
            .order_by(p.starts_at, p.id)
        )
        return [_attendance(row) for row in rows]

    async def next_confirmed(self, user_id: int, after: datetime) -> Attendance | None:
        """This person's next confirmed shift starting after `after`."""
        s, p = t.patrol_signups.c, t.patrol_shifts.c
        row = (
            await self.c.execute(
                _joined()
                .where(s.user_id == user_id, s.state == CONFIRMED, p.state == SCHEDULED, p.starts_at > after)
                .order_by(p.starts_at, p.id)
                .limit(1)
            )
        ).first()
        return None if row is None else _attendance(row)

    async def open_checkins(self, user_id: int) -> list[Attendance]:
        """Sign-ups this person is checked in to and not yet out of, on shifts not closed, soonest first."""
        s, p = t.patrol_signups.c, t.patrol_shifts.c
        rows = await self.c.execute(
            _joined()
            .where(
                s.user_id == user_id,
                s.state == CONFIRMED,
                s.checked_in_at.is_not(None),
                s.checked_out_at.is_(None),
                p.state == SCHEDULED,
                p.closed_at.is_(None),
            )
            .order_by(p.starts_at, p.id)
        )
        return [_attendance(row) for row in rows]

    async def last_checked_in(self, user_id: int) -> Attendance | None:
        """The latest shift this person checked in to (whatever became of it)."""
        s, p = t.patrol_signups.c, t.patrol_shifts.c
        row = (
            await self.c.execute(
                _joined()
                .where(s.user_id == user_id, s.checked_in_at.is_not(None))
                .order_by(p.starts_at.desc(), p.id.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else _attendance(row)

    async def current_shift_id(self, user_id: int, now: datetime) -> int | None:
        """The shift this person is patrolling right now: checked in, not out, shift not over or closed."""

        # Prebuilt: asked for every location a person sends (bench/throughput.py).
        def current_shift() -> sa.Select[Any]:
            s, p = t.patrol_signups.c, t.patrol_shifts.c
            return (
                sa.select(p.id)
                .join(t.patrol_signups, s.shift_id == p.id)
                .where(
                    s.user_id == bindparam("user_id"),
                    s.state == CONFIRMED,
                    s.checked_in_at.is_not(None),
                    s.checked_out_at.is_(None),
                    p.state == SCHEDULED,
                    p.closed_at.is_(None),
                    p.ends_at >= bindparam("now"),
                )
                .order_by(p.starts_at.desc())
                .limit(1)
            )

        values = {"user_id": user_id, "now": now}
        shift_id: int | None = (await self.c.execute(self.prebuilt(current_shift), values)).scalar()
        return shift_id

    async def roster(self, shift_id: int) -> list[RosterLine]:
        """Everyone with a confirmed place on the shift, in sign-up order, with their names."""
        s, u = t.patrol_signups, t.users
        rows = await self.c.execute(
            sa.select(s, u.c.display_name)
            .join(u, u.c.id == s.c.user_id)
            .where(s.c.shift_id == shift_id, s.c.state == CONFIRMED)
            .order_by(s.c.created_at, s.c.id)
        )
        return [RosterLine(from_mapping(PatrolSignup, row._mapping), row.display_name) for row in rows]

    async def shifts_led(self, leader_id: int, after: datetime, limit: int = 1) -> list[PatrolShift]:
        """Scheduled, unclosed shifts this person leads that end after `after`, soonest first."""
        p = t.patrol_shifts.c
        rows = await self.c.execute(
            sa.select(t.patrol_shifts)
            .where(p.leader_id == leader_id, p.state == SCHEDULED, p.closed_at.is_(None), p.ends_at > after)
            .order_by(p.starts_at, p.id)
            .limit(limit)
        )
        return all_models(PatrolShift, rows)

    async def shifts_starting(self, start: datetime, end: datetime, limit: int = 20) -> list[PatrolShift]:
        """Scheduled shifts starting in [start, end), soonest first."""
        p = t.patrol_shifts.c
        rows = await self.c.execute(
            sa.select(t.patrol_shifts)
            .where(p.state == SCHEDULED, p.starts_at >= start, p.starts_at < end)
            .order_by(p.starts_at, p.id)
            .limit(limit)
        )
        return all_models(PatrolShift, rows)

    async def ledger_entry_id(self, source_key: str) -> int | None:
        """The ledger entry a check-out credited (to reverse it when police void the hours)."""
        e = t.ledger_entries.c
        return (await self.c.execute(sa.select(e.id).where(e.source_key == source_key))).scalar()

    # -- changing ---------------------------------------------------------------

    async def check_in(self, signup_id: int, now: datetime, method: str, confirmed_by: int | None) -> bool:
        """Record the check-in unless it was recorded already or the shift is closed or cancelled."""
        s = t.patrol_signups.c
        result = await self.c.execute(
            t.patrol_signups.update()
            .where(s.id == signup_id, s.state == CONFIRMED, s.checked_in_at.is_(None), _shift_open())
            .values(
                checked_in_at=now,
                checkin_method=method,
                checkin_confirmed_by=confirmed_by,
                updated_at=now,
            )
        )
        return result.rowcount == 1

    async def check_out(
        self, signup_id: int, at: datetime, method: str, minutes: int, flagged: bool, now: datetime
    ) -> bool:
        """Record the check-out at `at` unless it was recorded already or the shift was closed."""
        s = t.patrol_signups.c
        result = await self.c.execute(
            t.patrol_signups.update()
            .where(
                s.id == signup_id,
                s.checked_in_at.is_not(None),
                s.checked_out_at.is_(None),
                _shift_open(),
            )
            .values(
                checked_out_at=at,
                checkout_method=method,
                minutes_worked=minutes,
                flagged=flagged,
                updated_at=now,
            )
        )
        return result.rowcount == 1

    async def close(self, shift_id: int, now: datetime) -> bool:
        """Mark the shift closed; False if it was closed before or is cancelled (it then never closes)."""
        p = t.patrol_shifts.c
        result = await self.c.execute(
            t.patrol_shifts.update()
            .where(p.id == shift_id, p.state == SCHEDULED, p.closed_at.is_(None))
            .values(closed_at=now)
        )
        return result.rowcount == 1

    async def auto_check_out(self, signup_id: int, at: datetime, minutes: int, now: datetime) -> bool:
        """At closing: a forgotten check-out is closed at the end and flagged for review."""
        # Unlike check_out, runs after the shift was marked closed (in the same transaction).
        s = t.patrol_signups.c
        result = await self.c.execute(
            t.patrol_signups.update()
            .where(s.id == signup_id, s.checked_in_at.is_not(None), s.checked_out_at.is_(None))
            .values(
                checked_out_at=at,
                checkout_method="auto",
                minutes_worked=minutes,
                flagged=True,
                updated_at=now,
            )
        )
        return result.rowcount == 1

    async def mark_no_shows(self, shift_id: int, now: datetime) -> list[int]:
        """Confirmed sign-ups without a check-in become no-shows; the people newly marked."""
        s = t.patrol_signups.c
        rows = await self.c.execute(
            t.patrol_signups.update()
            .where(
                s.shift_id == shift_id,
                s.state == CONFIRMED,
                s.checked_in_at.is_(None),
                s.no_show.is_(False),
            )
            .values(no_show=True, updated_at=now)
            .returning(s.user_id)
        )
        return sorted(rows.scalars())

    async def review(self, signup_id: int, void: bool, now: datetime) -> bool:
        """Settle a flagged check-out: keep its hours, or void them. False if settled before."""
        s = t.patrol_signups.c
        values: dict[str, Any] = {"flagged": False, "updated_at": now}
        if void:
            values["minutes_worked"] = 0
        result = await self.c.execute(
            t.patrol_signups.update().where(s.id == signup_id, s.flagged.is_(True)).values(**values)
        )
        return result.rowcount == 1

    # -- statistics -------------------------------------------------------------

    async def stats(self, start: datetime, end: datetime, limit: int = 10) -> PatrolStats:
        """Shifts that started in [start, end) and were not cancelled, with their attendance."""
        p, s, u, r = t.patrol_shifts, t.patrol_signups, t.users, t.reports
        held = (
            sa.select(p.c.id, p.c.max_volunteers)
            .where(p.c.state == SCHEDULED, p.c.starts_at >= start, p.c.starts_at < end)
            .subquery()
        )
        shifts, places = (
            await self.c.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(held.c.max_volunteers), 0))
            )
        ).one()
        confirmed = s.c.state == CONFIRMED
        counts = (
            await self.c.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(sa.case((s.c.no_show, 1), else_=0)), 0),
                    sa.func.coalesce(sa.func.sum(sa.case((s.c.flagged, 1), else_=0)), 0),
                    sa.func.coalesce(sa.func.sum(s.c.minutes_worked), 0),
                )
                .select_from(s)
                .join(held, held.c.id == s.c.shift_id)
                .where(confirmed)
            )
        ).one()
        reports = (
            await self.c.execute(
                sa.select(sa.func.count()).select_from(r).join(held, held.c.id == r.c.patrol_shift_id)
            )
        ).scalar_one()
        minutes = sa.func.sum(s.c.minutes_worked).label("minutes")
        top = await self.c.execute(
            sa.select(s.c.user_id, u.c.display_name, minutes)
            .join(held, held.c.id == s.c.shift_id)
            .join(u, u.c.id == s.c.user_id)
            .where(confirmed, s.c.minutes_worked > 0)
            .group_by(s.c.user_id, u.c.display_name)
            .order_by(minutes.desc(), s.c.user_id)
            .limit(limit)
        )
        return PatrolStats(
            shifts=int(shifts),
            places=int(places),
            confirmed=int(counts[0]),
            no_shows=int(counts[1]),
            flagged=int(counts[2]),
            minutes=int(counts[3]),
            reports=int(reports),
            top=[VolunteerMinutes(row.user_id, row.display_name, int(row.minutes)) for row in top],
        )
