"""Time bank ledger at community scale: /points, the monthly leaderboard and a credit on SQLite.

    python bench/ledger.py [--users N] [--entries N]

Builds a SQLite database in a temporary directory through the real migrations,
bulk-loads 100,000 users and 1,000,000 ledger entries spread over six months
(awards, redemptions held, approved and rejected, corrections), with balances
and earnings computed alongside so that ``LedgerRepo.verify()`` holds, then
times the repository calls the bot makes, each in its own transaction as a
handler would: ``statement()`` (balance, held points, lifetime and the last 10
entries: what /points shows), the monthly leaderboard (top 10 of the community
and of one grid), and a credit (a new entry, committed). The last line is

    points_p99_ms=<x> leaderboard_p99_ms=<y> credit_p99_ms=<z>
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.db import Database  # noqa: E402
from storage.ledger import ALL_TIME, month_of  # noqa: E402
from storage.repositories import Repos  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 5, 20, 4, 0, tzinfo=UTC)
DAYS = 182
GRIDS = [f"g{n:02d}" for n in range(1, 21)]
SMALL_GRID = "g99"
COMMUNITY_ID, SPENT_ID = 1, 2
BATCH = 50_000
# SQLAlchemy's storage format for naive UTC datetimes on SQLite (see storage/types.py).
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def user_account(user_id: int) -> int:
    return 2 + user_id


def reserved_account(user_id: int, users: int) -> int:
    return 2 + users + user_id


def generate(users: int, entries: int, seed: int = 7) -> dict[str, list[tuple]]:
    """Rows for every table, consistent with each other: balances and earnings are the entries' sums."""
    rng = random.Random(seed)
    start = NOW - timedelta(days=DAYS)
    created = start.replace(tzinfo=None).strftime(SQLITE_DATETIME)
    # Twenty grids of about 5,000 people and one of a few dozen: the worst case
    # for a leaderboard that walks the community's ranking looking for its members.
    grid_of = [""] + [SMALL_GRID if rng.random() < 0.0005 else rng.choice(GRIDS) for _ in range(users)]
    user_rows = [
        (u, f"居民{u}", "resident", grid_of[u], created, int(rng.random() < 0.02))
        for u in range(1, users + 1)
    ]
    # Some volunteers are far more active than others.
    weights = list(itertools.accumulate(1 / (rank + 20) ** 0.9 for rank in range(users)))
    order = list(range(1, users + 1))
    rng.shuffle(order)

    balance = [0] * (users + 1)
    held = [0] * (users + 1)
    community = spent = 0
    earnings: dict[tuple[int, str], int] = {}
    pending: list[tuple[str, int, int]] = []  # (ref, user, amount)
    credits: list[tuple[int, int, int, str]] = []  # (entry id, user, amount, period)
    reversed_ids: set[int] = set()
    rows: list[tuple] = []
    step = DAYS * 86400 / entries
    period_cache: dict[int, str] = {}

    def earn(user: int, period: str, points: int) -> None:
        for key in ((user, period), (user, ALL_TIME)):
            earnings[key] = earnings.get(key, 0) + points

    for entry_id in range(1, entries + 1):
        moment = start + timedelta(seconds=entry_id * step)
        hour = int(moment.timestamp()) // 3600
        period = period_cache.get(hour) or period_cache.setdefault(hour, month_of(moment, TZ))
        at = moment.replace(tzinfo=None).strftime(SQLITE_DATETIME)
        roll = rng.random()
        row = None
        if roll < 0.08:
            user = order[rng.choices(range(users), cum_weights=weights)[0]]
            amount = rng.randint(5, 30)
            if balance[user] >= amount:
                ref = str(entry_id)
                balance[user] -= amount
                held[user] += amount
                pending.append((ref, user, amount))
                row = (user_account(user), reserved_account(user, users), amount, f"redeem:{ref}:reserve")
                row += (None, "points.reason.redemption_reserved", '{"item": "rice"}', user)
        elif roll < 0.13 and pending:
            ref, user, amount = pending.pop(rng.randrange(len(pending)))
            held[user] -= amount
            if rng.random() < 0.8:
                spent += amount
                target, reason = SPENT_ID, "points.reason.redemption_approved"
            else:
                balance[user] += amount
                target, reason = user_account(user), "points.reason.redemption_rejected"
            row = (reserved_account(user, users), target, amount, f"redeem:{ref}:settle")
            row += (None, reason, '{"item": "rice"}', 1)
        elif roll < 0.15 and credits:
            original, user, amount, original_period = credits[
                rng.randrange(max(0, len(credits) - 5000), len(credits))
            ]
            if original not in reversed_ids and balance[user] >= amount:
                reversed_ids.add(original)
                balance[user] -= amount
                community += amount
                earn(user, original_period, -amount)
                row = (user_account(user), COMMUNITY_ID, amount, f"reverse:{original}", original)
                row += ("points.reason.correction", "{}", 1)
                period = original_period
        if row is None:
            user = order[rng.choices(range(users), cum_weights=weights)[0]]
            amount = rng.randint(1, 8)
            balance[user] += amount
            community -= amount
            earn(user, period, amount)
            credits.append((entry_id, user, amount, period))
            row = (COMMUNITY_ID, user_account(user), amount, f"patrol:checkout:{entry_id}")
            row += (None, "points.reason.patrol_hours", f'{{"hours": {amount}}}', None)
        rows.append((entry_id, *row, period, at))

    accounts = [(COMMUNITY_ID, "community", None, community, None), (SPENT_ID, "spent", None, spent, None)]
    accounts += [(user_account(u), "user", u, balance[u], None) for u in range(1, users + 1)]
    accounts += [(reserved_account(u, users), "reserved", u, held[u], None) for u in range(1, users + 1)]
    return {
        "users": user_rows,
        "point_accounts": accounts,
        "ledger_entries": rows,
        "point_earnings": [(u, period, points, grid_of[u]) for (u, period), points in earnings.items()],
    }


