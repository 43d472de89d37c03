"""The volunteer time bank (公益时间银行) as a double-entry ledger: accounts, periods, errors.

Every movement of points is one row of ``ledger_entries`` that takes `amount`
from a debit account and gives it to a credit account, so the balances of all
accounts always sum to zero. The community account issues points: it is the
only account allowed below zero, and minus its balance is the number of points
in circulation. Rows are never updated or deleted; a correction is a new
entry with the two accounts swapped (a reversal).

Accounts:

- ``community``: one, no owner; debited by every award, credited by reversals.
- ``user``: one open account per person; what they may redeem.
- ``reserved``: one open account per person; points held by redemptions that
  wait for approval, so they can neither be spent twice nor disappear.
- ``spent``: one, no owner; where approved redemptions end.

The balance stored with each account is a cache of the sum of its entries,
kept in the same transaction as each entry: a CHECK makes "no account but the
community's below zero" a database guarantee, and ``/points`` reads one row.
``LedgerRepo.discrepancies`` recomputes everything from the entries.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam

from storage import schema as t
from storage.db import DbConnection
from storage.models import LedgerEntry, PointsStatement, Standing
from storage.rows import Insert, Repo, all_models

# The kinds of account (described above) are declared with their table, whose CHECKs enforce them.
from storage.schema import COMMUNITY, RESERVED, SPENT, SYSTEM_KINDS, USER

# Earnings (net points a person received from the community) are kept per
# month of the community's calendar and for all time, under this period name.
ALL_TIME = "all"

# Reasons the storage layer writes on its own; callers give the others.
REASON_REDEMPTION_APPROVED = "points.reason.redemption_approved"
REASON_REDEMPTION_REJECTED = "points.reason.redemption_rejected"
REASON_ACCOUNTS_MERGED = "points.reason.accounts_merged"
REASON_REDEMPTION_MERGED = "points.reason.redemption_merged"


def month_of(moment: datetime, tz: tzinfo) -> str:
    """The leaderboard period ("2026-05") `moment` falls in, on the community's calendar."""
    return moment.astimezone(tz).strftime("%Y-%m")


def redemption_ref(redemption_id: int) -> str:
    """What the ledger calls a redemption's held points and their settlement."""
    return f"redemption:{redemption_id}"


def reserve_key(ref: str) -> str:
    return f"redeem:{ref}:reserve"


def settle_key(ref: str) -> str:
    # Approval and rejection share one key: a redemption is settled once, one way.
    return f"redeem:{ref}:settle"


def reversal_key(entry_id: int) -> str:
    return f"reverse:{entry_id}"


class LedgerError(Exception):
    """A movement the ledger refuses."""


class InsufficientPoints(LedgerError):
    """The debit account holds fewer points than the movement takes."""

    def __init__(self, account_id: int, amount: int) -> None:
        super().__init__(f"account {account_id} cannot give {amount} points")
        self.account_id = account_id
        self.amount = amount


def _owner_grid() -> sa.Label[Any]:
    """The grid of the account's owner, as the leaderboard's copy of it (see schema.point_earnings)."""
    return (
        sa.select(t.users.c.grid_key)
        .where(t.users.c.id == t.point_accounts.c.user_id)
        .scalar_subquery()
        .label("grid_key")
    )


def _take() -> sa.Update:
    """Debit `amount` from `account` if it holds that much (the community always does)."""
    a = t.point_accounts.c
    amount = bindparam("amount", type_=sa.Integer)
    return (
        t.point_accounts.update()
        .where(a.id == bindparam("account"), sa.or_(a.balance >= amount, a.kind == COMMUNITY))
        .values(balance=a.balance - amount)
        .returning(a.kind, a.user_id, _owner_grid())
    )


def _give() -> sa.Update:
    """Credit `amount` to `account` unless it was closed by a merge."""
    a = t.point_accounts.c
    return (
        t.point_accounts.update()
        .where(a.id == bindparam("account"), a.merged_into.is_(None))
        .values(balance=a.balance + bindparam("amount", type_=sa.Integer))
        .returning(a.kind, a.user_id, _owner_grid())
    )


