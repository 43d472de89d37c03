"""Repositories over one connection (and so one transaction).

Every method takes the moment it acts at from the caller, so the domain's
clock, not the database server's, decides what time it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import schema as t
from storage.models import (
    Conversation,
    Identity,
    Invite,
    Media,
    OutboxMessage,
    Report,
    ReportCard,
    ReportEvent,
    Schedule,
    User,
)

Row = TypeVar("Row")


def _to(model: type[Row], row: sa.Row[Any] | None) -> Row | None:
    if row is None:
        return None
    mapping = row._mapping
    return model(**{f.name: mapping[f.name] for f in fields(model)})  # type: ignore[arg-type]


def _all(model: type[Row], rows: Iterable[sa.Row[Any]]) -> list[Row]:
    return [_to(model, row) for row in rows]  # type: ignore[misc]


class _Repo:
    def __init__(self, connection: AsyncConnection) -> None:
        self.c = connection

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that understands ON CONFLICT on both backends."""
        if self.c.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


class UserRepo(_Repo):
    async def create(self, display_name: str, now: datetime, role: str = "resident") -> User:
        user_id = (
            await self.c.execute(
                t.users.insert()
                .values(display_name=display_name[:128], role=role, created_at=now)
                .returning(t.users.c.id)
            )
        ).scalar_one()
        user = await self.get(user_id)
        assert user is not None
        return user

    async def get(self, user_id: int) -> User | None:
        row = (await self.c.execute(sa.select(t.users).where(t.users.c.id == user_id))).first()
        return _to(User, row)

    async def many(self, user_ids: Sequence[int]) -> dict[int, User]:
        rows = await self.c.execute(sa.select(t.users).where(t.users.c.id.in_(user_ids)))
        return {user.id: user for user in _all(User, rows)}

    async def update(self, user_id: int, **values: Any) -> None:
        await self.c.execute(t.users.update().where(t.users.c.id == user_id).values(**values))

    async def by_identity(self, channel: str, external_id: str) -> tuple[User, Identity] | None:
        query = (
            sa.select(
                t.users,
                t.identities.c.channel,
                t.identities.c.external_id,
                t.identities.c.user_id,
                t.identities.c.chat_id,
                t.identities.c.last_seen_at,
            )
            .join(t.identities, t.identities.c.user_id == t.users.c.id)
            .where(t.identities.c.channel == channel, t.identities.c.external_id == external_id)
        )
        row = (await self.c.execute(query)).first()
        if row is None:
            return None
        user = _to(User, row)
        identity = _to(Identity, row)
        assert user is not None and identity is not None
        return user, identity

    async def add_identity(
        self, channel: str, external_id: str, user_id: int, chat_id: str | None, now: datetime
    ) -> None:
        await self.c.execute(
            t.identities.insert().values(
                channel=channel, external_id=external_id, user_id=user_id, chat_id=chat_id, last_seen_at=now
            )
        )

    async def touch_identity(
        self, channel: str, external_id: str, chat_id: str | None, now: datetime
    ) -> None:
        await self.c.execute(
            t.identities.update()
            .where(t.identities.c.channel == channel, t.identities.c.external_id == external_id)
            .values(chat_id=chat_id, last_seen_at=now)
        )

    async def identities(self, user_id: int) -> list[Identity]:
        rows = await self.c.execute(
            sa.select(t.identities)
            .where(t.identities.c.user_id == user_id)
            .order_by(t.identities.c.last_seen_at.desc())
        )
        return _all(Identity, rows)

    async def with_role(self, roles: Sequence[str]) -> list[User]:
        rows = await self.c.execute(
            sa.select(t.users).where(t.users.c.role.in_(roles)).order_by(t.users.c.id)
        )
        return _all(User, rows)

    async def assign_grid(self, user_id: int, grid_key: str) -> None:
        stmt = self._insert(t.grid_assignments).values(user_id=user_id, grid_key=grid_key)
        await self.c.execute(stmt.on_conflict_do_nothing())

    async def grids_of(self, user_id: int) -> list[str]:
        rows = await self.c.execute(
            sa.select(t.grid_assignments.c.grid_key)
            .where(t.grid_assignments.c.user_id == user_id)
            .order_by(t.grid_assignments.c.grid_key)
        )
        return list(rows.scalars())

    async def workers_of_grid(self, grid_key: str) -> list[User]:
        rows = await self.c.execute(
            sa.select(t.users)
            .join(t.grid_assignments, t.grid_assignments.c.user_id == t.users.c.id)
            .where(t.grid_assignments.c.grid_key == grid_key, t.users.c.role == "grid_worker")
            .order_by(t.users.c.id)
        )
        return _all(User, rows)


