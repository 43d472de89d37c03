"""Engine construction, SQLite tuning and migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept plain sqlite:/postgresql: URLs and pick the async drivers for them."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


# How long taking SQLite's write lock may wait for another process, in milliseconds.
BUSY_TIMEOUT_MS = 10_000


class LoopSideConnection:
    """The async connection the repositories use, over a SQLite connection run on the event loop.

    SQLite answers a statement in microseconds, while SQLAlchemy's async adaptation
    (a greenlet switch and an awaited driver call for every cursor operation) cost
    several times that: a transaction of three statements took 270 µs through
    AsyncConnection and 75 µs through SQLAlchemy's plain pysqlite Connection. So on
    SQLite the statements run inline, through the plain Connection, behind the
    awaitable methods of AsyncConnection that the repositories use.

    Nothing inline waits for a lock: in WAL mode readers never wait, and each
    transaction begins with BEGIN IMMEDIATE, taken at once or else waited for in
    aiosqlite's thread (see SqliteStore), so every write holds the lock.
    """

    def __init__(self, connection: sa.Connection) -> None:
        self.sync_connection = connection

    @property
    def dialect(self) -> sa.Dialect:
        return self.sync_connection.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> sa.CursorResult[Any]:
        return self.sync_connection.execute(statement, parameters)

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[sa.NestedTransaction]:
        with self.sync_connection.begin_nested() as savepoint:
            yield savepoint


# What repositories are handed: AsyncConnection on PostgreSQL, LoopSideConnection on SQLite.
DbConnection = AsyncConnection | LoopSideConnection


def _tune_sqlite(engine: sa.Engine, *, begin_immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (IMMEDIATE, see SqliteStore); pysqlite's implicit
        # transactions would start them DEFERRED.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    if begin_immediate:

        @event.listens_for(engine, "begin")
        def on_begin(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class SqliteStore:
    """SQLite transactions on the event loop, one at a time within the process.

    A SQLite database has one writer at a time, and every transaction here writes
    (BEGIN IMMEDIATE: a deferred one that later writes can fail with SQLITE_BUSY
    without waiting when another connection wrote meanwhile). Transactions of this
    process queue on an asyncio lock, which costs nothing while it is free;
    another process holding the write lock (a CLI command, say) is waited for in
    aiosqlite's thread, for up to BUSY_TIMEOUT_MS, with the loop free.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        # The connection: aiosqlite opens it, waits for the lock and closes it in its thread, and
        # SQLAlchemy's plain pysqlite dialect runs the statements on it from the loop. One is all
        # the lock lets through.
        self._driver: aiosqlite.Connection | None = None
        self.engine = sa.create_engine(
            f"sqlite:///{path}",
            creator=self._sqlite3_connection,
            poolclass=sa.QueuePool,
            pool_size=1,
            max_overflow=0,
        )
        _tune_sqlite(self.engine, begin_immediate=False)
        self._turn = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None

    def _sqlite3_connection(self) -> sqlite3.Connection:
        assert self._driver is not None, "opened by transaction() first"
        return self._driver._conn  # aiosqlite's own sqlite3 connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[LoopSideConnection]:
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            # It would wait for itself forever.
            raise RuntimeError("a SQLite transaction was opened inside another one")
        # As long as SQLite's own busy timeout would have waited, and then fail the same way.
        async with asyncio.timeout(BUSY_TIMEOUT_MS / 1000):
            await self._turn.acquire()
        self._holder = task
        try:
            if self._driver is None:
                driver = aiosqlite.connect(self.path, check_same_thread=False)
                driver._thread.daemon = True  # as SQLAlchemy does for aiosqlite's connections
                self._driver = await driver
            with self.engine.connect() as connection:
                await _begin_immediate(self._driver, connection.connection.dbapi_connection)
                with connection.begin():  # commits, or rolls back, the BEGIN issued above
                    yield LoopSideConnection(connection)
        finally:
            self._holder = None
            self._turn.release()

    async def close(self) -> None:
        if self._driver is not None:
            # In aiosqlite's thread: closing the last connection checkpoints the WAL into the
            # database file, real writes.
            await self._driver.close()
            self._driver = None
        self.engine.dispose()  # the pool's hold on the connection closed above


async def _begin_immediate(driver: aiosqlite.Connection, dbapi_connection: Any) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        dbapi_connection.execute("BEGIN IMMEDIATE")
        return
    except sqlite3.OperationalError as error:
        if "locked" not in str(error):
            raise
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    async def begin_waiting() -> None:
        cursor = await driver.execute("BEGIN IMMEDIATE")  # in aiosqlite's thread, busy timeout and all
        await cursor.close()

    waiting = asyncio.ensure_future(begin_waiting())
    try:
        await asyncio.shield(waiting)
    except asyncio.CancelledError:
        # The thread goes on using the connection: it must be done before the connection is
        # handed back (and rolled back, which ends a BEGIN that succeeded after all).
        await asyncio.wait([waiting])
        raise


class Database:
    """The process's database: its transactions and its migrations."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.sqlite: SqliteStore | None = None
        if self.url.startswith("sqlite"):
            path = sa.make_url(self.url).database
            if not path or path == ":memory:":
                # Transactions and migrations use connections of their own: each would get a new database.
                raise ValueError("SQLite needs a database file, not an in-memory database")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.sqlite = SqliteStore(path)
            # Migrations (which may take a while on a big database) run through aiosqlite's
            # thread, with the loop free between statements.
            self.engine = create_async_engine(self.url, pool_size=5, max_overflow=5)
            _tune_sqlite(self.engine.sync_engine, begin_immediate=True)
        else:
            self.engine = create_async_engine(self.url, pool_size=10, max_overflow=10, pool_pre_ping=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DbConnection]:
        if self.sqlite is not None:
            async with self.sqlite.transaction() as connection:
                yield connection
        else:
            async with self.engine.begin() as postgres_connection:
                yield postgres_connection

    async def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade_to_head)

    async def close(self) -> None:
        if self.sqlite is not None:
            await self.sqlite.close()
        await self.engine.dispose()


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade_to_head(connection: sa.Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