def _top_earners() -> sa.Select[Any]:
    """Top earners of `period`, best first, `limit` of them, without those who opted out.

    Walks ix_point_earnings_period_points (or _period_grid_points) from the top down and
    stops after `limit` rows that qualify, however many people earned something.
    """
    p, u = t.point_earnings.c, t.users.c
    return (
        sa.select(p.user_id, p.points)
        .join(t.users, u.id == p.user_id)
        .where(p.period == bindparam("period"), p.points > 0, sa.not_(u.leaderboard_opt_out))
        .order_by(p.points.desc(), p.user_id)
        .limit(bindparam("limit"))
    )


def _top_earners_of_grid() -> sa.Select[Any]:
    return _top_earners().where(t.point_earnings.c.grid_key == bindparam("grid_key"))


class LedgerRepo(Repo):
    """The time bank: points move only by appending balanced entries.

    The statements of /points, the leaderboards and a movement are prebuilt: built on each
    call, bench/ledger.py's /points took 16.3 ms (p50) instead of 0.7 ms, a credit 22.7 ms
    instead of 3.0 ms, on the shared host of 2026-12-07.

    `tz` is the community's time zone: it decides which month an entry's points
    count towards on the monthly leaderboard.
    """

    def __init__(self, connection: DbConnection, tz: tzinfo = UTC) -> None:
        super().__init__(connection)
        self.tz = tz

    def month(self, now: datetime) -> str:
        """The period of the monthly leaderboard `now` falls in."""
        return month_of(now, self.tz)

    # -- accounts -------------------------------------------------------------

    async def _open_account(self, kind: str, user_id: int | None) -> int | None:
        return (await self._accounts(user_id)).get(kind)

    async def _accounts(self, user_id: int | None) -> dict[str, int]:
        """Ids of the system accounts and of this person's open accounts, by kind: one query."""

        def accounts() -> sa.CompoundSelect[Any]:
            a = t.point_accounts.c
            return sa.union_all(
                sa.select(a.id, a.kind).where(a.user_id.is_(None)),
                sa.select(a.id, a.kind).where(a.user_id == bindparam("user_id"), a.merged_into.is_(None)),
            )

        rows = await self.c.execute(self.prebuilt(accounts), {"user_id": user_id})
        return {row.kind: row.id for row in rows}

    async def account(self, kind: str, user_id: int | None = None) -> int:
        """The open account of this kind (of this person), created on first use."""
        if (kind in SYSTEM_KINDS) != (user_id is None):
            raise ValueError(f"{kind} accounts {'have no owner' if user_id is not None else 'need an owner'}")
        return (await self._ensure(user_id, kind))[kind]

    async def _ensure(self, user_id: int | None, *kinds: str) -> dict[str, int]:
        """Ids of the accounts of these kinds (system ones, or this person's), creating what is missing."""
        if user_id is None and not set(kinds) <= set(SYSTEM_KINDS):
            raise ValueError("personal accounts need an owner")
        accounts = await self._accounts(user_id)
        missing = [kind for kind in kinds if kind not in accounts]
        for kind in missing:
            owner = None if kind in SYSTEM_KINDS else user_id
            # A concurrent first use creates the same account: the unique
            # indexes let one insert win and the other do nothing.
            await self.c.execute(
                self._insert(t.point_accounts).values(kind=kind, user_id=owner).on_conflict_do_nothing()
            )
        return await self._accounts(user_id) if missing else accounts

    async def _live(self, account_id: int) -> int:
        """The account that took over `account_id` when its owner was merged into another person."""
        while True:
            merged_into = (
                await self.c.execute(
                    sa.select(t.point_accounts.c.merged_into).where(t.point_accounts.c.id == account_id)
                )
            ).scalar()
            if merged_into is None:
                return account_id
            account_id = merged_into

    # -- movements ------------------------------------------------------------

    async def post(
        self,
        debit: int,
        credit: int,
        amount: int,
        source_key: str,
        reason_key: str,
        reason_params: dict[str, Any],
        actor_id: int | None,
        now: datetime,
        *,
        reverses_id: int | None = None,
        period: str | None = None,
    ) -> int | None:
        """Move `amount` points from `debit` to `credit`; the new entry's id.

        None if an entry for `source_key` exists already: the event was counted
        before (a retry, a second click, a concurrent worker). Raises
        InsufficientPoints if `debit` holds fewer points, leaving the
        surrounding transaction as it was.
        """
        if amount <= 0:
            raise ValueError("a movement moves a positive number of points")
        if debit == credit:
            raise ValueError("a movement needs two different accounts")
        period = period or self.month(now)
        # A savepoint, so a refused movement undoes its own entry and nothing else.
        async with self.c.begin_nested():
            # The unique source_key (and reverses_id) decide: on PostgreSQL a concurrent
            # twin waits for the first to commit and then inserts nothing.
            insert_entry = self.prebuilt(
                lambda insert: (
                    insert(t.ledger_entries).on_conflict_do_nothing().returning(t.ledger_entries.c.id)
                )
            )
            entry = {
                "debit_account_id": debit,
                "credit_account_id": credit,
                "amount": amount,
                "source_key": source_key,
                "reverses_id": reverses_id,
                "reason_key": reason_key,
                "reason_params": reason_params,
                "actor_id": actor_id,
                "period": period,
                "created_at": now,
            }
            entry_id = (await self.c.execute(insert_entry, entry)).scalar()
            if entry_id is None:
                return None
            touched: dict[int, sa.Row[Any]] = {}
            # Rows are locked in id order, so two opposite movements cannot deadlock.
            for account_id in sorted((debit, credit)):
                # The debit's balance is checked by its UPDATE (and the table's
                # CHECK), never by an earlier read another transaction could overtake.
                move = self.prebuilt(_take) if account_id == debit else self.prebuilt(_give)
                row = (await self.c.execute(move, {"account": account_id, "amount": amount})).first()
                if row is None and account_id == debit:
                    raise InsufficientPoints(debit, amount)
                if row is None:
                    raise LedgerError(f"account {credit} is closed or does not exist")
                touched[account_id] = row
            await self._count_earnings(touched[debit], touched[credit], amount, period)
        return int(entry_id)

    async def _count_earnings(
        self, debit: sa.Row[Any], credit: sa.Row[Any], amount: int, period: str
    ) -> None:
        if debit.kind == COMMUNITY and credit.kind == USER:
            person, points = credit, amount
        elif debit.kind == USER and credit.kind == COMMUNITY:
            person, points = debit, -amount
        else:
            return

        def add_earnings(insert: Insert) -> Any:
            p = t.point_earnings
            stmt = insert(p)
            return stmt.on_conflict_do_update(
                index_elements=["user_id", "period"],
                set_={"points": p.c.points + stmt.excluded.points, "grid_key": stmt.excluded.grid_key},
            )

        await self.c.execute(
            self.prebuilt(add_earnings),
            [
                {"user_id": person.user_id, "period": key, "points": points, "grid_key": person.grid_key}
                for key in (period, ALL_TIME)
            ],
        )

    async def credit_user(
        self,
        user_id: int,
        amount: int,
        source_key: str,
        reason_key: str,
        reason_params: dict[str, Any],
        actor_id: int | None,
        now: datetime,
    ) -> int | None:
        """Award points from the community; None if `source_key` was awarded before."""
        accounts = await self._ensure(user_id, COMMUNITY, USER)
        return await self.post(
            accounts[COMMUNITY],
            accounts[USER],
            amount,
            source_key,
            reason_key,
            reason_params,
            actor_id,
            now,
        )

    async def reverse(
        self,
        entry_id: int,
        reason_key: str,
        reason_params: dict[str, Any],
        actor_id: int | None,
        now: datetime,
    ) -> int | None:
        """Undo an entry with its mirror image; None if it was reversed already.

        The points count towards the original's month, so a correction takes
        them off the leaderboard they were wrongly put on. Redemptions are not
        reversed but settled (spend/release), and a reversal is final: award
        the points again instead of reversing it.
        """
        e, d, c = t.ledger_entries, t.point_accounts.alias("d"), t.point_accounts.alias("c")
        original = (
            await self.c.execute(
                sa.select(
                    e.c.debit_account_id,
                    e.c.credit_account_id,
                    e.c.amount,
                    e.c.reverses_id,
                    e.c.period,
                    d.c.kind.label("debit_kind"),
                    c.c.kind.label("credit_kind"),
                )
                .join(d, d.c.id == e.c.debit_account_id)
                .join(c, c.c.id == e.c.credit_account_id)
                .where(e.c.id == entry_id)
            )
        ).first()
        if original is None:
            raise LookupError(f"no ledger entry {entry_id}")
        if original.reverses_id is not None:
            raise LedgerError("a reversal cannot be reversed")
        if RESERVED in (original.debit_kind, original.credit_kind):
            raise LedgerError("redemptions are settled with spend() or release()")
        return await self.post(
            await self._live(original.credit_account_id),
            await self._live(original.debit_account_id),
            original.amount,
            reversal_key(entry_id),
            reason_key,
            reason_params,
            actor_id,
            now,
            reverses_id=entry_id,
            period=original.period,
        )

    async def reserve(
        self,
        user_id: int,
        amount: int,
        ref: str,
        reason_key: str,
        reason_params: dict[str, Any],
        actor_id: int | None,
        now: datetime,
    ) -> int | None:
        """Hold points for redemption `ref` until it is approved or rejected; None if held already."""
        accounts = await self._ensure(user_id, USER, RESERVED)
        return await self.post(
            accounts[USER],
            accounts[RESERVED],
            amount,
            reserve_key(ref),
            reason_key,
            reason_params,
            actor_id,
            now,
        )

    async def spend(
        self,
        ref: str,
        actor_id: int | None,
        now: datetime,
        reason_key: str = REASON_REDEMPTION_APPROVED,
        reason_params: dict[str, Any] | None = None,
    ) -> int | None:
        """Approve redemption `ref`: its held points are spent. None if it was settled before.

        The entry's reason parameters default to the redemption's (what was redeemed).
        """
        return await self._settle(ref, SPENT, actor_id, now, reason_key, reason_params)

    async def release(
        self,
        ref: str,
        actor_id: int | None,
        now: datetime,
        reason_key: str = REASON_REDEMPTION_REJECTED,
        reason_params: dict[str, Any] | None = None,
    ) -> int | None:
        """Reject redemption `ref`: its held points go back. None if it was settled before.

        The entry's reason parameters default to the redemption's (what was redeemed).
        """
        return await self._settle(ref, USER, actor_id, now, reason_key, reason_params)

    async def _settle(
        self,
        ref: str,
        to_kind: str,
        actor_id: int | None,
        now: datetime,
        reason_key: str,
        reason_params: dict[str, Any] | None,
    ) -> int | None:
        e, a = t.ledger_entries, t.point_accounts
        held = (
            await self.c.execute(
                sa.select(e.c.amount, e.c.reason_params, a.c.user_id)
                .join(a, a.c.id == e.c.debit_account_id)
                .where(e.c.source_key == reserve_key(ref))
            )
        ).first()
        if held is None:
            raise LookupError(f"no points held for redemption {ref}")
        # The holder may have been merged into another person since: their open accounts.
        accounts = await self._ensure(held.user_id, RESERVED, to_kind)
        return await self.post(
            accounts[RESERVED],
            accounts[to_kind],
            held.amount,
            settle_key(ref),
            reason_key,
            held.reason_params if reason_params is None else reason_params,
            actor_id,
            now,
        )

    async def merge_users(self, keep: int, drop: int, now: datetime) -> None:
        """Give `drop`'s points and history to `keep` (linked accounts), before `drop` is removed."""
        a = t.point_accounts.c
        accounts = await self.c.execute(
            sa.select(a.id, a.kind, a.balance).where(a.user_id == drop, a.merged_into.is_(None))
        )
        for account in accounts.all():
            survivor = await self._open_account(account.kind, keep)
            if survivor is None:
                continue  # the account simply changes hands below
            if account.balance > 0:
                await self.post(
                    account.id,
                    survivor,
                    account.balance,
                    f"merge:{account.id}",
                    REASON_ACCOUNTS_MERGED,
                    {},
                    None,
                    now,
                )
            await self.c.execute(
                t.point_accounts.update().where(a.id == account.id).values(merged_into=survivor)
            )
        await self.c.execute(t.point_accounts.update().where(a.user_id == drop).values(user_id=keep))
        p = t.point_earnings
        earned = (await self.c.execute(sa.select(p.c.period, p.c.points).where(p.c.user_id == drop))).all()
        if earned:
            stmt = self._insert(p).values(
                [{"user_id": keep, "period": row.period, "points": row.points} for row in earned]
            )
            await self.c.execute(
                stmt.on_conflict_do_update(
                    index_elements=["user_id", "period"], set_={"points": p.c.points + stmt.excluded.points}
                )
            )
            await self.c.execute(p.delete().where(p.c.user_id == drop))
            await self.c.execute(
                p.update()
                .where(p.c.user_id == keep)
                .values(grid_key=sa.select(t.users.c.grid_key).where(t.users.c.id == keep).scalar_subquery())
            )
        await self.c.execute(
            t.ledger_entries.update().where(t.ledger_entries.c.actor_id == drop).values(actor_id=keep)
        )

    # -- reading --------------------------------------------------------------

    async def _amounts(self, user_id: int) -> dict[str, int]:
        """Balances of the open accounts of this person by kind, and all-time earnings: one query."""

        def amounts() -> sa.CompoundSelect[Any]:
            a, p = t.point_accounts.c, t.point_earnings.c
            return sa.union_all(
                sa.select(a.kind.label("name"), a.balance.label("amount")).where(
                    a.user_id == bindparam("user_id"), a.merged_into.is_(None)
                ),
                sa.select(sa.literal(ALL_TIME).label("name"), p.points.label("amount")).where(
                    p.user_id == bindparam("user_id"), p.period == ALL_TIME
                ),
            )

        rows = await self.c.execute(self.prebuilt(amounts), {"user_id": user_id})
        return {row.name: int(row.amount) for row in rows}

    async def balance(self, user_id: int) -> int:
        """Points this person can redeem now."""
        return (await self._amounts(user_id)).get(USER, 0)

    async def reserved(self, user_id: int) -> int:
        """Points held by this person's redemptions that wait for approval."""
        return (await self._amounts(user_id)).get(RESERVED, 0)

    async def lifetime(self, user_id: int) -> int:
        """Net points ever earned from the community (what tiers are based on)."""
        return (await self._amounts(user_id)).get(ALL_TIME, 0)

    async def recent(self, user_id: int, limit: int = 10) -> list[LedgerEntry]:
        """The newest entries into and out of this person's spendable account, newest first."""

        def recent() -> sa.Select[Any]:
            a, e = t.point_accounts.c, t.ledger_entries.c
            account = (
                sa.select(a.id)
                .where(a.user_id == bindparam("user_id"), a.kind == USER, a.merged_into.is_(None))
                .scalar_subquery()
            )

            def side(column: sa.ColumnElement[int], sign: int) -> sa.Subquery:
                # Each side walks its own index backwards: O(limit), however long the history.
                return (
                    sa.select(
                        e.id,
                        (e.amount * sign).label("amount"),
                        e.reason_key,
                        e.reason_params,
                        e.source_key,
                        e.actor_id,
                        e.reverses_id,
                        e.created_at,
                    )
                    .where(column == account)
                    .order_by(e.id.desc())
                    .limit(bindparam("limit"))
                    .subquery()
                )

            both = sa.union_all(
                sa.select(side(e.credit_account_id, 1)), sa.select(side(e.debit_account_id, -1))
            ).subquery()
            return sa.select(both).order_by(both.c.id.desc()).limit(bindparam("limit"))

        rows = await self.c.execute(self.prebuilt(recent), {"user_id": user_id, "limit": limit})
        return all_models(LedgerEntry, rows)

    async def statement(self, user_id: int, limit: int = 10) -> PointsStatement:
        """Everything /points shows, in two queries."""
        amounts = await self._amounts(user_id)
        return PointsStatement(
            balance=amounts.get(USER, 0),
            reserved=amounts.get(RESERVED, 0),
            lifetime=amounts.get(ALL_TIME, 0),
            recent=await self.recent(user_id, limit) if USER in amounts else [],
        )

    async def leaderboard(
        self, period: str = ALL_TIME, grid_key: str | None = None, limit: int = 10
    ) -> list[Standing]:
        """Who earned most in `period` (a month from `month()`, or all time), in the community or one grid.

        People who opted out are left out, not ranked as zero.
        """
        query = self.prebuilt(_top_earners if grid_key is None else _top_earners_of_grid)
        rows = await self.c.execute(query, {"period": period, "grid_key": grid_key, "limit": limit})
        return [Standing(user_id=row.user_id, points=row.points) for row in rows]

    # -- auditing -------------------------------------------------------------

    async def discrepancies(self) -> list[str]:
        """Everything the cached balances and earnings say that the entries do not."""
        e, a = t.ledger_entries.c, t.point_accounts.c
        problems: list[str] = []
        moves = sa.union_all(
            sa.select(e.credit_account_id.label("account_id"), e.amount.label("delta")),
            sa.select(e.debit_account_id.label("account_id"), (-e.amount).label("delta")),
        ).subquery()
        sums = await self.c.execute(
            sa.select(moves.c.account_id, sa.func.sum(moves.c.delta).label("total")).group_by(
                moves.c.account_id
            )
        )
        summed = {row.account_id: row.total for row in sums}
        total = 0
        for row in await self.c.execute(sa.select(a.id, a.kind, a.balance)):
            total += row.balance
            expected = int(summed.pop(row.id, 0))
            if row.balance != expected:
                problems.append(f"account {row.id}: balance {row.balance}, entries sum to {expected}")
            if row.balance < 0 and row.kind != COMMUNITY:
                problems.append(f"account {row.id} ({row.kind}) is overdrawn: {row.balance}")
        if summed:
            problems.append(f"entries for unknown accounts {sorted(summed)}")
        if total != 0:
            problems.append(f"balances sum to {total}, not 0")

        earned: dict[tuple[int, str], int] = {}
        d, c = t.point_accounts.alias("d"), t.point_accounts.alias("c")
        pairs = (
            (d.c.kind == COMMUNITY, c.c.kind == USER, c.c.user_id, 1),
            (d.c.kind == USER, c.c.kind == COMMUNITY, d.c.user_id, -1),
        )
        for debit_is, credit_is, owner, sign in pairs:
            rows = await self.c.execute(
                sa.select(owner.label("user_id"), e.period, sa.func.sum(e.amount).label("points"))
                .select_from(t.ledger_entries)
                .join(d, d.c.id == e.debit_account_id)
                .join(c, c.c.id == e.credit_account_id)
                .where(debit_is, credit_is)
                .group_by(owner, e.period)
            )
            for row in rows:
                for key in ((row.user_id, row.period), (row.user_id, ALL_TIME)):
                    earned[key] = earned.get(key, 0) + sign * int(row.points)
        p = t.point_earnings.c
        cached = {
            (row.user_id, row.period): row.points
            for row in await self.c.execute(sa.select(p.user_id, p.period, p.points))
        }
        stale = await self.c.execute(
            sa.select(p.user_id, p.period)
            .join(t.users, t.users.c.id == p.user_id)
            .where(p.grid_key.is_distinct_from(t.users.c.grid_key))
        )
        problems.extend(f"earnings of {tuple(row)} name another grid than the person's" for row in stale)
        for key in sorted(set(earned) | set(cached)):
            if earned.get(key, 0) != cached.get(key, 0):
                problems.append(
                    f"earnings of {key}: cached {cached.get(key, 0)}, entries say {earned.get(key, 0)}"
                )
        return problems

    async def verify(self) -> bool:
        """True if every cached balance and earning equals the sum of the entries."""
        return not await self.discrepancies()
