"""The outbox: every message the bot means to send, kept apart from what caused it until it is sent.

A delivery worker drains it per chat in order; a crash or restart resumes
without loss or duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam

from storage import schema as t
from storage.db import DbConnection
from storage.kinds import Kinds
from storage.models import OutboxMessage
from storage.rows import Repo, all_models
from storage.types import UTCDateTime

PENDING = "pending"
SENT = "sent"
# Given up after the kind's horizon of transient failures (a long platform outage).
EXPIRED = "expired"


class OutboxRepo(Repo):
    """Queueing and draining run for many updates and every delivery pass (bench/throughput.py,
    bench/broadcast.py): their statements are prebuilt."""

    def __init__(self, connection: DbConnection, kinds: Kinds | None = None) -> None:
        super().__init__(connection)
        # None: any kind (storage tests, migrations); the engine always passes its features' kinds.
        self.kinds = kinds
        # Lets the caller wake the delivery worker only when there is something new.
        self.enqueued = 0

    async def enqueue(
        self,
        channel: str,
        chat_id: str,
        language: str,
        kind: str,
        payload: dict[str, Any],
        now: datetime,
        *,
        priority: int | None = None,
    ) -> int:
        """Queue a row; `priority` (lower goes first) overrides the one the kind declares."""
        if self.kinds is not None:
            self.kinds.check_outbox(kind)
        if priority is None:
            priority = self.kinds.priority(kind) if self.kinds is not None else 0
        self.enqueued += 1
        insert = self.prebuilt(lambda: t.outbox.insert().returning(t.outbox.c.id))
        values = {"channel": channel, "chat_id": chat_id, "language": language, "kind": kind}
        row = {**values, "payload": payload, "next_attempt_at": now, "created_at": now, "priority": priority}
        return int((await self.c.execute(insert, row)).scalar_one())

    async def due(self, now: datetime, limit: int = 100) -> list[OutboxMessage]:
        o = t.outbox.c
        rows = await self.c.execute(
            sa.select(t.outbox)
            .where(o.state == PENDING, o.next_attempt_at <= now)
            .order_by(o.priority, o.id)
            .limit(limit)
        )
        return all_models(OutboxMessage, rows)

    async def mark_sent(self, message_ids: Sequence[int], now: datetime) -> None:
        """Rows the platform accepted: one statement for a whole batch."""
        if message_ids:
            update = self.prebuilt(
                lambda: (
                    t.outbox.update()
                    .where(t.outbox.c.id.in_(bindparam("ids", expanding=True)))
                    .values(state=SENT, sent_at=bindparam("now"), attempts=t.outbox.c.attempts + 1)
                )
            )
            await self.c.execute(update, {"ids": list(message_ids), "now": now})

    async def heads(
        self, now: datetime, channels: Iterable[str], limit: int, below: int | None = None
    ) -> list[OutboxMessage]:
        """Per chat, its oldest pending row if it is due now: a chat's messages go out in order.

        A row waiting to be retried holds back its chat's later rows; a row merely
        scheduled for later (quiet hours) does not.

        Lanes: chats are taken by the most urgent priority among their waiting rows, then by
        their head's id. A chat's head goes with the priority of the most urgent row behind it,
        so a report card queued to a police group behind that group's digest does not wait
        behind a whole broadcast; the rows returned carry that priority. `below`: only chats
        with a row more urgent than that (what should overtake the rows a drain has in hand).
        """

        parameters: dict[str, Any] = {"now": now, "channels": list(channels), "limit": limit}
        if below is None:
            statement = self.prebuilt(lambda: _heads(urgent_only=False))
        else:
            statement = self.prebuilt(lambda: _heads(urgent_only=True))
            parameters["below"] = below
        return all_models(OutboxMessage, await self.c.execute(statement, parameters))

    async def next_due(self, now: datetime, channels: Iterable[str]) -> datetime | None:
        """When the next pending row of these channels falls due, if any is waiting for later."""
        select = self.prebuilt(
            lambda: sa.select(sa.func.min(t.outbox.c.next_attempt_at)).where(
                t.outbox.c.state == PENDING,
                t.outbox.c.channel.in_(bindparam("channels", expanding=True)),
                t.outbox.c.next_attempt_at > bindparam("now"),
            )
        )
        due: datetime | None = (
            await self.c.execute(select, {"now": now, "channels": list(channels)})
        ).scalar()
        return due

    async def mark_retry(
        self, message_id: int, error: str, next_attempt_at: datetime, failed_at: datetime | None = None
    ) -> None:
        """A failed attempt, to be tried again at `next_attempt_at`. The first `failed_at` given
        starts `failing_since`, from which the kind's horizon is counted."""
        o = t.outbox.c
        values: dict[str, Any] = {
            "last_error": error[:500],
            "next_attempt_at": next_attempt_at,
            "attempts": o.attempts + 1,
        }
        if failed_at is not None:
            values["failing_since"] = sa.func.coalesce(o.failing_since, sa.literal(failed_at, UTCDateTime()))
        await self.c.execute(t.outbox.update().where(o.id == message_id).values(**values))

    async def mark_final(self, message_id: int, state: str, error: str) -> None:
        await self.c.execute(
            t.outbox.update()
            .where(t.outbox.c.id == message_id)
            .values(state=state, last_error=error[:500], attempts=t.outbox.c.attempts + 1)
        )

    async def counts(self) -> dict[str, int]:
        rows = await self.c.execute(sa.select(t.outbox.c.state, sa.func.count()).group_by(t.outbox.c.state))
        return {state: int(count) for state, count in rows.all()}

    async def backlog(self, now: datetime) -> list[tuple[str, str, str, int]]:
        """(channel, kind, state, count) of the rows not delivered yet, for /metrics: "retrying"
        (failed at least once), "scheduled" (held for later), "due" (the rest). Only pending
        rows are read, through the (state, next_attempt_at) index, however long the history."""
        o = t.outbox.c
        state = sa.case(
            (o.attempts > 0, "retrying"), (o.next_attempt_at > now, "scheduled"), else_="due"
        ).label("state")
        rows = await self.c.execute(
            sa.select(o.channel, o.kind, state, sa.func.count())
            .where(o.state == PENDING)
            .group_by(o.channel, o.kind, state)
        )
        return [(channel, kind, when, int(count)) for channel, kind, when, count in rows.all()]

    async def all(self) -> list[OutboxMessage]:
        return all_models(OutboxMessage, await self.c.execute(sa.select(t.outbox).order_by(t.outbox.c.id)))

    async def pending_kinds(self) -> set[str]:
        rows = await self.c.execute(sa.select(t.outbox.c.kind).where(t.outbox.c.state == PENDING).distinct())
        return set(rows.scalars())


