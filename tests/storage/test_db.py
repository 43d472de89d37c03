"""Transactions through SQLAlchemy's AsyncEngine: no query, and no wait for a lock, holds the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database

# A recursive count that keeps SQLite busy for a while (about half a second) on
# one connection; `started()` marks, from aiosqlite's thread, that it is running,
# and `released()` holds its end until the test says so: the test then orders what
# happens during the query by events, not by how long anything takes.
LONG_QUERY = sa.text(
    "WITH RECURSIVE n(x) AS (SELECT started() UNION ALL SELECT x + 1 FROM n WHERE x < 400000)"
    " SELECT count(*) + released() FROM n"
)


class LongQuery:
    """The SQL functions LONG_QUERY calls, bridging aiosqlite's thread and the test's loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.started = asyncio.Event()
        self.release = threading.Event()

    async def install(self, connection: AsyncConnection) -> None:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.create_function("started", 0, self._started)
        await driver.create_function("released", 0, self._released)

    def _started(self) -> int:
        self.loop.call_soon_threadsafe(self.started.set)
        return 1

    def _released(self) -> int:
        # Bounded, so a failing test ends instead of hanging; the result then says so.
        return 0 if self.release.wait(10) else -1_000_000_000


class Ticker:
    """Loop work that is not a database write: counts how often the loop gets to run it."""

    def __init__(self) -> None:
        self.ticks = 0
        self._ticked = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.001)
            self.ticks += 1
            self._ticked.set()  # wakes whoever waits now
            self._ticked.clear()

    async def ticked_since(self, ticks: int) -> None:
        while self.ticks <= ticks:
            await self._ticked.wait()

    def stop(self) -> None:
        self.task.cancel()


def _another_writer(sqlite_url: str) -> sqlite3.Connection:
    """A connection of its own holding SQLite's write lock, as another process (a CLI run) would."""
    path = sa.make_url(sqlite_url).database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def _commit_when(condition: Callable[[], bool], other: sqlite3.Connection) -> threading.Thread:
    """Commit the other writer, from a thread of its own, once `condition` holds."""

    def run() -> None:
        for _ in range(1000):
            if condition():
                break
            threading.Event().wait(0.01)
        other.execute("COMMIT")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def _probe_table(database: Database) -> None:
    async with database.transaction() as connection:
        await connection.execute(sa.text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))