class InviteRepo(_Repo):
    async def create(
        self, code: str, role: str, grid_key: str | None, created_by: int, now: datetime, expires_at: datetime
    ) -> None:
        await self.c.execute(
            t.invites.insert().values(
                code=code,
                role=role,
                grid_key=grid_key,
                created_by=created_by,
                created_at=now,
                expires_at=expires_at,
            )
        )

    async def get(self, code: str) -> Invite | None:
        row = (await self.c.execute(sa.select(t.invites).where(t.invites.c.code == code))).first()
        return _to(Invite, row)

    async def redeem(self, code: str, user_id: int, now: datetime) -> bool:
        """Mark the invite used; False if someone else used it first or it expired."""
        result = await self.c.execute(
            t.invites.update()
            .where(t.invites.c.code == code, t.invites.c.used_by.is_(None), t.invites.c.expires_at > now)
            .values(used_by=user_id, used_at=now)
        )
        return result.rowcount == 1


class ConversationRepo(_Repo):
    async def get(self, user_id: int, channel: str) -> Conversation | None:
        row = (
            await self.c.execute(
                sa.select(t.conversations).where(
                    t.conversations.c.user_id == user_id, t.conversations.c.channel == channel
                )
            )
        ).first()
        return _to(Conversation, row)

    async def save(
        self, user_id: int, channel: str, flow: str, step: str, data: dict[str, Any], now: datetime
    ) -> None:
        values = {"flow": flow, "step": step, "data": data, "updated_at": now}
        stmt = self._insert(t.conversations).values(user_id=user_id, channel=channel, **values)
        await self.c.execute(stmt.on_conflict_do_update(index_elements=["user_id", "channel"], set_=values))

    async def delete(self, user_id: int, channel: str) -> None:
        await self.c.execute(
            t.conversations.delete().where(
                t.conversations.c.user_id == user_id, t.conversations.c.channel == channel
            )
        )


