"""Migrations from an empty database to head, and the invariants the schema itself enforces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from storage.db import Database, alembic_config
from storage.repositories import Repos
from storage.schema import metadata
from storage.types import UTCDateTime

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)


async def test_migrations_build_exactly_the_declared_schema(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    await database.migrate()
    await database.migrate()  # a second run is a no-op

    def differences(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return [
            d
            for d in compare_metadata(context, metadata)
            if d[0] != "remove_table" or d[1].name != "alembic_version"
        ]

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
        version = (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert version == "0005"
    await database.close()


@pytest.fixture
async def repos_db(database_url: str) -> Database:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.close()


async def test_report_state_and_rating_are_constrained(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        repos = Repos(connection)
        user = await repos.users.create("王阿姨", NOW)
        report = await repos.reports.create(
            ticket="2026-0001",
            reporter_id=user.id,
            category="fire",
            urgency="normal",
            description="x",
            anonymous=False,
            state="submitted",
            created_at=NOW,
            updated_at=NOW,
        )
    with pytest.raises(IntegrityError):
        async with repos_db.transaction() as connection:
            await connection.execute(
                sa.text("UPDATE reports SET state = 'lost' WHERE id = :id"), {"id": report.id}
            )
    with pytest.raises(IntegrityError):
        async with repos_db.transaction() as connection:
            await connection.execute(
                sa.text("UPDATE reports SET rating = 6 WHERE id = :id"), {"id": report.id}
            )
    with pytest.raises(IntegrityError):
        async with repos_db.transaction() as connection:
            await Repos(connection).reports.create(
                ticket="2026-0001",
                reporter_id=user.id,
                category="fire",
                urgency="normal",
                description="y",
                anonymous=False,
                state="submitted",
                created_at=NOW,
                updated_at=NOW,
            )


async def test_times_come_back_as_aware_utc(repos_db: Database) -> None:
    shanghai_morning = datetime(2026, 5, 18, 9, 0, tzinfo=UTC) + timedelta(hours=0)
    async with repos_db.transaction() as connection:
        user = await Repos(connection).users.create("x", shanghai_morning)
    async with repos_db.transaction() as connection:
        loaded = await Repos(connection).users.get(user.id)
    assert loaded is not None
    assert loaded.created_at == shanghai_morning and loaded.created_at.tzinfo is not None
    with pytest.raises(sa.exc.StatementError):
        async with repos_db.transaction() as connection:
            await Repos(connection).users.create("naive", datetime(2026, 1, 1))  # noqa: DTZ001


async def test_upgrades_keep_the_data_of_tables_they_rebuild(empty_database_url: str) -> None:
    """0004 adds a column to reports and 0005 rebuilds the outbox on SQLite: nothing may go missing."""
    database = Database(empty_database_url)

    def upgrade_to(revision: str) -> Any:
        return lambda connection: command.upgrade(alembic_config(connection), revision)

    async with database.engine.begin() as connection:
        await connection.run_sync(upgrade_to("0003"))
    # Rows as the 0003 schema has them (today's repositories know columns it lacks).
    rows_of_0003 = [
        "INSERT INTO users (id, display_name, role, created_at) VALUES (1, '王阿姨', 'resident', :t)",
        "INSERT INTO reports (id, ticket, reporter_id, category, urgency, description, anonymous, state,"
        " created_at, updated_at) VALUES (1, '2026-0001', 1, 'fire', 'normal', '楼道堆物', false,"
        " 'submitted', :t, :t)",
        "INSERT INTO report_events (report_id, actor_id, to_state, created_at)"
        " VALUES (1, 1, 'submitted', :t)",
        "INSERT INTO outbox (channel, chat_id, language, kind, payload, next_attempt_at, created_at)"
        " VALUES ('console', 'c1', 'zh_CN', 'message', '{\"x\": 1}', :t, :t)",
    ]
    async with database.transaction() as connection:
        for statement in rows_of_0003:
            await connection.execute(sa.text(statement).bindparams(sa.bindparam("t", NOW, UTCDateTime())))
    await database.migrate()
    async with database.transaction() as connection:
        repos = Repos(connection)
        assert [e.to_state for e in await repos.reports.events(1)] == ["submitted"]
        assert [(m.chat_id, m.payload) for m in await repos.outbox.all()] == [("c1", {"x": 1})]
        await repos.outbox.enqueue("console", "c1", "zh_CN", "broadcast", {"broadcast_id": 1}, NOW)
    with pytest.raises(IntegrityError):
        async with database.transaction() as connection:
            await Repos(connection).outbox.enqueue("console", "c1", "zh_CN", "bogus", {}, NOW)
    await database.close()
