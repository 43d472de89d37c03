"""Migrations from an empty database to head, and the invariants the schema itself enforces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.repositories import Repos
from storage.schema import metadata

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)


async def test_migrations_build_exactly_the_declared_schema(database_url: str) -> None:
    database = Database(database_url)
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
    assert version == "0004"
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


async def test_ticket_counter_and_state_moves_are_race_safe(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        repos = Repos(connection)
        assert [await repos.reports.next_ticket_number(2026) for _ in range(3)] == [1, 2, 3]
        assert await repos.reports.next_ticket_number(2027) == 1
        user = await repos.users.create("x", NOW)
        report = await repos.reports.create(
            ticket="2026-0009",
            reporter_id=user.id,
            category="fire",
            urgency="normal",
            description="x",
            anonymous=False,
            state="submitted",
            created_at=NOW,
            updated_at=NOW,
        )
        assert await repos.reports.move(report.id, "submitted", "acknowledged", NOW)
        # The second of two simultaneous clicks finds the state already changed.
        assert not await repos.reports.move(report.id, "submitted", "acknowledged", NOW)


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


async def test_schedules_fire_once_and_can_be_rearmed(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        schedules = Repos(connection).schedules
        await schedules.arm("draft_expiry", "1:console", NOW)
        await schedules.arm("draft_expiry", "1:console", NOW + timedelta(minutes=30))
        assert [s.due_at for s in await schedules.due(NOW + timedelta(minutes=29))] == []
        due = await schedules.due(NOW + timedelta(minutes=30))
        assert len(due) == 1
        assert await schedules.claim(due[0].id, NOW)
        assert not await schedules.claim(due[0].id, NOW)
        await schedules.cancel("draft_expiry", "1:console")
        assert (await schedules.get("draft_expiry", "1:console")).state == "done"