class ReportRepo(_Repo):
    async def next_ticket_number(self, year: int) -> int:
        stmt = self._insert(t.ticket_counters).values(year=year, last_seq=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["year"], set_={"last_seq": t.ticket_counters.c.last_seq + 1}
        ).returning(t.ticket_counters.c.last_seq)
        return int((await self.c.execute(stmt)).scalar_one())

    async def create(self, **values: Any) -> Report:
        report_id = (
            await self.c.execute(t.reports.insert().values(**values).returning(t.reports.c.id))
        ).scalar_one()
        report = await self.get(report_id)
        assert report is not None
        return report

    async def get(self, report_id: int) -> Report | None:
        row = (await self.c.execute(sa.select(t.reports).where(t.reports.c.id == report_id))).first()
        return _to(Report, row)

    async def by_ticket(self, ticket: str) -> Report | None:
        row = (await self.c.execute(sa.select(t.reports).where(t.reports.c.ticket == ticket))).first()
        return _to(Report, row)

    async def move(
        self, report_id: int, from_state: str, to_state: str, now: datetime, **values: Any
    ) -> bool:
        """Change state only if it is still `from_state`: a second click loses the race harmlessly."""
        result = await self.c.execute(
            t.reports.update()
            .where(t.reports.c.id == report_id, t.reports.c.state == from_state)
            .values(state=to_state, updated_at=now, **values)
        )
        return result.rowcount == 1

    async def add_event(
        self,
        report_id: int,
        actor_id: int | None,
        from_state: str | None,
        to_state: str,
        note: str | None,
        now: datetime,
    ) -> None:
        await self.c.execute(
            t.report_events.insert().values(
                report_id=report_id,
                actor_id=actor_id,
                from_state=from_state,
                to_state=to_state,
                note=note,
                created_at=now,
            )
        )

    async def events(self, report_id: int) -> list[ReportEvent]:
        rows = await self.c.execute(
            sa.select(t.report_events)
            .where(t.report_events.c.report_id == report_id)
            .order_by(t.report_events.c.id)
        )
        return _all(ReportEvent, rows)

    async def count_since(self, reporter_id: int, since: datetime) -> int:
        result = await self.c.execute(
            sa.select(sa.func.count())
            .select_from(t.reports)
            .where(t.reports.c.reporter_id == reporter_id, t.reports.c.created_at >= since)
        )
        return int(result.scalar_one())

    async def by_reporter(self, reporter_id: int, limit: int = 10) -> list[Report]:
        rows = await self.c.execute(
            sa.select(t.reports)
            .where(t.reports.c.reporter_id == reporter_id)
            .order_by(t.reports.c.id.desc())
            .limit(limit)
        )
        return _all(Report, rows)

    async def open_reports(self, grid_keys: Sequence[str] | None, limit: int = 30) -> list[Report]:
        query = sa.select(t.reports).where(
            t.reports.c.state.in_(("submitted", "acknowledged", "assigned", "in_progress"))
        )
        if grid_keys is not None:
            query = query.where(t.reports.c.grid_key.in_(grid_keys))
        rows = await self.c.execute(query.order_by(t.reports.c.created_at, t.reports.c.id).limit(limit))
        return _all(Report, rows)

    async def set_rating(self, report_id: int, rating: int, now: datetime) -> bool:
        result = await self.c.execute(
            t.reports.update()
            .where(t.reports.c.id == report_id, t.reports.c.rating.is_(None), t.reports.c.state == "resolved")
            .values(rating=rating, updated_at=now)
        )
        return result.rowcount == 1

    async def set_rating_comment(self, report_id: int, comment: str, now: datetime) -> None:
        await self.c.execute(
            t.reports.update()
            .where(t.reports.c.id == report_id)
            .values(rating_comment=comment, updated_at=now)
        )

    async def add_photo(self, report_id: int, kind: str, position: int, media_id: int) -> None:
        await self.c.execute(
            t.report_photos.insert().values(
                report_id=report_id, kind=kind, position=position, media_id=media_id
            )
        )

    async def photos(self, report_id: int, kind: str = "before") -> list[int]:
        rows = await self.c.execute(
            sa.select(t.report_photos.c.media_id)
            .where(t.report_photos.c.report_id == report_id, t.report_photos.c.kind == kind)
            .order_by(t.report_photos.c.position)
        )
        return list(rows.scalars())

    async def add_card(self, report_id: int, channel: str, chat_id: str, message_id: str) -> None:
        stmt = self._insert(t.report_cards).values(
            report_id=report_id, channel=channel, chat_id=chat_id, message_id=message_id
        )
        await self.c.execute(
            stmt.on_conflict_do_update(
                index_elements=["report_id", "channel", "chat_id"], set_={"message_id": message_id}
            )
        )

    async def card(self, report_id: int, channel: str, chat_id: str) -> ReportCard | None:
        row = (
            await self.c.execute(
                sa.select(t.report_cards).where(
                    t.report_cards.c.report_id == report_id,
                    t.report_cards.c.channel == channel,
                    t.report_cards.c.chat_id == chat_id,
                )
            )
        ).first()
        return _to(ReportCard, row)


class MediaRepo(_Repo):
    async def add(
        self, sha256: str, mime: str, width: int, height: int, size: int, path: str, now: datetime
    ) -> int:
        existing = (await self.c.execute(sa.select(t.media.c.id).where(t.media.c.sha256 == sha256))).scalar()
        if existing is not None:
            return int(existing)
        return int(
            (
                await self.c.execute(
                    t.media.insert()
                    .values(
                        sha256=sha256,
                        mime=mime,
                        width=width,
                        height=height,
                        size=size,
                        path=path,
                        created_at=now,
                    )
                    .returning(t.media.c.id)
                )
            ).scalar_one()
        )

    async def get(self, media_id: int) -> Media | None:
        row = (await self.c.execute(sa.select(t.media).where(t.media.c.id == media_id))).first()
        return _to(Media, row)


