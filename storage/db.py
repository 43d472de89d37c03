"""Engine construction, SQLite tuning and migrations."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept plain sqlite:/postgresql: URLs and pick the async drivers for them."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


# How long taking SQLite's write lock may wait for another connection, in milliseconds.
BUSY_TIMEOUT_MS = 10_000
_BEGIN = re.compile(r"\s*BEGIN\b", re.IGNORECASE)


class LoopSideSqlite(aiosqlite.Connection):
    """An aiosqlite connection that runs its statements on the event loop itself.

    aiosqlite hands every call (execute, each fetch, cursor creation) to its own
    thread and back: four or so thread hand-offs per statement, each waiting for
    the GIL while the loop is busy, for statements that take SQLite microseconds.
    That made the hand-offs, not SQLite, the cost of a bot update.

    Running them inline is safe because nothing inline waits for a lock. In WAL
    mode readers never wait, and every transaction starts with BEGIN IMMEDIATE
    (see _tune_sqlite), so writes only happen while holding the write lock.
    BEGIN itself is tried at once, without waiting; only if another connection
    holds the lock does it go to the connection's thread and wait there, with
    the loop free, for up to BUSY_TIMEOUT_MS. SQLAlchemy never uses a connection
    for two calls at once, so the thread and the loop never touch it together.
    """

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        if args and isinstance(args[0], str) and _BEGIN.match(args[0]):
            try:
                return self._without_waiting(fn, *args, **kwargs)
            except _WouldWait:
                return await super()._execute(fn, *args, **kwargs)
        if fn == self._connection.close:
            # Closing the last connection checkpoints the WAL into the database file: real
            # writes, done in the thread like BEGIN's waiting.
            return await super()._execute(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    def _without_waiting(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a statement that takes a lock, or raise _WouldWait if the lock is taken."""
        connection = self._conn
        connection.execute("PRAGMA busy_timeout=0")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as error:
            if connection.in_transaction or "locked" not in str(error):
                raise
            raise _WouldWait from error
        finally:
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


class _WouldWait(Exception):
    pass


def _sqlite_creator(path: str) -> Callable[[], Any]:
    async def connect() -> LoopSideSqlite:
        # Created in the connection's thread, then used from the loop as well.
        connection = LoopSideSqlite(lambda: sqlite3.connect(path, check_same_thread=False), 64)
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
        return await connection

    return connect


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (below); pysqlite's implicit transactions
        # would start them DEFERRED.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        # A deferred transaction that later writes can fail with SQLITE_BUSY
        # without waiting when another connection wrote meanwhile; taking the
        # write lock up front makes busy_timeout apply instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The one async engine of the process."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        if self.url.startswith("sqlite"):
            path = sa.make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_async_engine(
                self.url, pool_size=5, max_overflow=5, async_creator=_sqlite_creator(path or ":memory:")
            )
            _tune_sqlite(self.engine)
        else:
            self.engine = create_async_engine(self.url, pool_size=10, max_overflow=10, pool_pre_ping=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as connection:
            yield connection

    async def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade_to_head)

    async def close(self) -> None:
        await self.engine.dispose()


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade_to_head(connection: sa.Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
