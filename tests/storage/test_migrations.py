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
    assert version == "0013"
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
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade_to("0003"))
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
    await _execute_at(database, rows_of_0003)
    await database.migrate()
    async with database.transaction() as connection:
        repos = Repos(connection)
        assert [e.to_state for e in await repos.reports.events(1)] == ["submitted"]
        assert [(m.chat_id, m.payload) for m in await repos.outbox.all()] == [("c1", {"x": 1})]
        await repos.outbox.enqueue("console", "c1", "zh_CN", "broadcast", {"broadcast_id": 1}, NOW)
    await database.close()


async def test_outbox_kinds_are_not_constrained_and_referenced_outbox_rows_survive(
    empty_database_url: str,
) -> None:
    """0006 drops the CHECK on outbox.kind, rebuilding the outbox on SQLite while broadcasts reference it."""
    database = Database(empty_database_url)
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade_to("0005"))
    await _execute_at(
        database,
        [
            "INSERT INTO users (id, display_name, role, created_at) VALUES (1, '王阿姨', 'resident', :t)",
            "INSERT INTO outbox (id, channel, chat_id, language, kind, payload, next_attempt_at, created_at)"
            " VALUES (5, 'console', 'c1', 'zh_CN', 'broadcast', '{\"broadcast_id\": 1}', :t, :t)",
            "INSERT INTO broadcasts (id, author_id, kind, priority, text, audience, state, created_at)"
            " VALUES (1, 1, 'fraud', 'urgent', '谨防诈骗', '{\"type\": \"community\"}', 'sending', :t)",
            "INSERT INTO broadcast_recipients (broadcast_id, user_id, channel, chat_id, outbox_id)"
            " VALUES (1, 1, 'console', 'c1', 5)",
        ],
    )
    with pytest.raises(IntegrityError):  # the CHECK of 0005 still holds there
        await _execute_at(
            database,
            [
                "INSERT INTO outbox (channel, chat_id, language, kind, payload, next_attempt_at, created_at)"
                " VALUES ('console', 'c1', 'zh_CN', 'digest', '{}', :t, :t)"
            ],
        )
    await database.migrate()
    async with database.transaction() as connection:
        repos = Repos(connection)
        # A kind no CHECK ever listed: the feature registry, not the schema, decides which exist.
        digest = await repos.outbox.enqueue("console", "c1", "zh_CN", "digest", {"week": 21}, NOW)
        kinds = (await connection.execute(sa.text("SELECT id, kind FROM outbox"))).all()
        assert sorted(tuple(row) for row in kinds) == sorted([(5, "broadcast"), (digest, "digest")])
        referenced = await connection.execute(sa.text("SELECT outbox_id FROM broadcast_recipients"))
        assert referenced.scalar_one() == 5
    # And back: the CHECK returns once no row breaks it. (Downgrades run with foreign keys
    # enforced, so here nothing may reference the outbox while SQLite rebuilds it.)
    async with database.transaction() as connection:
        await connection.execute(sa.text("DELETE FROM outbox WHERE kind = 'digest'"))
        await connection.execute(sa.text("UPDATE broadcast_recipients SET outbox_id = NULL"))
    async with database.engine.begin() as connection:
        await connection.run_sync(lambda c: command.downgrade(alembic_config(c), "0005"))
    with pytest.raises(IntegrityError):
        await _execute_at(
            database,
            [
                "INSERT INTO outbox (channel, chat_id, language, kind, payload, next_attempt_at, created_at)"
                " VALUES ('console', 'c1', 'zh_CN', 'digest', '{}', :t, :t)"
            ],
        )
    await database.migrate()
    await database.close()


def _upgrade_to(revision: str) -> Any:
    return lambda connection: command.upgrade(alembic_config(connection), revision)


async def _execute_at(database: Database, statements: list[str]) -> None:
    """Plain SQL, for rows as an older schema has them (today's repositories know columns it lacks)."""
    async with database.transaction() as connection:
        for statement in statements:
            text = sa.text(statement)
            if ":t" in statement:
                text = text.bindparams(sa.bindparam("t", NOW, UTCDateTime()))
            await connection.execute(text)


async def test_wecom_staff_granted_before_0010_become_reachable(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade_to("0007"))
    await _execute_at(
        database,
        [
            "INSERT INTO users (id, display_name, role, created_at) VALUES (1, 'w', 'grid_worker', :t)",
            "INSERT INTO users (id, display_name, role, created_at) VALUES (2, 't', 'police', :t)",
            "INSERT INTO identities (channel, external_id, user_id, chat_id, last_seen_at)"
            " VALUES ('wecom', 'LiXiaoMing', 1, NULL, :t)",
            # On Telegram the person must press Start first: no chat until then.
            "INSERT INTO identities (channel, external_id, user_id, chat_id, last_seen_at)"
            " VALUES ('telegram', '3001', 2, NULL, :t)",
        ],
    )
    await database.migrate()
    async with database.transaction() as connection:
        repos = Repos(connection)
        assert [i.chat_id for i in await repos.users.identities(1)] == ["LiXiaoMing"]
        assert [i.chat_id for i in await repos.users.identities(2)] == [None]
    await database.close()


async def test_outbox_rows_may_expire_and_going_back_calls_them_failed(empty_database_url: str) -> None:
    """0011 rebuilds the outbox on SQLite (a new state, a new column): rows survive both ways."""
    database = Database(empty_database_url)
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade_to("0010"))
    await _execute_at(
        database,
        [
            "INSERT INTO outbox (id, channel, chat_id, language, kind, payload, next_attempt_at, created_at)"
            " VALUES (7, 'console', 'c1', 'zh_CN', 'broadcast', '{\"broadcast_id\": 1}', :t, :t)"
        ],
    )
    with pytest.raises(IntegrityError):
        await _execute_at(database, ["UPDATE outbox SET state = 'expired' WHERE id = 7"])
    await database.migrate()
    async with database.transaction() as connection:
        outbox = Repos(connection).outbox
        await outbox.mark_retry(7, "Bad Gateway", NOW + timedelta(minutes=1), NOW)
        await outbox.mark_final(7, "expired", "Bad Gateway")
        [row] = await outbox.all()
    assert (row.state, row.failing_since, row.payload) == ("expired", NOW, {"broadcast_id": 1})
    async with database.engine.begin() as connection:
        await connection.run_sync(lambda c: command.downgrade(alembic_config(c), "0010"))
    async with database.transaction() as connection:
        states = (await connection.execute(sa.text("SELECT id, state FROM outbox"))).all()
    assert [tuple(r) for r in states] == [(7, "failed")]
    await database.migrate()
    await database.close()
