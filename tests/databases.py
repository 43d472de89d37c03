"""Test databases, migrated once per test session instead of once per test.

Running every Alembic migration on a new database took 0.6-1.1 s of each database test's
set-up. Instead the migrations run once, through `Database(url).migrate()` as the bot does
it: into a template SQLite file, copied per test (a millisecond), and into this process's
PostgreSQL database, whose rows are deleted before each test. `Database.migrate()` on such
a database finds nothing to do. Tests of the migrations themselves ask for an empty database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from storage import schema
from storage.db import Database, normalise_url

T = TypeVar("T")

POSTGRES_URL = os.environ.get("SHOUWANG_TEST_POSTGRES_URL")


def _in_a_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end on a loop of its own, wherever the caller is.

    Templates are built on first use, which may be inside a test's running event loop
    (or beside pytest-asyncio's loop, which asyncio.run in this thread would unset).
    """

    async def run() -> T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await database.migrate()
    finally:
        await database.close()


class Templates:
    """This test process's migrated templates, built when first asked for."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sqlite: Path | None = None
        self._postgres_migrated = False
        self._postgres_empty_exists = False

    # --- SQLite -------------------------------------------------------------------------

    def sqlite_template(self) -> Path:
        if self._sqlite is None:
            path = self.directory / "template.db"
            _in_a_thread(lambda: _migrate(f"sqlite:///{path}"))
            # Everything into the database file, so that copying that one file copies it all.
            with sqlite3.connect(path) as connection:
                busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            connection.close()
            assert busy == 0, "the template is still in use"
            for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                side.unlink(missing_ok=True)
            self._sqlite = path
        return self._sqlite

    def migrated_sqlite(self, path: Path) -> str:
        """A migrated SQLite database at path (replacing any there); returns its URL."""
        path.parent.mkdir(parents=True, exist_ok=True)
        for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            side.unlink(missing_ok=True)
        shutil.copyfile(self.sqlite_template(), path)
        return f"sqlite:///{path}"

    # --- PostgreSQL -----------------------------------------------------------------------
    # Copying a template (CREATE DATABASE ... TEMPLATE, and DROP DATABASE before it) took 1-4 s
    # per test on the shared test machine, TRUNCATE of every table about 1 s (new files for
    # every table and index); deleting the rows and restarting the sequences takes a tenth of
    # that. So this process's own database is migrated once and wiped before each test.

    def _postgres_name(self, suffix: str = "") -> str:
        """Databases of this test process only, so runs side by side cannot wipe each other's."""
        assert POSTGRES_URL is not None
        return f"{sa.make_url(normalise_url(POSTGRES_URL)).database}_{os.getpid()}{suffix}"

    def _postgres_url(self, name: str) -> str:
        assert POSTGRES_URL is not None
        return (
            sa.make_url(normalise_url(POSTGRES_URL)).set(database=name).render_as_string(hide_password=False)
        )

    async def migrated_postgres(self) -> str:
        """This process's own PostgreSQL database, migrated and without a row; returns its URL."""
        name = self._postgres_name()
        url = self._postgres_url(name)
        if not self._postgres_migrated:
            await _create(name)
            await _migrate(url)
            await _refuse_seeded_rows(url)
            self._postgres_migrated = True
        else:
            await _raw(url, WIPE)
        return url

    async def empty_postgres(self) -> str:
        """A PostgreSQL database of this process without a table; returns its URL."""
        name = self._postgres_name("_empty")
        url = self._postgres_url(name)
        if not self._postgres_empty_exists:
            await _create(name)
            self._postgres_empty_exists = True
        else:
            await _raw(url, EMPTY)
        return url

    def drop_postgres(self) -> None:
        if POSTGRES_URL is None or not (self._postgres_migrated or self._postgres_empty_exists):
            return
        names = [self._postgres_name(), self._postgres_name("_empty")]
        # DROP DATABASE waits for a checkpoint: 3-27 s at the end of a run on the busy test machine.
        # Nothing waits for the drop, so it runs after the run, in a process of its own, detached.
        script = "import asyncio, sys; from tests.databases import _admin; asyncio.run(_admin(*sys.argv[1:]))"
        drops = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names]
        subprocess.run(
            ["sh", "-c", '"$@" >/dev/null 2>&1 &', "sh", sys.executable, "-c", script, *drops],
            cwd=Path(__file__).resolve().parents[1],
            check=True,
        )


# A test that failed may have left a connection open, holding locks the wipe would wait for.
_END_OTHER_SESSIONS = """
    PERFORM pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid();
"""

# The tables the migrations make; any other table is a test's own (a probe) and is dropped.
_DECLARED = ", ".join(f"'{name}'" for name in sorted([*schema.metadata.tables, "alembic_version"]))

# Every row of every table but Alembic's, and every sequence back to its start: ids and
# tickets begin at 1 again, as in a new database. Foreign keys are not checked meanwhile
# (replica role), since every table is emptied anyway.
WIPE = f"""
DO $$
DECLARE t record;
BEGIN
    {_END_OTHER_SESSIONS}
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public'
        AND tablename NOT IN ({_DECLARED})
    LOOP
        EXECUTE format('DROP TABLE public.%I CASCADE', t.tablename);
    END LOOP;
    PERFORM set_config('session_replication_role', 'replica', true);
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'
    LOOP
        EXECUTE format('DELETE FROM public.%I', t.tablename);
    END LOOP;
    PERFORM setval(format('public.%I', sequencename)::regclass, start_value, false)
    FROM pg_sequences WHERE schemaname = 'public';
END $$;
"""

EMPTY = f"""
DO $$
BEGIN
    {_END_OTHER_SESSIONS}
END $$;
DROP SCHEMA public CASCADE;
CREATE SCHEMA public;
"""


async def _raw(url: str, script: str) -> None:
    # asyncpg itself: its execute() without arguments runs a script of several statements.
    connection = await asyncpg.connect(sa.make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        await connection.execute(script)
    finally:
        await connection.close()


async def _refuse_seeded_rows(url: str) -> None:
    """The wipe would delete rows that migrations insert: then copy a template per test instead."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            tables = (
                await connection.execute(
                    sa.text(
                        "SELECT tablename FROM pg_tables"
                        " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                )
            ).scalars()
            seeded = [
                table
                for table in tables
                if (await connection.execute(sa.text(f'SELECT EXISTS (SELECT FROM "{table}")'))).scalar()
            ]
    finally:
        await engine.dispose()
    assert not seeded, f"migrations insert rows into {seeded}, which the wipe between tests would delete"


async def _create(name: str) -> None:
    await _admin(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        f'CREATE DATABASE "{name}"',
        # Tests commit thousands of times and never need a commit to survive a server crash:
        # not waiting for the WAL to reach the disk made a commit 3-4 times faster on a busy machine.
        f'ALTER DATABASE "{name}" SET synchronous_commit = off',
    )


async def _admin(*statements: str) -> None:
    assert POSTGRES_URL is not None
    engine = create_async_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(sa.text(statement))
    finally:
        await engine.dispose()


_templates: Templates | None = None


def use(templates: Templates | None) -> None:
    """Set by the session fixture in tests/conftest.py."""
    global _templates
    _templates = templates


def templates() -> Templates:
    assert _templates is not None, "tests/conftest.py sets up the templates for the session"
    return _templates


def migrated_sqlite(path: Path) -> str:
    """A migrated SQLite database at path: for runtimes that tests build on a file of their own."""
    return templates().migrated_sqlite(path)