async def test_a_long_read_leaves_the_loop_free_and_writers_commit_meanwhile(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    await database.migrate()
    await _probe_table(database)
    long_query = LongQuery()
    ticker = Ticker()
    order: list[str] = []

    async def digest() -> int:
        async with database.transaction(read_only=True) as connection:
            await long_query.install(connection)
            count_probe = sa.text("SELECT count(*) FROM probe")
            before = (await connection.execute(count_probe)).scalar_one()  # SQLite's snapshot starts here
            total = (await connection.execute(LONG_QUERY)).scalar_one()
            after = (await connection.execute(count_probe)).scalar_one()
        order.append("long read returned")
        assert before == after == 0  # one snapshot: the write committed meanwhile is not in it
        return int(total)

    async def chat() -> None:
        await long_query.started.wait()
        ticks = ticker.ticks
        async with database.transaction() as connection:
            order.append("write began")
            await connection.execute(sa.text("INSERT INTO probe VALUES (1)"))
        order.append("write committed")
        await ticker.ticked_since(ticks)
        long_query.release.set()

    total, _ = await asyncio.gather(digest(), chat())
    ticker.stop()
    assert total == 400_000
    assert order == ["write began", "write committed", "long read returned"]
    async with database.transaction(read_only=True) as connection:
        assert (await connection.execute(sa.text("SELECT count(*) FROM probe"))).scalar_one() == 1
    await database.close()


async def test_a_long_query_in_a_write_transaction_leaves_the_loop_free(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    await database.migrate()
    await _probe_table(database)
    long_query = LongQuery()
    ticker = Ticker()
    order: list[str] = []

    async def weekly_job() -> int:
        async with database.transaction() as connection:
            await connection.execute(sa.text("INSERT INTO probe VALUES (1)"))
            await long_query.install(connection)
            total = (await connection.execute(LONG_QUERY)).scalar_one()
            order.append("long query returned")
        return int(total)

    async def other_work() -> None:
        await long_query.started.wait()
        ticks = ticker.ticks
        async with database.transaction(read_only=True) as connection:
            # Committed data only: the write transaction's row is not visible yet.
            assert (await connection.execute(sa.text("SELECT count(*) FROM probe"))).scalar_one() == 0
        order.append("read done")
        await ticker.ticked_since(ticks)
        long_query.release.set()

    total, _ = await asyncio.gather(weekly_job(), other_work())
    ticker.stop()
    assert total == 400_000
    assert order == ["read done", "long query returned"]
    await database.close()


async def test_a_read_only_transaction_refuses_to_write(database_url: str) -> None:
    database = Database(database_url)
    await database.migrate()
    await _probe_table(database)
    with pytest.raises(sa.exc.DBAPIError):
        async with database.transaction(read_only=True) as connection:
            await connection.execute(sa.text("INSERT INTO probe VALUES (1)"))
    async with database.transaction() as connection:
        # The pool's connection went back as a writable one.
        await connection.execute(sa.text("INSERT INTO probe VALUES (2)"))
    async with database.transaction(read_only=True) as connection:
        assert (await connection.execute(sa.text("SELECT x FROM probe"))).scalars().all() == [2]
    await database.close()


async def test_a_transaction_cancelled_while_waiting_for_the_lock_leaves_it_free(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    await database.migrate()
    await _probe_table(database)
    other = _another_writer(sqlite_url)
    began = asyncio.Event()

    async def write(value: int) -> None:
        async with database.transaction() as connection:
            began.set()
            await connection.execute(sa.text("INSERT INTO probe VALUES (:x)"), {"x": value})

    waiting = asyncio.create_task(write(1))
    # SQLite's busy handler retries with pauses of growing length; a few ticks let the BEGIN reach it.
    for _ in range(20):
        await asyncio.sleep(0.005)
    assert not began.is_set()  # its BEGIN IMMEDIATE waits for the other writer, in aiosqlite's thread
    waiting.cancel()
    _commit_when(lambda: True, other)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await write(2)  # the lock is free and no transaction is left open
    other.close()
    async with database.transaction() as connection:
        assert (await connection.execute(sa.text("SELECT x FROM probe"))).scalars().all() == [2]
    await database.close()


async def test_a_failed_transaction_is_rolled_back_and_the_next_one_runs(database_url: str) -> None:
    database = Database(database_url)
    await database.migrate()
    async with database.transaction() as connection:
        await connection.execute(sa.text("CREATE TABLE probe (x INTEGER UNIQUE)"))
        await connection.execute(sa.text("INSERT INTO probe VALUES (1)"))
    with pytest.raises(sa.exc.IntegrityError):
        async with database.transaction() as connection:
            await connection.execute(sa.text("INSERT INTO probe VALUES (2)"))
            await connection.execute(sa.text("INSERT INTO probe VALUES (1)"))
    async with database.transaction() as connection:
        async with connection.begin_nested():
            await connection.execute(sa.text("INSERT INTO probe VALUES (3)"))
        with contextlib.suppress(sa.exc.IntegrityError):
            async with connection.begin_nested():
                await connection.execute(sa.text("INSERT INTO probe VALUES (4)"))
                await connection.execute(sa.text("INSERT INTO probe VALUES (1)"))
        rows = (await connection.execute(sa.text("SELECT x FROM probe ORDER BY x"))).scalars().all()
    assert rows == [1, 3]  # 2 went with its transaction, 4 with its savepoint
    await database.close()


async def test_a_transaction_opened_inside_another_fails_at_once(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    async with database.transaction():
        with pytest.raises(RuntimeError, match="inside another"):
            async with database.transaction():
                pass
        async with database.transaction(read_only=True):
            pass  # a read takes no turn: it cannot wait for itself
    await database.close()


async def test_a_writer_in_another_process_is_waited_for_without_freezing_the_loop(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    await database.migrate()
    await _probe_table(database)
    other = _another_writer(sqlite_url)
    ticker = Ticker()
    began = asyncio.Event()

    async def write() -> int:
        async with database.transaction() as connection:
            began.set()
            await connection.execute(sa.text("INSERT INTO probe VALUES (7)"))
            return 7

    task = asyncio.create_task(write())
    ticks = ticker.ticks
    # The other writer commits only once the loop has run on while this writer was waiting.
    _commit_when(lambda: ticker.ticks > ticks + 100 and not began.is_set(), other)
    assert await task == 7
    ticker.stop()
    other.close()
    async with database.transaction() as connection:
        assert (await connection.execute(sa.text("SELECT x FROM probe"))).scalar_one() == 7
    await database.close()


async def test_two_transactions_of_one_process_take_turns(database_url: str) -> None:
    database = Database(database_url)
    await database.migrate()
    async with database.transaction() as connection:
        await connection.execute(sa.text("CREATE TABLE counter (n INTEGER)"))
        await connection.execute(sa.text("INSERT INTO counter VALUES (0)"))
    order: list[str] = []
    slow_updated = asyncio.Event()

    async def slow_writer() -> None:
        async with database.transaction() as connection:
            order.append("slow begins")
            await connection.execute(sa.text("UPDATE counter SET n = n + 1"))
            slow_updated.set()
            for _ in range(50):  # holds the write lock across awaits
                await asyncio.sleep(0)
            order.append("slow commits")

    async def quick_writer() -> None:
        await slow_updated.wait()
        async with database.transaction() as connection:
            order.append("quick begins")
            await connection.execute(sa.text("UPDATE counter SET n = n * 10"))

    await asyncio.gather(slow_writer(), quick_writer())
    async with database.transaction() as connection:
        assert (await connection.execute(sa.text("SELECT n FROM counter"))).scalar_one() == 10
    if database.dialect == "sqlite":
        # On PostgreSQL the second update waits on the row lock instead, inside its transaction.
        assert order == ["slow begins", "slow commits", "quick begins"]
    await database.close()


async def test_ping_answers_on_a_working_database(database_url: str) -> None:
    database = Database(database_url)
    await database.ping()
    await database.close()


def _remove(path: Path) -> None:
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()


async def test_ping_notices_a_sqlite_file_that_is_gone_and_does_not_create_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    database = Database(sqlite_url)
    async with database.transaction(read_only=True) as connection:
        await connection.execute(sa.text("SELECT 1"))  # the pool now holds a connection to the file
    _remove(tmp_path / "shouwang.db")
    with pytest.raises(sqlite3.OperationalError):
        await database.ping()
    assert not (tmp_path / "shouwang.db").exists()
    # An empty file in its place is not the database either.
    (tmp_path / "shouwang.db").touch()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await database.ping()
    await database.close()


async def test_ping_fails_at_once_when_postgresql_does_not_answer() -> None:
    # Port 9 (discard) on the loopback: nothing listens there, the connection is refused.
    database = Database("postgresql://postgres@127.0.0.1:9/test")
    async with asyncio.timeout(10):
        with pytest.raises(OSError):
            await database.ping()
    await database.close()
