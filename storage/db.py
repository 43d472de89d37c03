"""Engine construction, SQLite tuning, transactions and migrations.

Both backends go through SQLAlchemy's public AsyncEngine: asyncpg for PostgreSQL,
aiosqlite for SQLite. aiosqlite runs every statement in a thread of its own per
connection, so a long query (the weekly digest on a big database) leaves the
event loop free to answer chats meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from storage.files import private_file

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# What repositories are handed, on either backend.
DbConnection = AsyncConnection

# Engines are made with hide_parameters=True: a failed statement's error (logged with its
# traceback) would otherwise quote the values, i.e. residents' texts, names and phone numbers.

# How long taking SQLite's write lock may wait for another writer, in milliseconds.
BUSY_TIMEOUT_MS = 10_000


class UnsupportedDatabase(ValueError):
    """A database URL of a kind Shouwang does not run on."""


class Busy(Exception):
    """SQLite's write lock was held (by another process: a CLI command, a backup) for longer than
    the busy timeout. Nothing of the transaction was stored; the same work may be tried again."""


def normalise_url(url: str) -> str:
    """Accept plain sqlite:/postgresql: URLs and pick the async drivers for them; refuse the rest
    (SQLAlchemy would look for a driver that is not installed, e.g. MySQLdb, and fail obscurely)."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite+aiosqlite:///", "postgresql+asyncpg://")):
        return url
    scheme, colon, _ = url.partition(":")
    kind = scheme.partition("+")[0] if colon and scheme else url[:20]
    raise UnsupportedDatabase(f"unsupported database {kind!r} (use sqlite:///PATH or postgresql://…)")


def _sqlite_engine(url: str, *, read_only: bool, pool_size: int, busy_timeout_ms: int) -> AsyncEngine:
    """An aiosqlite engine whose transactions begin as SQLAlchemy's pysqlite/aiosqlite recipe says.

    The driver's own implicit transactions would begin DEFERRED and only when a write comes;
    we switch them off and issue BEGIN ourselves when SQLAlchemy begins a transaction.
    """
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True)

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if read_only:
            # As a READ ONLY transaction on PostgreSQL: a write fails instead of happening.
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    # Writers take the write lock up front (IMMEDIATE): a deferred transaction that
    # writes later fails with SQLITE_BUSY at once, without the busy timeout, when
    # another connection wrote meanwhile. Readers begin deferred: in WAL mode they
    # read a snapshot and never wait for a writer.
    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        # Every call to the driver is a round trip to aiosqlite's thread and back, the main
        # cost of a short transaction: a statement through SQLAlchemy's cursor takes three
        # (cursor, execute, close), straight to aiosqlite (AdaptedConnection.run_async) one.
        adapted = cast(AdaptedConnection, connection.connection.dbapi_connection)
        adapted.run_async(lambda driver: driver.execute(begin))

    return engine


