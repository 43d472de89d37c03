"""Kinds are data: outbox rows and schedules only of kinds the registry knows.

The database does not constrain them (a new kind needs no table rebuild); instead the
engine's unit of work hands out repositories that refuse an unknown kind when a row is
written, and start-up refuses stored rows of kinds no feature declares any more.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from handlers.registry import Registry, UnknownKind
from storage import schema
from storage.db import DbConnection
from storage.repositories import OutboxRepo, Repos, ScheduleRepo


class _CheckedOutbox(OutboxRepo):
    def __init__(self, connection: DbConnection, registry: Registry) -> None:
        super().__init__(connection)
        self.registry = registry

    async def enqueue(
        self, channel: str, chat_id: str, language: str, kind: str, payload: dict[str, Any], now: datetime
    ) -> int:
        self.registry.check_outbox_kind(kind)
        return await super().enqueue(channel, chat_id, language, kind, payload, now)


class _CheckedSchedules(ScheduleRepo):
    def __init__(self, connection: DbConnection, registry: Registry) -> None:
        super().__init__(connection)
        self.registry = registry

    async def arm(self, kind: str, ref: str, due_at: datetime) -> None:
        self.registry.check_schedule_kind(kind)
        await super().arm(kind, ref, due_at)


def checked_repos(connection: DbConnection, registry: Registry, repos: Repos) -> Repos:
    """`repos` whose outbox and schedules refuse kinds the registry does not know."""
    repos.outbox = _CheckedOutbox(connection, registry)
    repos.schedules = _CheckedSchedules(connection, registry)
    return repos


async def check_stored(connection: DbConnection, registry: Registry) -> None:
    """Refuse to start over pending rows that nothing could send or fire."""
    # TODO(lead, at merge): these two reads belong in storage's outbox and schedule repositories.
    outbox = schema.outbox
    schedules = schema.schedules
    unknown: list[str] = []
    rows = await connection.execute(sa.select(outbox.c.kind).where(outbox.c.state == "pending").distinct())
    for (kind,) in rows.all():
        try:
            registry.check_outbox_kind(kind)
        except UnknownKind as error:
            unknown.append(str(error))
    rows = await connection.execute(
        sa.select(schedules.c.kind).where(schedules.c.state == "pending").distinct()
    )
    for (kind,) in rows.all():
        try:
            registry.check_schedule_kind(kind)
        except UnknownKind as error:
            unknown.append(str(error))
    if unknown:
        raise UnknownKind("pending rows of unknown kinds: " + "; ".join(unknown))