class OutboxRepo(_Repo):
    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection)
        # Lets the caller wake the delivery worker only when there is something new.
        self.enqueued = 0

    async def enqueue(
        self, channel: str, chat_id: str, language: str, kind: str, payload: dict[str, Any], now: datetime
    ) -> int:
        self.enqueued += 1
        return int(
            (
                await self.c.execute(
                    t.outbox.insert()
                    .values(
                        channel=channel,
                        chat_id=chat_id,
                        language=language,
                        kind=kind,
                        payload=payload,
                        next_attempt_at=now,
                        created_at=now,
                    )
                    .returning(t.outbox.c.id)
                )
            ).scalar_one()
        )

    async def due(self, now: datetime, limit: int = 100) -> list[OutboxMessage]:
        rows = await self.c.execute(
            sa.select(t.outbox)
            .where(t.outbox.c.state == "pending", t.outbox.c.next_attempt_at <= now)
            .order_by(t.outbox.c.id)
            .limit(limit)
        )
        return _all(OutboxMessage, rows)

    async def next_due_at(self) -> datetime | None:
        result = await self.c.execute(
            sa.select(sa.func.min(t.outbox.c.next_attempt_at)).where(t.outbox.c.state == "pending")
        )
        return result.scalar()

    async def mark_sent(self, message_id: int, now: datetime) -> None:
        await self.c.execute(
            t.outbox.update()
            .where(t.outbox.c.id == message_id)
            .values(state="sent", sent_at=now, attempts=t.outbox.c.attempts + 1)
        )

    async def mark_retry(self, message_id: int, error: str, next_attempt_at: datetime) -> None:
        await self.c.execute(
            t.outbox.update()
            .where(t.outbox.c.id == message_id)
            .values(last_error=error[:500], next_attempt_at=next_attempt_at, attempts=t.outbox.c.attempts + 1)
        )

    async def mark_final(self, message_id: int, state: str, error: str) -> None:
        await self.c.execute(
            t.outbox.update()
            .where(t.outbox.c.id == message_id)
            .values(state=state, last_error=error[:500], attempts=t.outbox.c.attempts + 1)
        )

    async def counts(self) -> dict[str, int]:
        rows = await self.c.execute(sa.select(t.outbox.c.state, sa.func.count()).group_by(t.outbox.c.state))
        return {state: int(count) for state, count in rows.all()}

    async def all(self) -> list[OutboxMessage]:
        return _all(OutboxMessage, await self.c.execute(sa.select(t.outbox).order_by(t.outbox.c.id)))


class ScheduleRepo(_Repo):
    async def arm(self, kind: str, ref: str, due_at: datetime) -> None:
        """Create the schedule, or re-arm it for a new time."""
        values = {"due_at": due_at, "state": "pending", "fired_at": None}
        stmt = self._insert(t.schedules).values(kind=kind, ref=ref, **values)
        await self.c.execute(stmt.on_conflict_do_update(index_elements=["kind", "ref"], set_=values))

    async def cancel(self, kind: str, ref: str) -> None:
        await self.c.execute(
            t.schedules.update()
            .where(t.schedules.c.kind == kind, t.schedules.c.ref == ref, t.schedules.c.state == "pending")
            .values(state="cancelled")
        )

    async def due(self, now: datetime, limit: int = 100) -> list[Schedule]:
        rows = await self.c.execute(
            sa.select(t.schedules)
            .where(t.schedules.c.state == "pending", t.schedules.c.due_at <= now)
            .order_by(t.schedules.c.due_at, t.schedules.c.id)
            .limit(limit)
        )
        return _all(Schedule, rows)

    async def pending(self) -> list[Schedule]:
        rows = await self.c.execute(
            sa.select(t.schedules).where(t.schedules.c.state == "pending").order_by(t.schedules.c.due_at)
        )
        return _all(Schedule, rows)

    async def claim(self, schedule_id: int, now: datetime) -> bool:
        """Take a due schedule for firing; only one claimant ever succeeds."""
        result = await self.c.execute(
            t.schedules.update()
            .where(t.schedules.c.id == schedule_id, t.schedules.c.state == "pending")
            .values(state="done", fired_at=now)
        )
        return result.rowcount == 1

    async def get(self, kind: str, ref: str) -> Schedule | None:
        row = (
            await self.c.execute(
                sa.select(t.schedules).where(t.schedules.c.kind == kind, t.schedules.c.ref == ref)
            )
        ).first()
        return _to(Schedule, row)