class Database:
    """The process's database: its transactions and its migrations."""

    def __init__(self, url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.url = normalise_url(url)
        self.busy_timeout_ms = busy_timeout_ms
        self.engine: AsyncEngine
        self.reader: AsyncEngine
        # SQLite has one writer at a time. Writers of this process take turns on this lock
        # (waiting with the loop free) instead of spinning in SQLite's busy handler; a writer
        # of another process (a CLI command) is waited for by the busy timeout, in aiosqlite's
        # thread. PostgreSQL needs no such turn.
        self._write_turn: asyncio.Lock | None = None
        self._write_holder: asyncio.Task[Any] | None = None
        if self.url.startswith("sqlite"):
            path = sa.make_url(self.url).database
            if not path or path == ":memory:":
                # Every pooled connection would get a database of its own.
                raise ValueError("SQLite needs a database file, not an in-memory database")
            # Made (or tightened to) 0600 before SQLite opens it: SQLite gives the -wal and -shm
            # files the database file's mode, so all three are private whatever the umask.
            private_file(Path(path))
            # One writer at a time uses it; the spare covers a test or tool using the engine directly.
            self.engine = _sqlite_engine(
                self.url, read_only=False, pool_size=1, busy_timeout_ms=busy_timeout_ms
            )
            self.reader = _sqlite_engine(
                self.url, read_only=True, pool_size=4, busy_timeout_ms=busy_timeout_ms
            )
            self._write_turn = asyncio.Lock()
        else:
            self.engine = create_async_engine(
                self.url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True
            )
            # Same pool; the option makes asyncpg begin READ ONLY and is undone when the
            # connection goes back to the pool.
            self.reader = self.engine.execution_options(postgresql_readonly=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends, rolled back if it raises.

        read_only=True is for long reports (the weekly digest): on SQLite it reads a
        snapshot on a connection of its own, without waiting for or holding up writers.

        Raises Busy when SQLite's write lock stayed taken longer than the busy timeout.
        """
        if read_only:
            async with self.reader.begin() as connection:
                yield connection
            return
        try:
            async with self._writer_turn(), self.engine.begin() as connection:
                yield connection
        except (sa.exc.OperationalError, sqlite3.OperationalError) as error:
            if self._write_turn is not None and _locked(error):
                raise Busy(f"the database stayed locked for {self.busy_timeout_ms} ms") from error
            raise

    @asynccontextmanager
    async def _writer_turn(self) -> AsyncIterator[None]:
        if self._write_turn is None:
            yield
            return
        task = asyncio.current_task()
        if task is not None and task is self._write_holder:
            # It would wait for itself forever.
            raise RuntimeError("a SQLite transaction was opened inside another one")
        # As long as SQLite's own busy timeout would have waited, and then fail the same way.
        try:
            async with asyncio.timeout(self.busy_timeout_ms / 1000):
                await self._write_turn.acquire()
        except TimeoutError as error:
            raise Busy(f"no turn to write within {self.busy_timeout_ms} ms") from error
        self._write_holder = task
        try:
            yield
        finally:
            self._write_holder = None
            self._write_turn.release()

    async def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        async with self._writer_turn(), self.engine.connect() as connection:
            if self.dialect == "sqlite":
                await _migrate_sqlite(connection)
            else:
                async with connection.begin():
                    await connection.run_sync(_upgrade_to_head)

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query (for /readyz; no lock, no write).

        SQLite: a fresh read-only connection to the file, in a thread, so a database file that
        was removed or replaced is noticed (the pool's open connections would still read the
        old one), and a missing file is not created empty. PostgreSQL: SELECT 1 on the pool,
        whose pre-ping replaces dead connections.
        """
        if self._write_turn is None:
            async with self.reader.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
            return
        path = sa.make_url(self.url).database
        assert path is not None
        await asyncio.to_thread(_ping_sqlite, path)

    async def close(self) -> None:
        await self.reader.dispose()
        await self.engine.dispose()


def _ping_sqlite(path: str) -> None:
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1)) as connection:
        # Our own table, not just "SELECT 1": an empty file that took the database's place fails.
        connection.execute("SELECT count(*) FROM alembic_version").fetchone()


def _locked(error: Exception) -> bool:
    """SQLITE_BUSY: "database is locked" (or "database table is locked" within a connection)."""
    return "locked" in str(error) or "SQLITE_BUSY" in str(error)


async def _migrate_sqlite(connection: AsyncConnection) -> None:
    """Migrate with foreign keys off, checked before commit: SQLite's procedure for rebuilding tables.

    A migration that changes a table on SQLite rebuilds it (Alembic's batch mode: copy,
    drop, rename), and dropping a table that others reference fails while foreign keys are
    enforced. The pragma only takes effect outside a transaction, so it is set on the
    driver's connection before SQLAlchemy begins one.
    """
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.execute("PRAGMA foreign_keys=OFF")
    try:
        async with connection.begin():
            await connection.run_sync(_upgrade_to_head)
            broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
            if broken:
                raise RuntimeError(f"a migration broke foreign keys: {broken[:5]}")
    finally:
        await driver.execute("PRAGMA foreign_keys=ON")


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade_to_head(connection: sa.Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