COLUMNS = {
    "users": ("id", "display_name", "role", "grid_key", "created_at", "leaderboard_opt_out"),
    "point_accounts": ("id", "kind", "user_id", "balance", "merged_into"),
    "ledger_entries": (
        "id",
        "debit_account_id",
        "credit_account_id",
        "amount",
        "source_key",
        "reverses_id",
        "reason_key",
        "reason_params",
        "actor_id",
        "period",
        "created_at",
    ),
    "point_earnings": ("user_id", "period", "points", "grid_key"),
}


def load(path: Path, tables: dict[str, list[tuple]]) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-200000")
    connection.execute("BEGIN")
    for table, rows in tables.items():
        columns = COLUMNS[table]
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        for offset in range(0, len(rows), BATCH):
            connection.executemany(insert, rows[offset : offset + BATCH])
    connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def timed(name: str, runs: int, call: Callable[[int], Awaitable[object]]) -> float:
    for n in range(min(20, runs)):  # warm the connection pool and statement caches
        await call(-1 - n)
    samples = []
    for n in range(runs):
        began = time.perf_counter()
        await call(n)
        samples.append((time.perf_counter() - began) * 1000)
    p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
    print(f"{name:<28} runs={runs:<5} p50={p50:7.3f} ms  p99={p99:7.3f} ms  max={max(samples):7.3f} ms")
    return p99


async def measure(url: str, users: int) -> tuple[float, float, float]:
    database = Database(url)
    rng = random.Random(11)
    month = month_of(NOW, TZ)
    grid = GRIDS[3]

    async def points(_: int) -> object:
        async with database.transaction() as connection:
            return await Repos(connection, TZ).ledger.statement(rng.randint(1, users))

    async def board(_: int) -> object:
        async with database.transaction() as connection:
            return await Repos(connection, TZ).ledger.leaderboard(month)

    async def grid_board(_: int) -> object:
        async with database.transaction() as connection:
            return await Repos(connection, TZ).ledger.leaderboard(month, grid_key=grid)

    async def small_grid_board(_: int) -> object:
        async with database.transaction() as connection:
            return await Repos(connection, TZ).ledger.leaderboard(month, grid_key=SMALL_GRID)

    async def all_time(_: int) -> object:
        async with database.transaction() as connection:
            return await Repos(connection, TZ).ledger.leaderboard(ALL_TIME)

    async def credit(n: int) -> object:
        async with database.transaction() as connection:
            return await Repos(connection, TZ).ledger.credit_user(
                rng.randint(1, users),
                2,
                f"bench:credit:{n}",
                "points.reason.patrol_hours",
                {"hours": 2},
                None,
                NOW,
            )

    points_p99 = await timed("points (statement)", 1000, points)
    board_p99 = max(
        await timed("leaderboard month community", 200, board),
        await timed(f"leaderboard month grid {grid}", 200, grid_board),
        await timed(f"leaderboard month grid {SMALL_GRID}", 200, small_grid_board),
    )
    await timed("leaderboard all time", 200, all_time)
    credit_p99 = await timed("credit (own transaction)", 1000, credit)
    async with database.transaction() as connection:
        top = await Repos(connection, TZ).ledger.leaderboard(month, limit=3)
    print(f"top 3 of {month}: {[(s.user_id, s.points) for s in top]}")
    await database.close()
    return points_p99, board_p99, credit_p99


async def migrate(url: str) -> None:
    database = Database(url)
    await database.migrate()
    await database.close()


async def verify(url: str) -> None:
    database = Database(url)
    began = time.perf_counter()
    async with database.transaction() as connection:
        problems = await Repos(connection, TZ).ledger.discrepancies()
    print(f"verify: {len(problems)} discrepancies in {time.perf_counter() - began:.1f} s")
    await database.close()
    if problems:
        raise SystemExit("\n".join(problems[:20]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ledger.db"
        url = f"sqlite:///{path}"
        began = time.perf_counter()
        asyncio.run(migrate(url))
        tables = generate(args.users, args.entries)
        generated = time.perf_counter()
        load(path, tables)
        loaded = time.perf_counter()
        print(
            f"built {args.users:,} users, {len(tables['ledger_entries']):,} entries,"
            f" {len(tables['point_earnings']):,} earnings rows: generated in {generated - began:.1f} s,"
            f" loaded in {loaded - generated:.1f} s, {path.stat().st_size / 2**20:.0f} MiB"
        )
        del tables
        asyncio.run(verify(url))
        # Measure the repository, not the kernel writing the freshly loaded file back
        # or the collector walking what the generator left behind.
        os.sync()
        gc.collect()
        points_p99, board_p99, credit_p99 = asyncio.run(measure(url, args.users))
    print(f"points_p99_ms={points_p99:.2f} leaderboard_p99_ms={board_p99:.2f} credit_p99_ms={credit_p99:.2f}")


if __name__ == "__main__":
    main()
