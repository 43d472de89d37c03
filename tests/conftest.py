"""Shared fixtures: real databases (SQLite, and PostgreSQL when configured), migrated or empty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests import databases
from tests.databases import POSTGRES_URL

BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


@pytest.fixture(scope="session", autouse=True)
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[databases.Templates]:
    """Migrated templates, built on first use; this process's PostgreSQL databases dropped at the end."""
    templates = databases.Templates(tmp_path_factory.mktemp("templates"))
    databases.use(templates)
    try:
        yield templates
    finally:
        databases.use(None)
        templates.drop_postgres()


@pytest.fixture(params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, _templates: databases.Templates
) -> AsyncIterator[str]:
    """A database migrated to head, of this test's own: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        yield _templates.migrated_sqlite(tmp_path / "shouwang.db")
    else:
        yield await _templates.migrated_postgres()


@pytest.fixture(params=BACKENDS)
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database without any table, for the tests of the migrations themselves."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shouwang.db'}"
    else:
        yield await databases.templates().empty_postgres()


@pytest.fixture
def sqlite_url(tmp_path: Path, _templates: databases.Templates) -> str:
    """A SQLite database file migrated to head."""
    return _templates.migrated_sqlite(tmp_path / "shouwang.db")
