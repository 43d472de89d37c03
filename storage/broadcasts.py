"""Broadcasts, their recipients and acknowledgements, and residents' subscriptions.

A broadcast's recipients are listed once (guarded by `expanded_at`), each with
the outbox row that carries their copy; delivery figures are read back from
those outbox rows, so they are always what the delivery worker recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from storage import schema as t
from storage.db import DbConnection
from storage.models import AckShare, Broadcast, BroadcastCandidate, BroadcastFigures, Subscription
from storage.rows import Repo, all_models, to_model

# Rows are inserted in slices so that one statement stays below the parameter limits of both backends.
_BATCH = 500


class BroadcastRepo(Repo):
    def __init__(self, connection: DbConnection) -> None:
        super().__init__(connection)
        # Broadcasts read in this transaction: a batch of copies rendered together reads theirs once.
        self._seen: dict[int, Broadcast] = {}

    def _insert(self, table: sa.Table) -> Any:
        if self.c.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # -- broadcasts -----------------------------------------------------------

    async def create(
        self,
        *,
        author_id: int,
        kind: str,
        priority: str,
        text: str,
        photo_id: int | None,
        audience: dict[str, Any],
        state: str,
        scheduled_at: datetime | None,
        notice_id: int | None,
        now: datetime,
    ) -> int:
        return int(
            (
                await self.c.execute(
                    t.broadcasts.insert()
                    .values(
                        author_id=author_id,
                        kind=kind,
                        priority=priority,
                        text=text,
                        photo_id=photo_id,
                        audience=audience,
                        state=state,
                        scheduled_at=scheduled_at,
                        notice_id=notice_id,
                        created_at=now,
                    )
                    .returning(t.broadcasts.c.id)
                )
            ).scalar_one()
        )

    async def get(self, broadcast_id: int) -> Broadcast | None:
        row = (await self.c.execute(sa.select(t.broadcasts).where(t.broadcasts.c.id == broadcast_id))).first()
        return to_model(Broadcast, row)

    async def get_for_copies(self, broadcast_id: int) -> Broadcast | None:
        """The broadcast, read once per transaction: a batch of its copies rendered together asks once."""
        if broadcast_id not in self._seen:
            found = await self.get(broadcast_id)
            if found is None:
                return None
            self._seen[broadcast_id] = found
        return self._seen[broadcast_id]

    async def recent(self, author_id: int | None, since: datetime, limit: int = 10) -> list[Broadcast]:
        """Scheduled broadcasts and those created since `since`, newest first (of one author, or all)."""
        b = t.broadcasts.c
        query = sa.select(t.broadcasts).where(sa.or_(b.state == "scheduled", b.created_at >= since))
        if author_id is not None:
            query = query.where(b.author_id == author_id)
        rows = await self.c.execute(query.order_by(b.id.desc()).limit(limit))
        return all_models(Broadcast, rows)

    async def start_sending(self, broadcast_id: int, now: datetime) -> bool:
        """Claim the one listing of recipients; False if it was listed before or cancelled."""
        b = t.broadcasts.c
        result = await self.c.execute(
            t.broadcasts.update()
            .where(b.id == broadcast_id, b.expanded_at.is_(None), b.state != "cancelled")
            .values(state="sending", expanded_at=now)
        )
        return result.rowcount == 1

    async def finish(self, broadcast_id: int, now: datetime) -> bool:
        """Mark a broadcast whose copies have all settled as sent; False if it was not sending."""
        b = t.broadcasts.c
        result = await self.c.execute(
            t.broadcasts.update()
            .where(b.id == broadcast_id, b.state == "sending")
            .values(state="sent", finished_at=now)
        )
        return result.rowcount == 1

    async def cancel(self, broadcast_id: int, now: datetime) -> int | None:
        """Stop a scheduled or sending broadcast; copies not yet sent are given up.

        Returns how many copies were stopped, or None if it was sent or cancelled already.
        """
        b = t.broadcasts.c
        result = await self.c.execute(
            t.broadcasts.update()
            .where(b.id == broadcast_id, b.state.in_(("scheduled", "sending")))
            .values(state="cancelled", finished_at=now)
        )
        if result.rowcount != 1:
            return None
        r, o = t.broadcast_recipients.c, t.outbox.c
        stopped = await self.c.execute(
            t.outbox.update()
            .where(
                o.state == "pending",
                o.id.in_(sa.select(r.outbox_id).where(r.broadcast_id == broadcast_id)),
            )
            .values(state="failed", last_error="broadcast cancelled")
        )
        return int(stopped.rowcount)

    async def set_summary(self, broadcast_id: int, channel: str, chat_id: str, ref: str) -> None:
        await self.c.execute(
            t.broadcasts.update()
            .where(t.broadcasts.c.id == broadcast_id)
            .values(summary_channel=channel, summary_chat_id=chat_id, summary_ref=ref)
        )

    # -- recipients -----------------------------------------------------------

    async def candidates(
        self, audience_type: str, grid_keys: Sequence[str], roles: Sequence[str] | None
    ) -> list[BroadcastCandidate]:
        """Onboarded people of the audience with a private chat that has not blocked the bot.

        One chat per person: the channel they used last, as for every other private message.
        """
        u, i, s = t.users.c, t.identities.c, t.subscriptions.c
        query = (
            sa.select(
                u.id.label("user_id"),
                u.role,
                u.language,
                u.grid_key,
                u.building,
                i.channel,
                i.chat_id,
                s.muted_kinds,
                s.quiet_from,
                s.quiet_until,
            )
            .select_from(t.users)
            .join(t.identities, i.user_id == u.id)
            .outerjoin(t.subscriptions, s.user_id == u.id)
            .where(u.onboarded_at.is_not(None), i.chat_id.is_not(None), i.blocked_at.is_(None))
            .order_by(u.id, i.last_seen_at.desc(), i.channel)
        )
        if audience_type == "grids":
            query = query.where(u.grid_key.in_(list(grid_keys)))
        if roles is not None:
            query = query.where(u.role.in_(list(roles)))
        found: list[BroadcastCandidate] = []
        for row in await self.c.execute(query):
            if found and found[-1].user_id == row.user_id:
                continue
            found.append(
                BroadcastCandidate(
                    user_id=row.user_id,
                    role=row.role,
                    language=row.language,
                    grid_key=row.grid_key,
                    building=row.building,
                    channel=row.channel,
                    chat_id=row.chat_id,
                    muted_kinds=list(row.muted_kinds or []),
                    quiet_from=row.quiet_from,
                    quiet_until=row.quiet_until,
                )
            )
        return found

    async def add_recipients(self, broadcast_id: int, copies: Sequence[dict[str, Any]], now: datetime) -> int:
        """Write one outbox row and one recipient row per copy; returns how many were written.

        Each copy has channel, chat_id, language, next_attempt_at, user_id/grid_key/building (None
        for a group chat) and optionally priority (its outbox lane; 0 if not given); no two copies
        share a chat.
        """
        written = 0
        for start in range(0, len(copies), _BATCH):
            batch = copies[start : start + _BATCH]
            # Matched back by chat (unique within a broadcast), so no backend has to keep row order.
            inserted = await self.c.execute(
                t.outbox.insert().returning(t.outbox.c.id, t.outbox.c.channel, t.outbox.c.chat_id),
                [
                    {
                        "channel": copy["channel"],
                        "chat_id": copy["chat_id"],
                        "language": copy["language"],
                        "kind": "broadcast",
                        # Whether it goes to a group decides its buttons; the copy says so itself.
                        "payload": {"broadcast_id": broadcast_id, "group": copy["user_id"] is None},
                        "next_attempt_at": copy["next_attempt_at"],
                        "created_at": now,
                        "priority": copy.get("priority", 0),
                    }
                    for copy in batch
                ],
            )
            outbox_ids = {(row.channel, row.chat_id): row.id for row in inserted}
            await self.c.execute(
                t.broadcast_recipients.insert(),
                [
                    {
                        "broadcast_id": broadcast_id,
                        "user_id": copy["user_id"],
                        "channel": copy["channel"],
                        "chat_id": copy["chat_id"],
                        "outbox_id": outbox_ids[(copy["channel"], copy["chat_id"])],
                        "grid_key": copy["grid_key"],
                        "building": copy["building"],
                    }
                    for copy in batch
                ],
            )
            written += len(batch)
        return written

    async def recipient_of_chat(
        self, broadcast_id: int, channel: str, chat_id: str
    ) -> tuple[int, int | None, datetime | None] | None:
        """(broadcast id, user id or None for a group, acknowledged at) of the copy sent to this chat."""
        r = t.broadcast_recipients.c
        row = (
            await self.c.execute(
                sa.select(r.broadcast_id, r.user_id, r.acked_at).where(
                    r.broadcast_id == broadcast_id, r.channel == channel, r.chat_id == chat_id
                )
            )
        ).first()
        return None if row is None else (row.broadcast_id, row.user_id, row.acked_at)

    async def is_recipient(self, broadcast_id: int, user_id: int) -> bool:
        r = t.broadcast_recipients.c
        found = await self.c.execute(
            sa.select(r.id).where(r.broadcast_id == broadcast_id, r.user_id == user_id).limit(1)
        )
        return found.first() is not None

    async def acknowledge(self, broadcast_id: int, user_id: int, now: datetime) -> bool:
        """Record the person's 收到 once; False if they had acknowledged already (or were not sent it)."""
        r = t.broadcast_recipients.c
        result = await self.c.execute(
            t.broadcast_recipients.update()
            .where(r.broadcast_id == broadcast_id, r.user_id == user_id, r.acked_at.is_(None))
            .values(acked_at=now)
        )
        return result.rowcount > 0

    async def claim_reminders(
        self, broadcast_id: int, now: datetime
    ) -> list[tuple[int, str, str, str | None]]:
        """People who received the alert and have not acknowledged it nor been reminded: marked reminded.

        Returns (user id, channel, chat id, language) of each, to remind them once.
        """
        r, o, u = t.broadcast_recipients.c, t.outbox.c, t.users.c
        rows = (
            await self.c.execute(
                sa.select(r.id, r.user_id, r.channel, r.chat_id, u.language)
                .join(t.outbox, o.id == r.outbox_id)
                .join(t.users, u.id == r.user_id)
                .where(
                    r.broadcast_id == broadcast_id,
                    r.acked_at.is_(None),
                    r.reminded_at.is_(None),
                    o.state == "sent",
                )
                .order_by(r.id)
            )
        ).all()
        ids = [row.id for row in rows]
        for start in range(0, len(ids), _BATCH):
            await self.c.execute(
                t.broadcast_recipients.update()
                .where(r.id.in_(ids[start : start + _BATCH]), r.reminded_at.is_(None))
                .values(reminded_at=now)
            )
        return [(row.user_id, row.channel, row.chat_id, row.language) for row in rows]

    async def next_pending_at(self, broadcast_id: int) -> datetime | None:
        """When the next of the broadcast's unsettled copies is due; None once every copy settled."""
        r, o = t.broadcast_recipients.c, t.outbox.c
        return (
            await self.c.execute(
                sa.select(sa.func.min(o.next_attempt_at))
                .select_from(t.broadcast_recipients)
                .join(t.outbox, o.id == r.outbox_id)
                .where(r.broadcast_id == broadcast_id, o.state == "pending")
            )
        ).scalar()

    async def figures(self, broadcast_id: int) -> BroadcastFigures:
        r, o = t.broadcast_recipients.c, t.outbox.c
        is_person = r.user_id.is_not(None)
        rows = await self.c.execute(
            sa.select(
                is_person.label("person"),
                o.state,
                sa.func.count().label("copies"),
                sa.func.count(r.acked_at).label("acked"),
            )
            .select_from(t.broadcast_recipients)
            .join(t.outbox, o.id == r.outbox_id)
            .where(r.broadcast_id == broadcast_id)
            .group_by(is_person, o.state)
        )
        people = groups = people_delivered = acked = 0
        by_state = {state: 0 for state in t.OUTBOX_STATES}
        for row in rows:
            by_state[row.state] += row.copies
            if row.person:
                people += row.copies
                if row.state == "sent":
                    people_delivered += row.copies
                    acked += row.acked
            else:
                groups += row.copies
        return BroadcastFigures(
            people=people,
            groups=groups,
            delivered=by_state["sent"],
            pending=by_state["pending"],
            failed=by_state["failed"],
            blocked=by_state["blocked"],
            people_delivered=people_delivered,
            acked=acked,
            expired=by_state["expired"],
        )

    async def acks_by(self, broadcast_id: int, by: str) -> list[AckShare]:
        """Acknowledgements among people who received the alert, per "grid_key" or "building"."""
        r, o = t.broadcast_recipients.c, t.outbox.c
        column = r.grid_key if by == "grid_key" else r.building
        rows = await self.c.execute(
            sa.select(column.label("key"), sa.func.count().label("delivered"), sa.func.count(r.acked_at))
            .join(t.outbox, o.id == r.outbox_id)
            .where(r.broadcast_id == broadcast_id, r.user_id.is_not(None), o.state == "sent")
            .group_by(column)
            .order_by(column)
        )
        return [AckShare(key=row[0], delivered=int(row[1]), acked=int(row[2])) for row in rows]

    # -- subscriptions --------------------------------------------------------

    async def subscription(self, user_id: int) -> Subscription | None:
        row = (
            await self.c.execute(sa.select(t.subscriptions).where(t.subscriptions.c.user_id == user_id))
        ).first()
        return to_model(Subscription, row)

    async def save_subscription(
        self,
        user_id: int,
        muted_kinds: Sequence[str],
        quiet_from: str | None,
        quiet_until: str | None,
        now: datetime,
    ) -> None:
        values = {
            "muted_kinds": sorted(set(muted_kinds)),
            "quiet_from": quiet_from,
            "quiet_until": quiet_until,
            "updated_at": now,
        }
        stmt = self._insert(t.subscriptions).values(user_id=user_id, **values)
        await self.c.execute(stmt.on_conflict_do_update(index_elements=["user_id"], set_=values))

    async def opt_outs(self) -> dict[str, int]:
        """How many onboarded people muted each kind of broadcast."""
        rows = await self.c.execute(
            sa.select(t.subscriptions.c.muted_kinds)
            .join(t.users, t.users.c.id == t.subscriptions.c.user_id)
            .where(t.users.c.onboarded_at.is_not(None))
        )
        counts: dict[str, int] = {}
        for (muted,) in rows:
            for kind in muted or []:
                counts[kind] = counts.get(kind, 0) + 1
        return counts
