"""The time bank ledger: once per event, reversals, redemptions, leaderboards, invariants under fire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import IntegrityError

from storage import schema as t
from storage.db import Database
from storage.ledger import (
    ALL_TIME,
    COMMUNITY,
    REASON_ACCOUNTS_MERGED,
    REASON_REDEMPTION_APPROVED,
    REASON_REDEMPTION_REJECTED,
    RESERVED,
    SPENT,
    USER,
    InsufficientPoints,
    LedgerError,
    LedgerRepo,
)
from storage.repositories import Repos

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
PATROL = "points.reason.patrol_hours"
REDEEM = "points.reason.redemption_reserved"
CORRECTION = "points.reason.correction"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.close()


async def make_users(db: Database, *names: str, grid_key: str | None = None) -> list[int]:
    async with db.transaction() as connection:
        repos = Repos(connection)
        ids = [(await repos.users.create(name, NOW)).id for name in names]
        if grid_key is not None:
            for user_id in ids:
                await repos.users.update(user_id, grid_key=grid_key)
    return ids


async def credit(db: Database, user_id: int, amount: int, key: str, now: datetime = NOW) -> int | None:
    async with db.transaction() as connection:
        return await Repos(connection, SHANGHAI).ledger.credit_user(
            user_id, amount, key, PATROL, {"hours": amount}, None, now
        )


async def test_a_check_out_is_credited_once(db: Database) -> None:
    (volunteer,) = await make_users(db, "李志愿")
    first = await credit(db, volunteer, 4, "patrol:checkout:123")
    again = await credit(db, volunteer, 4, "patrol:checkout:123")
    assert first is not None and again is None
    assert await credit(db, volunteer, 2, "report:resolved:42") is not None

    async with db.transaction() as connection:
        ledger = Repos(connection).ledger
        statement = await ledger.statement(volunteer)
        assert (statement.balance, statement.reserved, statement.lifetime) == (6, 0, 6)
        assert [(e.amount, e.source_key, e.reason_key) for e in statement.recent] == [
            (2, "report:resolved:42", PATROL),
            (4, "patrol:checkout:123", PATROL),
        ]
        assert statement.recent[1].reason_params == {"hours": 4}
        assert statement.recent[0].created_at == NOW
        assert await ledger.balance(volunteer) == 6
        assert [e.id for e in await ledger.recent(volunteer, limit=1)] == [statement.recent[0].id]
        assert await ledger.balance(volunteer + 1000) == 0
        with pytest.raises(ValueError):
            await ledger.account(USER)
        with pytest.raises(ValueError):
            await ledger.account(COMMUNITY, volunteer)
        assert await ledger.recent(volunteer + 1000) == []
        # The community issued what the volunteer holds.
        community = await ledger.account(COMMUNITY)
        balance = (
            await connection.execute(
                sa.select(t.point_accounts.c.balance).where(t.point_accounts.c.id == community)
            )
        ).scalar_one()
        assert balance == -6
        assert await ledger.verify()


async def test_a_reversal_mirrors_the_entry_once_and_corrects_its_month(db: Database) -> None:
    (volunteer,) = await make_users(db, "x")
    april = datetime(2026, 4, 20, tzinfo=UTC)
    entry = await credit(db, volunteer, 10, "award:77", now=april)
    await credit(db, volunteer, 3, "award:78", now=NOW)
    assert entry is not None
    async with db.transaction() as connection:
        ledger = Repos(connection, SHANGHAI).ledger
        reversal = await ledger.reverse(entry, CORRECTION, {"note": "wrong person"}, None, NOW)
        assert reversal is not None
        assert await ledger.reverse(entry, CORRECTION, {}, None, NOW) is None
        with pytest.raises(LedgerError):
            await ledger.reverse(reversal, CORRECTION, {}, None, NOW)
        with pytest.raises(LookupError):
            await ledger.reverse(10**6, CORRECTION, {}, None, NOW)
        assert await ledger.balance(volunteer) == 3
        assert await ledger.lifetime(volunteer) == 3
        assert await ledger.leaderboard("2026-04") == []
        assert [(s.user_id, s.points) for s in await ledger.leaderboard("2026-05")] == [(volunteer, 3)]
        newest = (await ledger.recent(volunteer))[0]
        assert (newest.amount, newest.reason_key, newest.reverses_id) == (-10, CORRECTION, entry)
        assert newest.source_key == f"reverse:{entry}"
        assert await ledger.verify()


async def test_a_reversal_cannot_take_points_already_held(db: Database) -> None:
    (volunteer,) = await make_users(db, "x")
    entry = await credit(db, volunteer, 10, "award:1")
    assert entry is not None
    async with db.transaction() as connection:
        ledger = Repos(connection).ledger
        assert await ledger.reserve(volunteer, 8, "9", REDEEM, {"item": "rice"}, volunteer, NOW)
        with pytest.raises(InsufficientPoints):
            await ledger.reverse(entry, CORRECTION, {}, None, NOW)
        # The refused reversal left nothing behind, and the transaction goes on.
        assert (await ledger.balance(volunteer), await ledger.reserved(volunteer)) == (2, 8)
        assert await ledger.release("9", None, NOW)
        assert await ledger.reverse(entry, CORRECTION, {}, None, NOW)
        assert await ledger.balance(volunteer) == 0
        assert await ledger.verify()


async def test_a_redemption_holds_points_until_approved_or_rejected(db: Database) -> None:
    (volunteer, admin) = await make_users(db, "x", "管理员")
    await credit(db, volunteer, 10, "award:1")
    async with db.transaction() as connection:
        ledger = Repos(connection).ledger
        held = await ledger.reserve(volunteer, 6, "9", REDEEM, {"item": "米"}, volunteer, NOW)
        assert held is not None
        assert await ledger.reserve(volunteer, 6, "9", REDEEM, {"item": "米"}, volunteer, NOW) is None
        assert (await ledger.balance(volunteer), await ledger.reserved(volunteer)) == (4, 6)
        assert [(e.amount, e.reason_key) for e in await ledger.recent(volunteer, 1)] == [(-6, REDEEM)]
        # Approved: the held points are spent; a later rejection finds it settled.
        approved = await ledger.spend("9", admin, NOW)
        assert approved is not None
        assert await ledger.release("9", admin, NOW) is None
        assert await ledger.spend("9", admin, NOW) is None
        assert (await ledger.balance(volunteer), await ledger.reserved(volunteer)) == (4, 0)

        assert await ledger.reserve(volunteer, 3, "10", REDEEM, {"item": "油"}, volunteer, NOW)
        rejected = await ledger.release("10", admin, NOW)
        assert rejected is not None
        assert await ledger.spend("10", admin, NOW) is None
        assert (await ledger.balance(volunteer), await ledger.reserved(volunteer)) == (4, 0)
        newest = (await ledger.recent(volunteer, 1))[0]
        assert (newest.amount, newest.reason_key, newest.reason_params) == (
            3,
            REASON_REDEMPTION_REJECTED,
            {"item": "油"},
        )
        # Spending never changes what was earned.
        assert await ledger.lifetime(volunteer) == 10
        with pytest.raises(LookupError):
            await ledger.spend("404", admin, NOW)
        with pytest.raises(LedgerError):
            await ledger.reverse(approved, CORRECTION, {}, admin, NOW)
        spent = await ledger.account(SPENT)
        assert (
            await connection.execute(
                sa.select(t.ledger_entries.c.reason_key).where(t.ledger_entries.c.credit_account_id == spent)
            )
        ).scalar_one() == REASON_REDEMPTION_APPROVED
        assert await ledger.verify()


async def test_an_overdraft_is_refused_and_leaves_no_trace(db: Database) -> None:
    (volunteer,) = await make_users(db, "x")
    await credit(db, volunteer, 5, "award:1")
    async with db.transaction() as connection:
        ledger = Repos(connection).ledger
        with pytest.raises(InsufficientPoints):
            await ledger.reserve(volunteer, 6, "9", REDEEM, {}, volunteer, NOW)
        # Same transaction, still usable; the refused key was not used up.
        assert await ledger.credit_user(volunteer, 1, "award:2", PATROL, {}, None, NOW)
        assert await ledger.reserve(volunteer, 6, "9", REDEEM, {}, volunteer, NOW)
        assert await ledger.balance(volunteer) == 0
        with pytest.raises(ValueError):
            await ledger.credit_user(volunteer, 0, "award:3", PATROL, {}, None, NOW)
    # The database itself refuses a negative balance, whatever code tries it.
    with pytest.raises(IntegrityError):
        async with db.transaction() as connection:
            await connection.execute(
                t.point_accounts.update()
                .where(t.point_accounts.c.user_id == volunteer, t.point_accounts.c.kind == USER)
                .values(balance=-1)
            )
    with pytest.raises(IntegrityError):
        async with db.transaction() as connection:
            ledger = Repos(connection).ledger
            await connection.execute(
                t.ledger_entries.insert().values(
                    debit_account_id=await ledger.account(COMMUNITY),
                    credit_account_id=await ledger.account(USER, volunteer),
                    amount=0,
                    source_key="raw",
                    reason_key=PATROL,
                    reason_params={},
                    period="2026-05",
                    created_at=NOW,
                )
            )


async def test_leaderboards_by_month_grid_and_opt_out(db: Database) -> None:
    a, b, c = await make_users(db, "a", "b", "c", grid_key="g1")
    d, e = await make_users(db, "d", "e", grid_key="g2")
    # 1 May 01:00 in Shanghai is still April in UTC: the community's calendar counts.
    may_first = datetime(2026, 4, 30, 17, 0, tzinfo=UTC)
    april = datetime(2026, 4, 10, tzinfo=UTC)
    await credit(db, a, 50, "award:a-april", now=april)
    await credit(db, a, 5, "award:a-may", now=may_first)
    await credit(db, b, 20, "award:b-may", now=NOW)
    await credit(db, c, 20, "award:c-may", now=NOW)
    await credit(db, d, 30, "award:d-may", now=NOW)
    await credit(db, e, 40, "award:e-april", now=april)
    async with db.transaction() as connection:
        repos = Repos(connection, SHANGHAI)
        ledger = repos.ledger
        assert ledger.month(may_first) == "2026-05"

        def pairs(standings: list) -> list[tuple[int, int]]:
            return [(s.user_id, s.points) for s in standings]

        month = ledger.month(NOW)
        assert pairs(await ledger.leaderboard(month)) == [(d, 30), (b, 20), (c, 20), (a, 5)]
        assert pairs(await ledger.leaderboard(month, limit=2)) == [(d, 30), (b, 20)]
        assert pairs(await ledger.leaderboard("2026-04")) == [(a, 50), (e, 40)]
        assert pairs(await ledger.leaderboard(ALL_TIME)) == [(a, 55), (e, 40), (d, 30), (b, 20), (c, 20)]
        assert pairs(await ledger.leaderboard(month, grid_key="g1")) == [(b, 20), (c, 20), (a, 5)]
        assert pairs(await ledger.leaderboard(ALL_TIME, grid_key="g2")) == [(e, 40), (d, 30)]
        assert pairs(await ledger.leaderboard(month, grid_key="g9")) == []

        await repos.users.update(b, leaderboard_opt_out=True)
        assert pairs(await ledger.leaderboard(month, grid_key="g1")) == [(c, 20), (a, 5)]
        assert (await repos.users.get(b)).leaderboard_opt_out
        # Opting out hides, it does not take anything away.
        assert await ledger.balance(b) == 20
        # Someone who moves is ranked in the grid they live in now.
        await repos.users.update(c, grid_key="g2")
        assert pairs(await ledger.leaderboard(month, grid_key="g1")) == [(a, 5)]
        assert pairs(await ledger.leaderboard(month, grid_key="g2")) == [(d, 30), (c, 20)]
        assert await ledger.verify()


async def test_linking_accounts_merges_points_and_history(db: Database) -> None:
    keep, drop, newcomer = await make_users(db, "keep", "drop", "newcomer")
    await credit(db, keep, 10, "award:k", now=datetime(2026, 4, 10, tzinfo=UTC))
    await credit(db, drop, 7, "award:d1")
    await credit(db, drop, 5, "award:d2")
    async with db.transaction() as connection:
        ledger = Repos(connection).ledger
        assert await ledger.reserve(drop, 4, "r1", REDEEM, {"item": "rice"}, drop, NOW)
        assert await ledger.reserve(keep, 1, "r2", REDEEM, {"item": "tea"}, keep, NOW)
    async with db.transaction() as connection:
        repos = Repos(connection)
        await repos.links.merge_users(keep=keep, drop=drop, now=NOW)
        assert await repos.users.get(drop) is None
        ledger = repos.ledger
        assert (await ledger.balance(keep), await ledger.reserved(keep)) == (17, 5)
        assert await ledger.lifetime(keep) == 22
        assert [(s.user_id, s.points) for s in await ledger.leaderboard(ledger.month(NOW))] == [(keep, 12)]
        assert (await ledger.recent(keep, 1))[0].reason_key == REASON_ACCOUNTS_MERGED
        # The merged person's pending redemption can still be settled.
        assert await ledger.spend("r1", None, NOW)
        assert await ledger.release("r2", None, NOW)
        assert (await ledger.balance(keep), await ledger.reserved(keep)) == (18, 0)
        # Someone with no points yet simply takes the other's accounts over.
        await repos.links.merge_users(keep=newcomer, drop=keep, now=NOW)
        assert (await ledger.balance(newcomer), await ledger.lifetime(newcomer)) == (18, 22)
        assert len(await ledger.recent(newcomer, 50)) == 4
        assert await ledger.verify()


# -- properties -----------------------------------------------------------------

USERS = 2
user_index = st.integers(0, USERS - 1)
redemption = st.integers(0, 3).map(str)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("credit"), user_index, st.integers(1, 10), st.integers(0, 5)),
        st.tuples(st.just("reserve"), user_index, st.integers(1, 20), redemption),
        st.tuples(st.just("spend"), redemption),
        st.tuples(st.just("release"), redemption),
        st.tuples(st.just("reverse"), st.integers(0, 40)),
        st.tuples(st.just("gift"), user_index, user_index, st.integers(1, 20), st.integers(0, 3)),
    ),
    min_size=5,
    max_size=30,
)


@dataclass
class Model:
    """What the balances must be, kept by hand beside the database."""

    balances: dict[tuple[str, int | None], int] = field(default_factory=dict)
    keys: set[str] = field(default_factory=set)
    # id -> (debit, credit, amount, can be reversed)
    entries: dict[int, tuple[tuple[str, int | None], tuple[str, int | None], int, bool]] = field(
        default_factory=dict
    )
    held: dict[str, tuple[int, int]] = field(default_factory=dict)

    def move(self, entry_id: int, debit: tuple, credit: tuple, amount: int, reversible: bool) -> None:
        self.balances[debit] = self.balances.get(debit, 0) - amount
        self.balances[credit] = self.balances.get(credit, 0) + amount
        self.entries[entry_id] = (debit, credit, amount, reversible)

    def has(self, account: tuple, amount: int) -> bool:
        return account[0] == COMMUNITY or self.balances.get(account, 0) >= amount


async def _wipe(db: Database) -> None:
    async with db.transaction() as connection:
        for table in (t.ledger_entries, t.point_earnings, t.point_accounts, t.users):
            await connection.execute(table.delete())


async def _apply(ledger: LedgerRepo, model: Model, users: list[int], op: tuple) -> None:
    """Run one operation and check the database answered exactly as the model predicts."""
    kind = op[0]
    if kind == "credit":
        _, who, amount, k = op
        key = f"award:{k}"
        result = await ledger.credit_user(users[who], amount, key, PATROL, {}, None, NOW)
        if key in model.keys:
            assert result is None
        else:
            assert result is not None
            model.keys.add(key)
            model.move(result, (COMMUNITY, None), (USER, who), amount, True)
    elif kind == "reserve":
        _, who, amount, ref = op
        key = f"redeem:{ref}:reserve"
        if key in model.keys:
            assert await ledger.reserve(users[who], amount, ref, REDEEM, {}, None, NOW) is None
        elif not model.has((USER, who), amount):
            with pytest.raises(InsufficientPoints):
                await ledger.reserve(users[who], amount, ref, REDEEM, {}, None, NOW)
        else:
            result = await ledger.reserve(users[who], amount, ref, REDEEM, {}, None, NOW)
            assert result is not None
            model.keys.add(key)
            model.held[ref] = (who, amount)
            model.move(result, (USER, who), (RESERVED, who), amount, False)
    elif kind in ("spend", "release"):
        (_, ref) = op
        settle = ledger.spend if kind == "spend" else ledger.release
        key = f"redeem:{ref}:settle"
        if ref not in model.held:
            with pytest.raises(LookupError):
                await settle(ref, None, NOW)
        elif key in model.keys:
            assert await settle(ref, None, NOW) is None
        else:
            who, amount = model.held[ref]
            result = await settle(ref, None, NOW)
            assert result is not None
            model.keys.add(key)
            target = (SPENT, None) if kind == "spend" else (USER, who)
            model.move(result, (RESERVED, who), target, amount, False)
    elif kind == "reverse":
        if not model.entries:
            return
        entry_id = sorted(model.entries)[op[1] % len(model.entries)]
        debit, credit, amount, reversible = model.entries[entry_id]
        key = f"reverse:{entry_id}"
        if not reversible:
            with pytest.raises(LedgerError):
                await ledger.reverse(entry_id, CORRECTION, {}, None, NOW)
        elif key in model.keys:
            assert await ledger.reverse(entry_id, CORRECTION, {}, None, NOW) is None
        elif not model.has(credit, amount):
            with pytest.raises(InsufficientPoints):
                await ledger.reverse(entry_id, CORRECTION, {}, None, NOW)
        else:
            result = await ledger.reverse(entry_id, CORRECTION, {}, None, NOW)
            assert result is not None
            model.keys.add(key)
            model.move(result, credit, debit, amount, False)
    elif kind == "gift":
        _, giver, taker, amount, k = op
        if giver == taker:
            return
        key = f"gift:{k}"
        debit = await ledger.account(USER, users[giver])
        credit = await ledger.account(USER, users[taker])
        if key in model.keys:
            assert await ledger.post(debit, credit, amount, key, "points.reason.gift", {}, None, NOW) is None
        elif not model.has((USER, giver), amount):
            with pytest.raises(InsufficientPoints):
                await ledger.post(debit, credit, amount, key, "points.reason.gift", {}, None, NOW)
        else:
            result = await ledger.post(debit, credit, amount, key, "points.reason.gift", {}, None, NOW)
            assert result is not None
            model.keys.add(key)
            model.move(result, (USER, giver), (USER, taker), amount, True)


async def _check(db: Database, model: Model, users: list[int]) -> None:
    async with db.engine.connect() as connection:
        a = t.point_accounts.c
        rows = (await connection.execute(sa.select(a.kind, a.user_id, a.balance))).all()
        owners = {user_id: index for index, user_id in enumerate(users)}
        actual = {(row.kind, owners.get(row.user_id)): row.balance for row in rows}
        assert {k: v for k, v in actual.items() if v} == {k: v for k, v in model.balances.items() if v}
        assert all(row.balance >= 0 for row in rows if row.kind != COMMUNITY)
        assert sum(row.balance for row in rows) == 0
        e = t.ledger_entries.c
        counts = (
            await connection.execute(sa.select(sa.func.count(), sa.func.count(sa.distinct(e.source_key))))
        ).one()
        assert counts[0] == counts[1] == len(model.entries)
        assert await Repos(connection).ledger.discrepancies() == []


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
async def test_random_operations_keep_the_books_balanced(db: Database, ops: list[tuple]) -> None:
    await _wipe(db)
    users = await make_users(db, *(f"u{i}" for i in range(USERS)))
    model = Model()
    async with db.transaction() as connection:
        # A starting balance for everyone, so that most redemptions have something to take.
        for who in range(USERS):
            await _apply(Repos(connection).ledger, model, users, ("credit", who, 15, f"start-{who}"))
    for op in ops:
        # Each operation in its own transaction, committed even when it was refused.
        async with db.transaction() as connection:
            await _apply(Repos(connection).ledger, model, users, op)
        await _check(db, model, users)


# -- concurrency ------------------------------------------------------------------


async def test_simultaneous_credits_for_one_event_pay_once(db: Database) -> None:
    (volunteer,) = await make_users(db, "x")

    async def attempt() -> int | None:
        async with db.transaction() as connection:
            result = await Repos(connection).ledger.credit_user(
                volunteer, 5, "patrol:checkout:1", PATROL, {}, None, NOW
            )
            await asyncio.sleep(0.01)  # hold the transaction open while the others try
            return result

    results = await asyncio.gather(*(attempt() for _ in range(12)))
    assert sum(result is not None for result in results) == 1
    async with db.transaction() as connection:
        ledger = Repos(connection).ledger
        assert await ledger.balance(volunteer) == 5
        assert await ledger.verify()
        # First use by many at once still made one account per person.
        count = (
            await connection.execute(
                sa.select(sa.func.count()).where(t.point_accounts.c.user_id == volunteer)
            )
        ).scalar_one()
        assert count == 1


async def test_simultaneous_redemptions_cannot_overdraw(db: Database) -> None:
    (volunteer,) = await make_users(db, "x")
    await credit(db, volunteer, 10, "award:1")

    async def attempt(n: int) -> bool:
        try:
            async with db.transaction() as connection:
                await Repos(connection).ledger.reserve(volunteer, 3, str(n), REDEEM, {}, volunteer, NOW)
                await asyncio.sleep(0.01)  # hold the transaction open while the others try
        except InsufficientPoints:
            return False
        return True

    results = await asyncio.gather(*(attempt(n) for n in range(12)))
    assert sum(results) == 3
    async with db.transaction() as connection:
        ledger = Repos(connection).ledger
        assert (await ledger.balance(volunteer), await ledger.reserved(volunteer)) == (1, 9)
        assert await ledger.verify()


async def test_opposite_movements_at_once_do_not_deadlock(db: Database) -> None:
    a, b = await make_users(db, "a", "b")
    await credit(db, a, 50, "award:a")
    await credit(db, b, 50, "award:b")

    async def gift(n: int) -> None:
        giver, taker = (a, b) if n % 2 else (b, a)
        async with db.transaction() as connection:
            ledger = Repos(connection).ledger
            debit, credit_ = await ledger.account(USER, giver), await ledger.account(USER, taker)
            await ledger.post(debit, credit_, 1, f"gift:{n}", "points.reason.gift", {}, None, NOW)
            await asyncio.sleep(0.005)  # hold the transaction open while the opposite gifts try

    await asyncio.gather(*(gift(n) for n in range(20)))
    async with db.transaction() as connection:
        ledger = Repos(connection).ledger
        assert (await ledger.balance(a), await ledger.balance(b)) == (50, 50)
        assert await ledger.verify()
        count = (await connection.execute(sa.select(sa.func.count()).select_from(t.ledger_entries))).scalar()
        assert count == 22