def _heads(*, urgent_only: bool) -> sa.Select[Any]:
    o = t.outbox.c
    now: sa.BindParameter[datetime] = bindparam("now")
    per_chat = (
        sa.select(sa.func.min(o.id).label("id"), sa.func.min(o.priority).label("priority"))
        .where(
            o.state == PENDING,
            o.channel.in_(bindparam("channels", expanding=True)),
            sa.or_(o.next_attempt_at <= now, o.attempts > 0),
        )
        .group_by(o.channel, o.chat_id)
    )
    if urgent_only:
        # Chats with a more urgent row; their head is still their oldest row, whatever its lane.
        per_chat = per_chat.where(
            sa.tuple_(o.channel, o.chat_id).in_(
                sa.select(o.channel, o.chat_id).where(o.state == PENDING, o.priority < bindparam("below"))
            )
        )
    first_pending_per_chat = per_chat.subquery()
    # The row with its chat's priority: what it is sent with (its pace, see Lane).
    columns = [column for column in t.outbox.c if column.name != "priority"]
    return (
        sa.select(*columns, first_pending_per_chat.c.priority)
        .join(first_pending_per_chat, o.id == first_pending_per_chat.c.id)
        .where(o.next_attempt_at <= now)
        .order_by(first_pending_per_chat.c.priority, o.id)
        .limit(bindparam("limit"))
    )
