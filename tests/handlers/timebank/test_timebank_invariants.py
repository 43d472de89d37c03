"""Random sequences of awards, revocations, redemptions and decisions, with double clicks and presses at
once, through the time bank's rules: the books always balance and nothing is counted twice."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from handlers.accounts import rules as accounts
from handlers.community import Community, PoliceGroups, Reward
from handlers.errors import DomainError
from handlers.timebank import rules as bank
from storage import schema as t
from storage.db import Database
from storage.models import User
from storage.repositories import Repos
from tests import harness as driver

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)
PEOPLE, OFFICERS = 3, 2
REWARDS = (
    Reward(key="rice", names={"zh_CN": "大米"}, cost=20, stock=1),
    Reward(key="pen", names={"zh_CN": "笔"}, cost=10),
)


def community() -> Community:
    base = driver.test_community()
    return base.model_copy(
        update={
            "police_groups": PoliceGroups(),
            "timebank": base.timebank.model_copy(update={"rewards": list(REWARDS), "award_max_points": 40}),
        }
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.close()


person = st.integers(0, PEOPLE - 1)
officer = st.integers(0, OFFICERS - 1)
one_step = st.one_of(
    st.tuples(st.just("award"), officer, person, st.integers(1, 40), st.integers(0, 6)),
    st.tuples(st.just("revoke"), officer, st.integers(0, 3)),
    st.tuples(st.just("redeem"), person, st.integers(0, len(REWARDS) - 1)),
    st.tuples(st.just("approve"), officer, st.integers(0, 3)),
    st.tuples(st.just("reject"), officer, st.integers(0, 3), st.booleans()),
)
# A step, the same step again (a double click), or the step twice at the same moment.
steps = st.lists(st.tuples(st.sampled_from(("once", "again", "at_once")), one_step), min_size=4, max_size=25)


@dataclass
class World:
    community: Community
    people: list[User]
    officers: list[User]
    # Award entries and redemptions in the order they were made, for steps to pick from by index.
    awards: list[int] = field(default_factory=list)
    redemptions: list[int] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)


async def _wipe(db: Database) -> None:
    async with db.transaction() as connection:
        for table in (
            t.ledger_entries,
            t.point_earnings,
            t.point_accounts,
            t.redemptions,
            t.reward_stock,
            t.outbox,
            t.users,
        ):
            await connection.execute(table.delete())


async def _world(db: Database) -> World:
    async with db.transaction() as connection:
        repos = Repos(connection)
        people, officers = [], []
        for n in range(PEOPLE + OFFICERS):
            role = accounts.RESIDENT if n < PEOPLE else (accounts.POLICE, accounts.ADMIN)[n % 2]
            user = await repos.users.create(f"u{n}", NOW, role=role)
            await repos.users.update(user.id, onboarded_at=NOW)
            (people if n < PEOPLE else officers).append(await repos.users.get(user.id))
    return World(community(), people, officers)


def _action(world: World, step: tuple[Any, ...]) -> Callable[[Repos], Awaitable[Any]] | None:
    kind, c = step[0], world.community
    if kind == "award":
        _, o, p, points, nonce = step
        return lambda r: bank.award(
            r, c, world.officers[o], world.people[p].id, points, "见义勇为", f"n{nonce}", NOW
        )
    if kind == "revoke":
        _, o, index = step
        if not world.awards:
            return None
        entry = world.awards[index % len(world.awards)]
        return lambda r: bank.revoke_award(r, c, world.officers[o], entry, "弄错了", NOW)
    if kind == "redeem":
        _, p, reward = step
        return lambda r: bank.request_redemption(r, c, world.people[p], REWARDS[reward].key, NOW)
    if not world.redemptions:
        return None
    if kind == "approve":
        _, o, index = step
        chosen = world.redemptions[index % len(world.redemptions)]
        return lambda r: bank.approve_redemption(r, c, world.officers[o], chosen, NOW)
    _, o, index, no_stock = step
    chosen = world.redemptions[index % len(world.redemptions)]
    reason = None if no_stock else "不符合条件"
    return lambda r: bank.reject_redemption(r, c, world.officers[o], chosen, reason, NOW)


async def _attempt(db: Database, world: World, action: Callable[[Repos], Awaitable[Any]]) -> Any:
    """One input's transaction, as the engine runs it: a refusal is answered and the transaction commits."""
    async with db.transaction() as connection:
        try:
            return await action(Repos(connection, world.community.tz))
        except DomainError:
            return None


