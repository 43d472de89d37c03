"""Personal data in storage: a person's rows, erasing them, report places and photos, dropped messages;
and a whole erasure leaving every points sum and every report as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from handlers.errors import DomainError
from handlers.features import REGISTRY
from handlers.privacy import rules as privacy
from storage import schema as t
from storage.db import Database
from storage.ledger import redemption_ref
from storage.personal import ERASED_RECIPIENT, PersonalDataRepo
from storage.repositories import Repos
from tests.harness import test_community as community_for_tests

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.close()


async def file_report(repos: Repos, reporter_id: int, ticket: str, state: str = "submitted") -> int:
    closed = state in ("resolved", "rejected", "duplicate")
    report = await repos.reports.create(
        ticket=ticket,
        reporter_id=reporter_id,
        category="fire",
        urgency="normal",
        description="楼道堆物",
        building="3",
        unit="2",
        latitude=31.23,
        longitude=121.47,
        anonymous=False,
        state=state,
        created_at=NOW,
        updated_at=NOW,
        closed_at=NOW if closed else None,
    )
    return report.id


async def add_photo(repos: Repos, report_id: int, sha: str, position: int = 0) -> int:
    media_id = await repos.media.add(sha, "image/jpeg", 10, 10, 100, f"{sha[:2]}/{sha}.jpg", NOW)
    await repos.reports.add_photo(report_id, "before", position, media_id)
    return media_id


async def rows(repos: Repos, query: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in (await repos.connection.execute(query)).all()]


async def test_a_persons_rows_are_read_deleted_and_cleared_by_table_and_column(db: Database) -> None:
    async with db.transaction() as connection:
        repos = Repos(connection)
        wang = (await repos.users.create("王", NOW)).id
        chen = (await repos.users.create("陈", NOW)).id
        await repos.users.add_identity("console", "wang", wang, "wang", NOW)
        await repos.users.add_identity("console", "chen", chen, "chen", NOW)
        await repos.users.update(wang, building="3", unit="2")
        personal = repos.of(PersonalDataRepo)
        (identity,) = await personal.rows("identities", "user_id", wang)
        assert (identity["external_id"], identity["chat_id"]) == ("wang", "wang")
        assert await personal.rows("users", "id", wang, ("display_name", "building")) == [
            {"display_name": "王", "building": "3"}
        ]
        assert await personal.delete("identities", "user_id", wang) == 1
        assert await personal.clear("users", "id", wang, ("building", "unit")) == 1
        assert (await repos.users.get(wang)).building is None  # type: ignore[union-attr]
        # Nobody else's rows are touched.
        assert len(await personal.rows("identities", "user_id", chen)) == 1
        with pytest.raises(KeyError):
            await personal.rows("no_such_table", "user_id", wang)


async def test_removing_report_photos_keeps_files_still_shown_elsewhere(db: Database) -> None:
    async with db.transaction() as connection:
        repos = Repos(connection)
        wang = (await repos.users.create("王", NOW)).id
        closed = await file_report(repos, wang, "2026-0001", "resolved")
        still_open = await file_report(repos, wang, "2026-0002")
        shared = await add_photo(repos, closed, "aa" * 32)
        await add_photo(repos, still_open, "aa" * 32)
        only_here = await add_photo(repos, closed, "bb" * 32, position=1)
        personal = repos.of(PersonalDataRepo)
        assert [p["sha256"] for p in await personal.report_photos(closed)] == ["aa" * 32, "bb" * 32]
        assert await personal.remove_report_photos([closed], ("before",)) == [f"bb/{'bb' * 32}.jpg"]
        assert await repos.reports.photos(closed) == []
        assert await repos.reports.photos(still_open) == [shared]
        assert await repos.media.get(only_here) is None
        assert await repos.media.get(shared) is not None
        # Nothing left to remove: nothing happens.
        assert await personal.remove_report_photos([closed], ("before",)) == []


async def test_retention_finds_closed_reports_past_it_once(db: Database) -> None:
    async with db.transaction() as connection:
        repos = Repos(connection)
        wang = (await repos.users.create("王", NOW)).id
        old = await file_report(repos, wang, "2026-0001", "rejected")
        still_open = await file_report(repos, wang, "2026-0002")
        personal = repos.of(PersonalDataRepo)
        assert await personal.reports_past_retention(NOW) == []
        assert await personal.reports_past_retention(NOW + timedelta(seconds=1)) == [old]
        await personal.forget_report_places([old])
        assert await personal.reports_past_retention(NOW + timedelta(days=1)) == []
        report = await repos.reports.get(old)
        assert report is not None
        assert (report.building, report.unit, report.latitude, report.longitude) == (None, None, None, None)
        assert (await repos.reports.get(still_open)).building == "3"  # type: ignore[union-attr]


async def test_messages_to_an_erased_person_are_dropped_not_deleted(db: Database) -> None:
    async with db.transaction() as connection:
        repos = Repos(connection)
        wang = (await repos.users.create("王", NOW)).id
        waiting = await repos.outbox.enqueue("console", "wang", "zh_CN", "message", {"text": "王"}, NOW)
        other = await repos.outbox.enqueue("console", "chen", "zh_CN", "message", {"text": "陈"}, NOW)
        broadcast = await connection.execute(
            t.broadcasts.insert()
            .values(
                author_id=wang,
                kind="fraud",
                priority="info",
                text="谨防诈骗",
                audience={"type": "community"},
                state="sent",
                created_at=NOW,
            )
            .returning(t.broadcasts.c.id)
        )
        broadcast_id = broadcast.scalar_one()
        await connection.execute(
            t.broadcast_recipients.insert().values(
                broadcast_id=broadcast_id, user_id=wang, channel="console", chat_id="wang", outbox_id=waiting
            )
        )
        personal = repos.of(PersonalDataRepo)
        assert await personal.drop_messages_to("console", ["wang"], NOW) == 1
        await personal.forget_recipient_chats(wang)
        o = t.outbox.c
        found = await rows(repos, sa.select(o.id, o.state, o.last_error, o.chat_id, o.payload))
        assert sorted(found) == sorted(
            [
                (waiting, "failed", ERASED_RECIPIENT, "erased", {}),
                (other, "pending", None, "chen", {"text": "陈"}),
            ]
        )
        (recipient,) = await rows(
            repos, sa.select(t.broadcast_recipients.c.id, t.broadcast_recipients.c.chat_id)
        )
        assert recipient[1] == f"erased:{recipient[0]}"


async def test_erasure_keeps_every_points_sum_and_every_report(db: Database) -> None:
    community = community_for_tests()
    async with db.transaction() as connection:
        repos = Repos(connection, community.tz)
        wang = (await repos.users.create("王", NOW)).id
        chen = (await repos.users.create("陈", NOW)).id
        await repos.users.add_identity("console", "wang", wang, "wang", NOW)
        await repos.users.update(wang, building="3", grid_key="g1", language="zh_CN")
        await repos.ledger.credit_user(wang, 40, "test:1", "points.award", {}, chen, NOW)
        await repos.ledger.credit_user(chen, 15, "test:2", "points.award", {}, wang, NOW)
        # A reward asked for and not yet decided: 10 of wang's 40 points are held for it.
        redemption = await repos.rewards.request(wang, "haircut", 10, NOW)
        assert redemption is not None
        await repos.ledger.reserve(
            wang, 10, redemption_ref(redemption.id), "points.reason.redemption_requested", {}, wang, NOW
        )
        assert await repos.ledger.balance(wang) == 30
        first = await file_report(repos, wang, "2026-0001", "resolved")
        await file_report(repos, wang, "2026-0002")
        await repos.reports.add_event(first, wang, None, "submitted", None, NOW)
    async with db.transaction() as connection:
        repos = Repos(connection, community.tz)
        before = {
            "accounts": await rows(repos, sa.select(t.point_accounts).order_by(t.point_accounts.c.id)),
            "ledger": await rows(repos, sa.select(t.ledger_entries).order_by(t.ledger_entries.c.id)),
            "earnings": await rows(
                repos, sa.select(t.point_earnings.c.points).order_by(t.point_earnings.c.user_id)
            ),
        }
        user = await repos.users.get(wang)
        assert user is not None
        erased = await privacy.erase(repos, community, REGISTRY.personal_data, user, NOW)
        assert (erased.identities, erased.messages_dropped) == (1, 0)
    async with db.transaction() as connection:
        repos = Repos(connection, community.tz)
        # Nothing booked is changed or removed; the one new entry gives back the held points of the
        # request nobody will collect.
        ledger = await rows(repos, sa.select(t.ledger_entries).order_by(t.ledger_entries.c.id))
        assert ledger[: len(before["ledger"])] == before["ledger"]
        assert len(ledger) == len(before["ledger"]) + 1
        assert (await repos.rewards.get(redemption.id)).state == "rejected"  # type: ignore[union-attr]
        accounts = await rows(repos, sa.select(t.point_accounts.c.id).order_by(t.point_accounts.c.id))
        assert accounts == [(row[0],) for row in before["accounts"]]
        earned = await rows(repos, sa.select(t.point_earnings.c.points).order_by(t.point_earnings.c.user_id))
        assert earned == before["earnings"]
        community_balance = (
            await connection.execute(sa.select(sa.func.sum(t.point_accounts.c.balance)))
        ).scalar_one()
        assert community_balance == 0
        assert await repos.ledger.balance(wang) == 40 and await repos.ledger.balance(chen) == 15
        held = sa.select(t.point_accounts.c.balance).where(t.point_accounts.c.kind == "reserved")
        assert (await connection.execute(held)).scalar_one() == 0
        reports = await repos.reports.by_reporter(wang)
        assert [r.ticket for r in reports] == ["2026-0002", "2026-0001"] and all(r.anonymous for r in reports)
        assert [e.actor_id for e in await repos.reports.events(first)] == [wang]
        user = await repos.users.get(wang)
        assert user is not None
        assert (user.display_name, user.building, user.grid_key, user.language) == (
            privacy.ERASED_NAME,
            None,
            None,
            None,
        )
        assert await repos.users.by_identity("console", "wang") is None
        # Erased once: a second erasure is refused, not repeated.
        with pytest.raises(DomainError) as refused:
            await privacy.erase(repos, community, REGISTRY.personal_data, user, NOW)
        assert refused.value.key == "erase.already_erased"
