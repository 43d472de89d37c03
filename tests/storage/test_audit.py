"""The audit log keeps every entry and refuses to change or lose one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from storage import schema as t
from storage.audit import VIA_CLI
from storage.db import Database
from storage.repositories import Repos

NOW = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)


async def test_entries_come_back_newest_first_and_filtered(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        audit = Repos(connection).audit
        await audit.record(NOW, "role.grant", via=VIA_CLI, subject_id=7, detail={"role": "police"})
        await audit.record(
            NOW + timedelta(hours=1), "report.reveal_reporter", via="telegram", actor_id=7, target="report:3"
        )
    async with repos_db.transaction(read_only=True) as connection:
        audit = Repos(connection).audit
        everything = await audit.entries()
        recent = await audit.entries(since=NOW + timedelta(minutes=30))
        about_seven = await audit.entries(subject_id=7)
    assert [e.action for e in everything] == ["report.reveal_reporter", "role.grant"]
    assert everything[1].detail == {"role": "police"} and everything[1].via == VIA_CLI
    assert everything[1].at == NOW
    assert [e.target for e in recent] == ["report:3"]
    assert [e.action for e in about_seven] == ["role.grant"]


@pytest.mark.parametrize(
    "change",
    [sa.update(t.audit_log).values(action="nothing"), sa.delete(t.audit_log)],
    ids=["update", "delete"],
)
async def test_an_entry_cannot_be_changed_or_deleted(repos_db: Database, change: sa.Executable) -> None:
    async with repos_db.transaction() as connection:
        await Repos(connection).audit.record(NOW, "role.revoke", via=VIA_CLI, subject_id=1)
    with pytest.raises(DBAPIError, match="append-only"):
        async with repos_db.transaction() as connection:
            await connection.execute(change)
    async with repos_db.transaction(read_only=True) as connection:
        assert [e.action for e in await Repos(connection).audit.entries()] == ["role.revoke"]
