"""Redemptions of the rewards catalogue, reward stock and monthly honours.

Also the time bank's read-only queries over other tables: finding a person to
award, a person's rank on a leaderboard, the patrol minutes honours are
decided by, and the rows of the CSV exports.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from storage import schema as t
from storage.models import AwardEntry, Honour, LedgerExportRow, PatrolHoursRow, Redemption, User
from storage.rows import Repo, all_models, to_model

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"


def _like_pattern(fragment: str) -> str:
    """A LIKE pattern matching `fragment` anywhere, with its own % and _ taken literally."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class RewardRepo(Repo):
    # -- redemptions ------------------------------------------------------------

    async def request(self, user_id: int, reward_key: str, cost: int, now: datetime) -> Redemption | None:
        """A new pending redemption; None if this person already waits for this reward.

        The partial unique index decides, so a double click (even two at once)
        asks once: on PostgreSQL the twin waits for the first to commit and then inserts nothing.
        """
        r = t.redemptions
        statement = (
            self._insert(r)
            .values(user_id=user_id, reward_key=reward_key, cost=cost, state=PENDING, created_at=now)
            .on_conflict_do_nothing()
            .returning(*r.c)
        )
        return to_model(Redemption, (await self.c.execute(statement)).first())

    async def get(self, redemption_id: int) -> Redemption | None:
        row = (
            await self.c.execute(sa.select(t.redemptions).where(t.redemptions.c.id == redemption_id))
        ).first()
        return to_model(Redemption, row)

    async def pending(self, limit: int = 10) -> list[Redemption]:
        """Redemptions waiting for a decision, oldest first."""
        r = t.redemptions.c
        rows = await self.c.execute(
            sa.select(t.redemptions).where(r.state == PENDING).order_by(r.created_at, r.id).limit(limit)
        )
        return all_models(Redemption, rows)

    async def count_pending(self) -> int:
        r = t.redemptions.c
        query = sa.select(sa.func.count()).select_from(t.redemptions).where(r.state == PENDING)
        return int((await self.c.execute(query)).scalar_one())

    async def of_user(self, user_id: int, states: tuple[str, ...], limit: int = 10) -> list[Redemption]:
        """This person's redemptions in these states, newest first."""
        r = t.redemptions.c
        rows = await self.c.execute(
            sa.select(t.redemptions)
            .where(r.user_id == user_id, r.state.in_(states))
            .order_by(r.id.desc())
            .limit(limit)
        )
        return all_models(Redemption, rows)

    async def decide(
        self,
        redemption_id: int,
        state: str,
        # None: withdrawn by the bot (the requester was erased), not decided by an officer.
        actor_id: int | None,
        now: datetime,
        *,
        pickup_code: str | None = None,
        reason: str | None = None,
    ) -> bool:
        """Approve or reject, only while still pending: a second click (or officer) loses harmlessly."""
        r = t.redemptions.c
        result = await self.c.execute(
            t.redemptions.update()
            .where(r.id == redemption_id, r.state == PENDING)
            .values(state=state, decided_by=actor_id, decided_at=now, pickup_code=pickup_code, reason=reason)
        )
        return result.rowcount == 1

    async def pickup_code_taken(self, code: str) -> bool:
        query = sa.select(t.redemptions.c.id).where(t.redemptions.c.pickup_code == code)
        return (await self.c.execute(query)).first() is not None

    # -- stock ------------------------------------------------------------------

    async def issued(self) -> dict[str, int]:
        """How many of each reward have been handed out."""
        rows = await self.c.execute(sa.select(t.reward_stock.c.reward_key, t.reward_stock.c.issued))
        return {row.reward_key: int(row.issued) for row in rows}

    async def take_stock(self, reward_key: str, stock: int | None) -> bool:
        """Hand out one more of this reward if fewer than `stock` went (None: no limit); False if none left.

        The check is part of the UPDATE, so two approvals of the last item
        cannot both succeed: the second waits for the first's row lock and then finds none left.
        """
        s = t.reward_stock
        await self.c.execute(self._insert(s).values(reward_key=reward_key, issued=0).on_conflict_do_nothing())
        statement = s.update().where(s.c.reward_key == reward_key).values(issued=s.c.issued + 1)
        if stock is not None:
            statement = statement.where(s.c.issued < stock)
        return (await self.c.execute(statement)).rowcount == 1

    # -- people and standings ---------------------------------------------------

    async def find_people(self, fragment: str, limit: int) -> list[User]:
        """Onboarded people whose name contains `fragment` (case-insensitive), by name."""
        u = t.users.c
        rows = await self.c.execute(
            sa.select(t.users)
            .where(u.onboarded_at.is_not(None), u.display_name.ilike(_like_pattern(fragment), escape="\\"))
            .order_by(u.display_name, u.id)
            .limit(limit)
        )
        return all_models(User, rows)

    async def standing(
        self, user_id: int, period: str, grid_key: str | None = None
    ) -> tuple[int, int] | None:
        """(rank, points) of this person on the board of `period` (of one grid), or None if not on it.

        Ranked the way LedgerRepo.leaderboard lists: most points first, then
        the lower user id; people who opted out are not counted.
        """
        p, u = t.point_earnings.c, t.users.c
        own = (
            await self.c.execute(
                sa.select(p.points, p.grid_key).where(p.user_id == user_id, p.period == period)
            )
        ).first()
        if own is None or own.points <= 0 or (grid_key is not None and own.grid_key != grid_key):
            return None
        ahead = (
            sa.select(sa.func.count())
            .select_from(t.point_earnings.join(t.users, u.id == p.user_id))
            .where(
                p.period == period,
                sa.not_(u.leaderboard_opt_out),
                sa.or_(p.points > own.points, sa.and_(p.points == own.points, p.user_id < user_id)),
            )
        )
        if grid_key is not None:
            ahead = ahead.where(p.grid_key == grid_key)
        return int((await self.c.execute(ahead)).scalar_one()) + 1, int(own.points)

    # -- honours ----------------------------------------------------------------

    async def patrol_leaders(self, start: datetime, end: datetime, limit: int) -> list[tuple[int, int]]:
        """(user id, minutes) of who patrolled most on shifts starting in [start, end); opted-out left out."""
        if limit <= 0:
            return []
        s, p, u = t.patrol_signups.c, t.patrol_shifts.c, t.users.c
        minutes = sa.func.sum(s.minutes_worked).label("minutes")
        rows = await self.c.execute(
            sa.select(s.user_id, minutes)
            .select_from(
                t.patrol_signups.join(t.patrol_shifts, p.id == s.shift_id).join(t.users, u.id == s.user_id)
            )
            .where(
                p.starts_at >= start,
                p.starts_at < end,
                p.state != "cancelled",
                s.minutes_worked > 0,
                sa.not_(u.leaderboard_opt_out),
            )
            .group_by(s.user_id)
            .order_by(minutes.desc(), s.user_id)
            .limit(limit)
        )
        return [(int(row.user_id), int(row.minutes)) for row in rows]

    async def add_honours(
        self, period: str, kind: str, winners: list[tuple[int, int]], now: datetime
    ) -> list[Honour]:
        """Record the winners (user id, score) in rank order; those recorded before are kept, not doubled."""
        added: list[Honour] = []
        for rank, (user_id, score) in enumerate(winners, start=1):
            statement = (
                self._insert(t.honours)
                .values(period=period, kind=kind, rank=rank, user_id=user_id, score=score, created_at=now)
                .on_conflict_do_nothing()
                .returning(*t.honours.c)
            )
            honour = to_model(Honour, (await self.c.execute(statement)).first())
            if honour is not None:
                added.append(honour)
        return added

    async def honours(self, period: str) -> list[Honour]:
        h = t.honours.c
        rows = await self.c.execute(sa.select(t.honours).where(h.period == period).order_by(h.kind, h.rank))
        return all_models(Honour, rows)

    # -- corrections ------------------------------------------------------------

    async def award_entry(self, entry_id: int) -> AwardEntry | None:
        """A credit into a person's account, as a revocation needs it; None if there is no such entry."""
        e, a = t.ledger_entries, t.point_accounts
        reversal = t.ledger_entries.alias("reversal")
        row = (
            await self.c.execute(
                sa.select(
                    e.c.id,
                    a.c.user_id,
                    e.c.amount,
                    e.c.source_key,
                    e.c.reason_params,
                    e.c.created_at,
                    sa.exists().where(reversal.c.reverses_id == e.c.id).label("reversed"),
                )
                .join(a, a.c.id == e.c.credit_account_id)
                .where(e.c.id == entry_id, a.c.user_id.is_not(None))
            )
        ).first()
        if row is None:
            return None
        # SQLite answers EXISTS with 0 or 1.
        return AwardEntry(**{**row._mapping, "reversed": bool(row.reversed)})

    # -- exports ----------------------------------------------------------------

    async def ledger_between(self, start: datetime, end: datetime) -> list[LedgerExportRow]:
        """Every ledger entry made in [start, end), oldest first, with its person and actor."""
        e = t.ledger_entries.c
        debit, credit = t.point_accounts.alias("debit"), t.point_accounts.alias("credit")
        person, actor = t.users.alias("person"), t.users.alias("actor")
        # Only system accounts lack an owner, and no movement is between two of them.
        person_id = sa.func.coalesce(credit.c.user_id, debit.c.user_id)
        rows = await self.c.execute(
            sa.select(
                e.id,
                e.created_at,
                person_id.label("person_id"),
                person.c.display_name.label("person_name"),
                debit.c.kind.label("debit_kind"),
                credit.c.kind.label("credit_kind"),
                e.amount,
                e.reason_key,
                e.reason_params,
                e.source_key,
                e.actor_id,
                actor.c.display_name.label("actor_name"),
            )
            .select_from(
                t.ledger_entries.join(debit, debit.c.id == e.debit_account_id)
                .join(credit, credit.c.id == e.credit_account_id)
                .outerjoin(person, person.c.id == person_id)
                .outerjoin(actor, actor.c.id == e.actor_id)
            )
            .where(e.created_at >= start, e.created_at < end)
            .order_by(e.id)
        )
        return all_models(LedgerExportRow, rows)

    async def patrol_hours_between(self, start: datetime, end: datetime) -> list[PatrolHoursRow]:
        """Everyone with a place on a shift starting in [start, end) (not cancelled), by shift time."""
        s, p, u = t.patrol_signups.c, t.patrol_shifts.c, t.users.c
        rows = await self.c.execute(
            sa.select(
                p.id.label("shift_id"),
                p.area,
                p.starts_at,
                p.ends_at,
                s.user_id,
                u.display_name.label("person_name"),
                s.checked_in_at,
                s.checkin_method,
                s.checked_out_at,
                s.checkout_method,
                s.minutes_worked,
                s.flagged,
                s.no_show,
            )
            .select_from(
                t.patrol_signups.join(t.patrol_shifts, p.id == s.shift_id).join(t.users, u.id == s.user_id)
            )
            .where(p.starts_at >= start, p.starts_at < end, p.state != "cancelled", s.state == "confirmed")
            .order_by(p.starts_at, p.id, s.id)
        )
        return all_models(PatrolHoursRow, rows)
