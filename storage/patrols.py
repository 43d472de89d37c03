"""Patrol shifts, series, sign-ups, the waiting list and requests to volunteer.

The invariants that belong to the data live here: a series generates each of
its shifts once (unique series and start), a person has one sign-up row per
shift, and every state change is conditional on the state it expects, so a
second click or a racing job changes nothing and says so.

Sign-ups that take a place must hold the shift's row lock (`shift(..., lock=True)`)
while they count the places taken; on SQLite every write transaction is
serialised already (BEGIN IMMEDIATE), on PostgreSQL the row lock does it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage import schema as t
from storage.models import PatrolSeries, PatrolShift, PatrolSignup, VolunteerRequest
from storage.rows import Repo, all_models, to_model

SCHEDULED = "scheduled"
CANCELLED = "cancelled"
CONFIRMED = "confirmed"
WAITING = "waiting"
# A sign-up that holds a place or waits for one.
ACTIVE = (CONFIRMED, WAITING)


class PatrolRepo(Repo):
    # -- series ---------------------------------------------------------------

    async def create_series(self, now: datetime, **values: Any) -> PatrolSeries:
        series_id = (
            await self.c.execute(
                t.patrol_series.insert().values(created_at=now, **values).returning(t.patrol_series.c.id)
            )
        ).scalar_one()
        series = await self.series(series_id)
        assert series is not None
        return series

    async def series(self, series_id: int) -> PatrolSeries | None:
        row = (
            await self.c.execute(sa.select(t.patrol_series).where(t.patrol_series.c.id == series_id))
        ).first()
        return to_model(PatrolSeries, row)

    async def active_series(self) -> list[PatrolSeries]:
        rows = await self.c.execute(
            sa.select(t.patrol_series).where(t.patrol_series.c.active).order_by(t.patrol_series.c.id)
        )
        return all_models(PatrolSeries, rows)

    async def mark_generated(self, series_id: int, until: str) -> None:
        """Note that shifts exist up to the local date `until` (ISO); it never moves back."""
        s = t.patrol_series.c
        await self.c.execute(
            t.patrol_series.update()
            .where(s.id == series_id, sa.or_(s.generated_until.is_(None), s.generated_until < until))
            .values(generated_until=until)
        )

    async def stop_series(self, series_id: int) -> bool:
        """Stop generating; False if it was stopped already."""
        result = await self.c.execute(
            t.patrol_series.update()
            .where(t.patrol_series.c.id == series_id, t.patrol_series.c.active)
            .values(active=False)
        )
        return result.rowcount == 1

    # -- shifts ---------------------------------------------------------------

    async def add_shift(self, now: datetime, **values: Any) -> PatrolShift | None:
        """Store a shift; None if its series has a shift at that start already."""
        stmt = (
            self._insert(t.patrol_shifts)
            .values(created_at=now, updated_at=now, **values)
            .on_conflict_do_nothing(index_elements=["series_id", "starts_at"])
            .returning(t.patrol_shifts.c.id)
        )
        shift_id = (await self.c.execute(stmt)).scalar()
        if shift_id is None:
            return None
        return await self.shift(shift_id)

    async def shift(self, shift_id: int, *, lock: bool = False) -> PatrolShift | None:
        """The shift; with `lock`, held until the transaction ends so its places can be counted safely."""
        query = sa.select(t.patrol_shifts).where(t.patrol_shifts.c.id == shift_id)
        if lock:
            query = query.with_for_update()
        return to_model(PatrolShift, (await self.c.execute(query)).first())

    async def shifts(self, shift_ids: Sequence[int]) -> dict[int, PatrolShift]:
        rows = await self.c.execute(sa.select(t.patrol_shifts).where(t.patrol_shifts.c.id.in_(shift_ids)))
        return {shift.id: shift for shift in all_models(PatrolShift, rows)}

    async def upcoming(self, after: datetime, before: datetime, limit: int = 10) -> list[PatrolShift]:
        """Scheduled shifts starting in (after, before), soonest first."""
        s = t.patrol_shifts.c
        rows = await self.c.execute(
            sa.select(t.patrol_shifts)
            .where(s.state == SCHEDULED, s.starts_at > after, s.starts_at < before)
            .order_by(s.starts_at, s.id)
            .limit(limit)
        )
        return all_models(PatrolShift, rows)

    async def future_of_series(self, series_id: int, after: datetime) -> list[PatrolShift]:
        s = t.patrol_shifts.c
        rows = await self.c.execute(
            sa.select(t.patrol_shifts)
            .where(s.series_id == series_id, s.state == SCHEDULED, s.starts_at > after)
            .order_by(s.starts_at, s.id)
        )
        return all_models(PatrolShift, rows)

    async def series_shift_at(self, series_id: int, starts_at: datetime) -> PatrolShift | None:
        s = t.patrol_shifts.c
        row = (
            await self.c.execute(
                sa.select(t.patrol_shifts).where(s.series_id == series_id, s.starts_at == starts_at)
            )
        ).first()
        return to_model(PatrolShift, row)

    async def cancel_shift(self, shift_id: int, now: datetime) -> bool:
        """Cancel a scheduled shift; False if it was cancelled already."""
        s = t.patrol_shifts.c
        result = await self.c.execute(
            t.patrol_shifts.update()
            .where(s.id == shift_id, s.state == SCHEDULED)
            .values(state=CANCELLED, updated_at=now)
        )
        return result.rowcount == 1

    async def update_shift(self, shift_id: int, now: datetime, **values: Any) -> PatrolShift:
        await self.c.execute(
            t.patrol_shifts.update().where(t.patrol_shifts.c.id == shift_id).values(updated_at=now, **values)
        )
        shift = await self.shift(shift_id)
        assert shift is not None
        return shift

    # -- sign-ups -------------------------------------------------------------

    async def signup(self, shift_id: int, user_id: int) -> PatrolSignup | None:
        s = t.patrol_signups.c
        row = (
            await self.c.execute(
                sa.select(t.patrol_signups).where(s.shift_id == shift_id, s.user_id == user_id)
            )
        ).first()
        return to_model(PatrolSignup, row)

    async def put_signup(self, shift_id: int, user_id: int, state: str, now: datetime) -> PatrolSignup:
        """Sign up (or back up after withdrawing): a comeback joins the end of the waiting list."""
        fresh = {"state": state, "created_at": now, "updated_at": now}
        stmt = self._insert(t.patrol_signups).values(shift_id=shift_id, user_id=user_id, **fresh)
        stmt = stmt.on_conflict_do_update(
            index_elements=["shift_id", "user_id"],
            set_=fresh,
            where=t.patrol_signups.c.state == CANCELLED,
        )
        await self.c.execute(stmt)
        signup = await self.signup(shift_id, user_id)
        assert signup is not None
        return signup

    async def move_signup(self, signup_id: int, from_state: str, to_state: str, now: datetime) -> bool:
        """Change a sign-up's state only if it is still `from_state`."""
        s = t.patrol_signups.c
        result = await self.c.execute(
            t.patrol_signups.update()
            .where(s.id == signup_id, s.state == from_state)
            .values(state=to_state, updated_at=now)
        )
        return result.rowcount == 1

    async def signups(self, shift_id: int, states: Sequence[str] = ACTIVE) -> list[PatrolSignup]:
        """Sign-ups of a shift in the given states, in the order they were made (the waiting-list order)."""
        s = t.patrol_signups.c
        rows = await self.c.execute(
            sa.select(t.patrol_signups)
            .where(s.shift_id == shift_id, s.state.in_(states))
            .order_by(s.created_at, s.id)
        )
        return all_models(PatrolSignup, rows)

    async def taken(self, shift_ids: Sequence[int]) -> dict[int, int]:
        """Confirmed places per shift (shifts nobody signed up for are left out)."""
        s = t.patrol_signups.c
        rows = await self.c.execute(
            sa.select(s.shift_id, sa.func.count())
            .where(s.shift_id.in_(shift_ids), s.state == CONFIRMED)
            .group_by(s.shift_id)
        )
        return {int(shift_id): int(count) for shift_id, count in rows}

    async def waiting_position(self, signup: PatrolSignup) -> int:
        """1 for the first on the waiting list."""
        s = t.patrol_signups.c
        ahead = await self.c.execute(
            sa.select(sa.func.count())
            .select_from(t.patrol_signups)
            .where(
                s.shift_id == signup.shift_id,
                s.state == WAITING,
                sa.or_(
                    s.created_at < signup.created_at,
                    sa.and_(s.created_at == signup.created_at, s.id < signup.id),
                ),
            )
        )
        return int(ahead.scalar_one()) + 1

    async def of_user(
        self, user_id: int, after: datetime, limit: int = 20
    ) -> list[tuple[PatrolSignup, PatrolShift]]:
        """The person's sign-ups (confirmed or waiting) on scheduled shifts not over by `after`."""
        s, sh = t.patrol_signups.c, t.patrol_shifts.c
        rows = await self.c.execute(
            sa.select(t.patrol_signups)
            .join(t.patrol_shifts, sh.id == s.shift_id)
            .where(s.user_id == user_id, s.state.in_(ACTIVE), sh.state == SCHEDULED, sh.ends_at > after)
            .order_by(sh.starts_at, sh.id)
            .limit(limit)
        )
        signups = all_models(PatrolSignup, rows)
        shifts = await self.shifts([signup.shift_id for signup in signups]) if signups else {}
        return [(signup, shifts[signup.shift_id]) for signup in signups]

    async def overlapping(
        self, user_id: int, starts_at: datetime, ends_at: datetime, other_than: int
    ) -> PatrolShift | None:
        """A scheduled shift other than `other_than` that the person holds a place on and that overlaps."""
        s, sh = t.patrol_signups.c, t.patrol_shifts.c
        row = (
            await self.c.execute(
                sa.select(t.patrol_shifts)
                .join(t.patrol_signups, s.shift_id == sh.id)
                .where(
                    s.user_id == user_id,
                    s.state == CONFIRMED,
                    sh.state == SCHEDULED,
                    sh.id != other_than,
                    sh.starts_at < ends_at,
                    sh.ends_at > starts_at,
                )
                .order_by(sh.starts_at)
                .limit(1)
            )
        ).first()
        return to_model(PatrolShift, row)

    async def no_shows(self, user_id: int, since: datetime | None) -> int:
        """No-shows on shifts that started after `since` (all of them when None)."""
        s, sh = t.patrol_signups.c, t.patrol_shifts.c
        query = (
            sa.select(sa.func.count())
            .select_from(t.patrol_signups)
            .join(t.patrol_shifts, sh.id == s.shift_id)
            .where(s.user_id == user_id, s.no_show)
        )
        if since is not None:
            query = query.where(sh.starts_at > since)
        return int((await self.c.execute(query)).scalar_one())

    async def banned(self, threshold: int, limit: int) -> list[tuple[int, int]]:
        """(user id, no-shows) of people with at least `threshold` no-shows since they were last
        forgiven: most no-shows first."""
        s, sh, u = t.patrol_signups.c, t.patrol_shifts.c, t.users.c
        count = sa.func.count().label("no_shows")
        rows = await self.c.execute(
            sa.select(s.user_id, count)
            .select_from(t.patrol_signups)
            .join(t.patrol_shifts, sh.id == s.shift_id)
            .join(t.users, u.id == s.user_id)
            .where(s.no_show, sa.or_(u.no_shows_forgiven_at.is_(None), sh.starts_at > u.no_shows_forgiven_at))
            .group_by(s.user_id)
            .having(count >= threshold)
            .order_by(count.desc(), s.user_id)
            .limit(limit)
        )
        return [(row.user_id, row.no_shows) for row in rows]

    # -- becoming a volunteer -------------------------------------------------

    async def request_volunteer(self, user_id: int, now: datetime) -> bool:
        """Ask to volunteer; False if a request is waiting or was approved. A rejected one may ask again."""
        fresh = {"requested_at": now, "decided_by": None, "decided_at": None, "approved": None}
        stmt = self._insert(t.volunteer_requests).values(user_id=user_id, **fresh)
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id"],
            set_=fresh,
            where=t.volunteer_requests.c.approved.is_(False),
        )
        return (await self.c.execute(stmt)).rowcount == 1

    async def volunteer_request(self, user_id: int) -> VolunteerRequest | None:
        row = (
            await self.c.execute(
                sa.select(t.volunteer_requests).where(t.volunteer_requests.c.user_id == user_id)
            )
        ).first()
        return to_model(VolunteerRequest, row)

    async def pending_volunteers(self, limit: int) -> tuple[list[VolunteerRequest], int]:
        """The oldest requests nobody decided yet, and how many there are in all."""
        v = t.volunteer_requests.c
        undecided = v.decided_at.is_(None)
        rows = await self.c.execute(
            sa.select(t.volunteer_requests).where(undecided).order_by(v.requested_at, v.user_id).limit(limit)
        )
        count = sa.select(sa.func.count()).select_from(t.volunteer_requests).where(undecided)
        total = (await self.c.execute(count)).scalar_one()
        return all_models(VolunteerRequest, rows), int(total)

    async def decide_volunteer(self, user_id: int, approved: bool, decided_by: int, now: datetime) -> bool:
        """Record the decision; False if someone decided first."""
        v = t.volunteer_requests.c
        result = await self.c.execute(
            t.volunteer_requests.update()
            .where(v.user_id == user_id, v.decided_at.is_(None))
            .values(approved=approved, decided_by=decided_by, decided_at=now)
        )
        return result.rowcount == 1
