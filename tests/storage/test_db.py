"""SQLite transactions run on the event loop, yet waiting for another writer never freezes it."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from storage.db import Database, LoopSideConnection


def _another_writer(sqlite_url: str) -> sqlite3.Connection:
    """A connection of its own holding SQLite's write lock, as another process (a CLI run) would."""
    path = sa.make_url(sqlite_url).database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


async def _ticks_while(awaitable: asyncio.Future[object] | asyncio.Task[object], seconds: float) -> int:
    """How many times the loop ran a 10 ms ticker while `awaitable` was pending."""
    ticks = 0
    while not awaitable.done():
        await asyncio.sleep(0.01)
        ticks += 1
        assert ticks * 0.01 < seconds + 5, "never finished"
    return ticks


async def test_statements_run_inline_and_only_a_contended_begin_uses_aiosqlites_thread(
    sqlite_url: str,
) -> None:
    database = Database(sqlite_url)
    await database.migrate()
    async with database.transaction():
        pass  # opens the connection
    assert database.sqlite is not None and database.sqlite._driver is not None
    driver = database.sqlite._driver
    handed_off: list[object] = []

    class WatchedQueue:
        """The connection's queue to aiosqlite's thread, noting what is handed over."""

        def __init__(self, queue: Any) -> None:
            self.queue = queue

        def put_nowait(self, item: object) -> None:
            handed_off.append(item)
            self.queue.put_nowait(item)

    queue = driver._tx
    driver._tx = WatchedQueue(queue)  # type: ignore[assignment]
    try:
        async with database.transaction() as connection:
            assert isinstance(connection, LoopSideConnection)
            rows = (await connection.execute(sa.text("SELECT 1 UNION ALL SELECT 2"))).all()
            await connection.execute(sa.text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            await connection.execute(sa.text("INSERT INTO probe VALUES (1)"))
        assert rows == [(1,), (2,)]
        assert handed_off == []  # no thread hand-off for any of it

        other = _another_writer(sqlite_url)
        threading.Timer(0.1, lambda: other.execute("COMMIT")).start()
        async with database.transaction() as connection:
            await connection.execute(sa.text("INSERT INTO probe VALUES (2)"))
        other.close()
        assert handed_off != []  # BEGIN waited for the other writer in the thread
    finally:
        driver._tx = queue
    async with database.transaction() as connection:
        assert (await connection.execute(sa.text("SELECT count(*) FROM probe"))).scalar_one() == 2
    await database.close()


async def test_a_transaction_cancelled_while_waiting_for_the_lock_leaves_it_free(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    await database.migrate()
    other = _another_writer(sqlite_url)

    async def write(value: int) -> None:
        async with database.transaction() as connection:
            await connection.execute(sa.text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            await connection.execute(sa.text("INSERT INTO probe VALUES (:x)"), {"x": value})

    waiting = asyncio.create_task(write(1))
    await asyncio.sleep(0.1)  # in the thread, waiting for the other writer
    waiting.cancel()
    threading.Timer(0.1, lambda: other.execute("COMMIT")).start()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    other.close()
    await write(2)  # the connection is free and outside any transaction
    async with database.transaction() as connection:
        assert (await connection.execute(sa.text("SELECT x FROM probe"))).scalars().all() == [2]
    await database.close()


async def test_a_failed_transaction_is_rolled_back_and_the_next_one_runs(sqlite_url: str) -> None:
    database = Database(sqlite_url)
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
    await database.close()


async def test_a_writer_in_another_process_is_waited_for_without_freezing_the_loop(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    await database.migrate()
    other = _another_writer(sqlite_url)

    async def write() -> int:
        async with database.transaction() as connection:
            await connection.execute(sa.text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            await connection.execute(sa.text("INSERT INTO probe VALUES (7)"))
            return 7

    task = asyncio.create_task(write())
    threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
    ticks = await _ticks_while(task, 0.3)
    assert await task == 7
    assert ticks >= 10  # the loop kept running while the writer waited for the lock
    other.close()
    async with database.transaction() as connection:
        assert (await connection.execute(sa.text("SELECT x FROM probe"))).scalar_one() == 7
    await database.close()


async def test_two_transactions_of_one_process_take_turns(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    await database.migrate()
    async with database.transaction() as connection:
        await connection.execute(sa.text("CREATE TABLE counter (n INTEGER)"))
        await connection.execute(sa.text("INSERT INTO counter VALUES (0)"))
    order: list[str] = []

    async def slow_writer() -> None:
        async with database.transaction() as connection:
            order.append("slow begins")
            await connection.execute(sa.text("UPDATE counter SET n = n + 1"))
            await asyncio.sleep(0.2)  # holds the write lock across an await
            order.append("slow commits")

    async def quick_writer() -> None:
        await asyncio.sleep(0.05)
        async with database.transaction() as connection:
            order.append("quick begins")
            await connection.execute(sa.text("UPDATE counter SET n = n * 10"))

    await asyncio.gather(slow_writer(), quick_writer())
    assert order == ["slow begins", "slow commits", "quick begins"]
    async with database.transaction() as connection:
        assert (await connection.execute(sa.text("SELECT n FROM counter"))).scalar_one() == 10
    await database.close()
