"""Shared fixtures: a real database file (and PostgreSQL when configured), and the bot's runtime."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import normalise_url

POSTGRES_URL = os.environ.get("SHOUWANG_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


def _own_database(url: str) -> str:
    """This test process's own PostgreSQL database, so runs side by side cannot wipe each other's tables."""
    parsed = sa.make_url(normalise_url(url))
    return parsed.set(database=f"{parsed.database}_{os.getpid()}").render_as_string(hide_password=False)


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(sa.text(statement))
    await engine.dispose()


async def _reset_postgres(url: str) -> str:
    own = _own_database(url)
    name = sa.make_url(own).database
    engine = create_async_engine(normalise_url(url))
    async with engine.connect() as connection:
        found = await connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        exists = found.first()
    await engine.dispose()
    if not exists:
        await _admin(url, f'CREATE DATABASE "{name}"')
    engine = create_async_engine(own)
    async with engine.begin() as connection:
        await connection.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        await connection.execute(sa.text("CREATE SCHEMA public"))
    await engine.dispose()
    return own


@pytest.fixture(scope="session", autouse=True)
def _drop_own_postgres_database() -> Iterator[None]:
    yield
    if POSTGRES_URL:
        name = sa.make_url(_own_database(POSTGRES_URL)).database
        with contextlib.suppress(Exception):
            asyncio.run(_admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a fresh SQLite file, or a wiped PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shouwang.db'}"
    else:
        assert POSTGRES_URL is not None
        yield await _reset_postgres(POSTGRES_URL)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'shouwang.db'}"