class InboxRepo(_Repo):
    async def accept(
        self, channel: str, dedupe_key: str, payload: dict[str, Any], now: datetime
    ) -> int | None:
        """Store an inbound message; None if the same message was accepted before (a platform retry)."""
        stmt = (
            self._insert(t.inbox)
            .values(channel=channel, dedupe_key=dedupe_key, payload=payload, received_at=now)
            .on_conflict_do_nothing(index_elements=["channel", "dedupe_key"])
            .returning(t.inbox.c.id)
        )
        return (await self.c.execute(stmt)).scalar()

    async def pending(self, channel: str, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        rows = await self.c.execute(
            sa.select(t.inbox.c.id, t.inbox.c.payload)
            .where(t.inbox.c.channel == channel, t.inbox.c.state == "pending")
            .order_by(t.inbox.c.id)
            .limit(limit)
        )
        return [(int(row.id), row.payload) for row in rows]

    async def finish(self, inbox_id: int, state: str, now: datetime) -> None:
        await self.c.execute(
            t.inbox.update().where(t.inbox.c.id == inbox_id).values(state=state, processed_at=now)
        )


class MenuRepo(_Repo):
    async def remember(self, channel: str, chat_id: str, actions: list[str | None], now: datetime) -> None:
        values = {"actions": actions, "updated_at": now}
        stmt = self._insert(t.menus).values(channel=channel, chat_id=chat_id, **values)
        await self.c.execute(stmt.on_conflict_do_update(index_elements=["channel", "chat_id"], set_=values))

    async def action(self, channel: str, chat_id: str, number: int) -> str | None:
        actions = (
            await self.c.execute(
                sa.select(t.menus.c.actions).where(t.menus.c.channel == channel, t.menus.c.chat_id == chat_id)
            )
        ).scalar()
        if not actions or not 1 <= number <= len(actions):
            return None
        return actions[number - 1]


class LinkRepo(_Repo):
    async def create(self, code: str, user_id: int, now: datetime, expires_at: datetime) -> None:
        await self.c.execute(
            t.link_codes.insert().values(code=code, user_id=user_id, created_at=now, expires_at=expires_at)
        )

    async def redeem(self, code: str, now: datetime) -> int | None:
        """The user who made the code, if it is valid; it cannot be used twice."""
        result = await self.c.execute(
            t.link_codes.update()
            .where(
                t.link_codes.c.code == code, t.link_codes.c.used_at.is_(None), t.link_codes.c.expires_at > now
            )
            .values(used_at=now)
            .returning(t.link_codes.c.user_id)
        )
        return result.scalar()

    async def merge_users(self, keep: int, drop: int) -> None:
        """Give everything of user `drop` to user `keep`, then remove `drop`."""
        moves = [
            (t.identities, t.identities.c.user_id),
            (t.reports, t.reports.c.reporter_id),
            (t.reports, t.reports.c.assignee_id),
            (t.report_events, t.report_events.c.actor_id),
            (t.invites, t.invites.c.created_by),
            (t.invites, t.invites.c.used_by),
        ]
        for table, column in moves:
            await self.c.execute(table.update().where(column == drop).values({column.name: keep}))
        kept_grids = sa.select(t.grid_assignments.c.grid_key).where(t.grid_assignments.c.user_id == keep)
        await self.c.execute(
            t.grid_assignments.update()
            .where(t.grid_assignments.c.user_id == drop, t.grid_assignments.c.grid_key.not_in(kept_grids))
            .values(user_id=keep)
        )
        await self.c.execute(t.users.delete().where(t.users.c.id == drop))


class Repos:
    """All repositories bound to one transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.users = UserRepo(connection)
        self.invites = InviteRepo(connection)
        self.conversations = ConversationRepo(connection)
        self.reports = ReportRepo(connection)
        self.media = MediaRepo(connection)
        self.outbox = OutboxRepo(connection)
        self.schedules = ScheduleRepo(connection)
        self.inbox = InboxRepo(connection)
        self.menus = MenuRepo(connection)
        self.links = LinkRepo(connection)