async def _apply(db: Database, world: World, how: str, step: tuple[Any, ...]) -> None:
    action = _action(world, step)
    if action is None:
        return
    times = 1 if how == "once" else 2
    if how == "at_once":
        results = await asyncio.gather(*(_attempt(db, world, action) for _ in range(times)))
    else:
        results = [await _attempt(db, world, action) for _ in range(times)]
    done = [result for result in results if result is not None]
    if step[0] == "award":
        nonce = f"n{step[4]}"
        # Never a double credit: a nonce is awarded once, however often it is confirmed.
        assert len(done) == (0 if nonce in world.nonces else 1)
        world.nonces.add(nonce)
        world.awards.extend(award.entry_id for award in done)
    elif step[0] == "redeem":
        world.redemptions.extend(redemption.id for redemption in done)
        assert len(done) <= 1
    else:
        # Revoked, approved or rejected: once.
        assert len(done) <= 1


async def _check(db: Database, world: World) -> None:
    async with db.engine.connect() as connection:
        repos = Repos(connection, world.community.tz)
        # Balances equal their entries, no account but the community's below zero, all summing to zero.
        assert await repos.ledger.discrepancies() == []
        e, a = t.ledger_entries.c, t.point_accounts.c
        credit = t.point_accounts.alias("credit")
        entries = (
            await connection.execute(
                sa.select(e.id, e.source_key, e.amount, e.reverses_id, credit.c.kind.label("to_kind")).join(
                    credit, credit.c.id == e.credit_account_id
                )
            )
        ).all()
        by_key = {row.source_key: row for row in entries}
        assert len(by_key) == len(entries)
        assert {k for k in by_key if k.startswith("award:")} == {f"award:{n}" for n in world.nonces}
        assert sorted(r.id for r in entries if r.source_key.startswith("award:")) == sorted(world.awards)

        reversed_ids = {row.reverses_id for row in entries if row.reverses_id is not None}
        expected_balance: dict[int, int] = defaultdict(int)
        expected_held: dict[int, int] = defaultdict(int)
        for row in await connection.execute(
            sa.select(e.id, e.amount, a.user_id).join(t.point_accounts, a.id == e.credit_account_id)
        ):
            if row.id in world.awards and row.id not in reversed_ids:
                expected_balance[row.user_id] += row.amount

        approved: dict[str, int] = defaultdict(int)
        for redemption in await connection.execute(sa.select(t.redemptions)):
            ref = bank.redemption_ref(redemption.id)
            assert f"redeem:{ref}:reserve" in by_key
            settled = by_key.get(f"redeem:{ref}:settle")
            if redemption.state == "pending":
                assert settled is None and redemption.pickup_code is None
                expected_held[redemption.user_id] += redemption.cost
                expected_balance[redemption.user_id] -= redemption.cost
            elif redemption.state == "approved":
                assert settled is not None and settled.to_kind == "spent"
                assert redemption.pickup_code is not None
                approved[redemption.reward_key] += 1
                expected_balance[redemption.user_id] -= redemption.cost
            else:
                assert settled is not None and settled.to_kind == "user"
        # Stock taken once per approval, never past the catalogue's stock.
        issued = await repos.rewards.issued()
        assert {key: count for key, count in issued.items() if count} == dict(approved)
        for reward in REWARDS:
            assert reward.stock is None or approved[reward.key] <= reward.stock
        for person in world.people:
            assert await repos.ledger.balance(person.id) == expected_balance[person.id]
            assert await repos.ledger.reserved(person.id) == expected_held[person.id]


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=steps)
# Always tried: two people after the last item of a stock of one, decided by double clicks and at once.
@example(
    plan=[
        ("once", ("redeem", 0, 0)),
        ("once", ("redeem", 1, 0)),
        ("at_once", ("approve", 0, 0)),
        ("again", ("approve", 1, 1)),
        ("at_once", ("reject", 0, 1, True)),
        ("at_once", ("award", 1, 2, 40, 1)),
        ("again", ("award", 0, 2, 40, 1)),
        ("at_once", ("revoke", 1, 3)),
        ("at_once", ("revoke", 0, 0)),
        ("at_once", ("redeem", 2, 1)),
    ]
)
async def test_random_time_bank_traffic_keeps_the_books(db: Database, plan: list[tuple[str, tuple]]) -> None:
    await _wipe(db)
    world = await _world(db)
    # Something to start with, so that most redemptions have points to hold.
    for p in range(PEOPLE):
        await _apply(db, world, "once", ("award", 0, p, 40, 100 + p))
    for how, step in plan:
        await _apply(db, world, how, step)
        await _check(db, world)
