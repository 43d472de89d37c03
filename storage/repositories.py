"""Repositories over one connection (and so one transaction).

Every method takes the moment it acts at from the caller, so the domain's
clock, not the database server's, decides what time it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from storage import schema as t
from storage.attendance_repo import AttendanceRepo
from storage.broadcast_repo import BroadcastRepo
from storage.db import DbConnection
from storage.ledger import (
    ALL_TIME,
    COMMUNITY,
    REASON_ACCOUNTS_MERGED,
    REASON_REDEMPTION_APPROVED,
    REASON_REDEMPTION_MERGED,
    REASON_REDEMPTION_REJECTED,
    RESERVED,
    SPENT,
    SYSTEM_KINDS,
    USER,
    InsufficientPoints,
    LedgerError,
    month_of,
    redemption_ref,
    reserve_key,
    reversal_key,
    settle_key,
)
from storage.models import (
    Conversation,
    Identity,
    Invite,
    LedgerEntry,
    Media,
    OutboxMessage,
    PointsStatement,
    Report,
    ReportCard,
    ReportEvent,
    Schedule,
    Standing,
    User,
)
from storage.notice_repo import NoticeRepo
from storage.patrol_repo import PatrolRepo
from storage.rewards_repo import PENDING, REJECTED, RewardRepo
from storage.rows import Repo, all_models, insert_for, param, to_model

_IDENTITY_COLUMNS = (
    t.identities.c.channel,
    t.identities.c.external_id,
    t.identities.c.user_id,
    t.identities.c.chat_id,
    t.identities.c.last_seen_at,
    t.identities.c.blocked_at,
)
_USER_BY_ID = sa.select(t.users).where(t.users.c.id == param("user_id"))
_USERS_BY_ID = sa.select(t.users).where(t.users.c.id.in_(param("user_ids", expanding=True)))
# An UPDATE takes the columns to SET from the parameters it is run with; the parameters of its
# WHERE end in "_" so that none is taken for a column of the same name.
_UPDATE_USER = t.users.update().where(t.users.c.id == param("user_id_"))
# The points leaderboard of a grid reads a copy of the grid (see schema.point_earnings).
_MOVE_EARNINGS_TO_GRID = (
    t.point_earnings.update()
    .where(t.point_earnings.c.user_id == param("user_id_"))
    .values(grid_key=param("grid_key"))
)
_INSERT_USER = t.users.insert().returning(t.users.c.id)
_USER_BY_IDENTITY = (
    sa.select(t.users, *_IDENTITY_COLUMNS)
    .join(t.identities, t.identities.c.user_id == t.users.c.id)
    .where(t.identities.c.channel == param("channel"), t.identities.c.external_id == param("external_id"))
)
_USER_BY_IDENTITY_WITH_DRAFT = (
    sa.select(
        t.users,
        *_IDENTITY_COLUMNS,
        t.conversations.c.flow.label("draft_flow"),
        t.conversations.c.step.label("draft_step"),
        t.conversations.c.data.label("draft_data"),
        t.conversations.c.updated_at.label("draft_updated_at"),
    )
    .join(t.identities, t.identities.c.user_id == t.users.c.id)
    .outerjoin(
        t.conversations,
        (t.conversations.c.user_id == t.users.c.id) & (t.conversations.c.channel == param("channel")),
    )
    .where(t.identities.c.channel == param("channel"), t.identities.c.external_id == param("external_id"))
)
_INSERT_IDENTITY = t.identities.insert()
_IDENTITIES_OF_USER = (
    sa.select(t.identities)
    .where(t.identities.c.user_id == param("user_id"))
    .order_by(t.identities.c.last_seen_at.desc())
)
_WORKERS_OF_GRID = (
    sa.select(t.users)
    .join(t.grid_assignments, t.grid_assignments.c.user_id == t.users.c.id)
    .where(t.grid_assignments.c.grid_key == param("grid_key"), t.users.c.role == "grid_worker")
    .order_by(t.users.c.id)
)
_TOUCH_IDENTITY = (
    t.identities.update()
    .where(t.identities.c.channel == param("channel_"), t.identities.c.external_id == param("external_id_"))
    .values(chat_id=param("chat_id"), last_seen_at=param("now"), blocked_at=None)
)


class UserRepo(Repo):
    async def create(self, display_name: str, now: datetime, role: str = "resident") -> User:
        user_id = (
            await self.c.execute(
                _INSERT_USER, {"display_name": display_name[:128], "role": role, "created_at": now}
            )
        ).scalar_one()
        user = await self.get(user_id)
        assert user is not None
        return user

    async def get(self, user_id: int) -> User | None:
        row = (await self.c.execute(_USER_BY_ID, {"user_id": user_id})).first()
        return to_model(User, row)

    async def many(self, user_ids: Sequence[int]) -> dict[int, User]:
        rows = await self.c.execute(_USERS_BY_ID, {"user_ids": list(user_ids)})
        return {user.id: user for user in all_models(User, rows)}

    async def update(self, user_id: int, **values: Any) -> None:
        await self.c.execute(_UPDATE_USER, {"user_id_": user_id, **values})
        if "grid_key" in values:
            moved = {"user_id_": user_id, "grid_key": values["grid_key"]}
            await self.c.execute(_MOVE_EARNINGS_TO_GRID, moved)

    async def by_identity(self, channel: str, external_id: str) -> tuple[User, Identity] | None:
        row = (
            await self.c.execute(_USER_BY_IDENTITY, {"channel": channel, "external_id": external_id})
        ).first()
        if row is None:
            return None
        user = to_model(User, row)
        identity = to_model(Identity, row)
        assert user is not None and identity is not None
        return user, identity

    async def by_identity_with_draft(
        self, channel: str, external_id: str
    ) -> tuple[User, Identity, Conversation | None] | None:
        """The person, their identity and their conversation on this channel, in one round trip."""
        row = (
            await self.c.execute(
                _USER_BY_IDENTITY_WITH_DRAFT, {"channel": channel, "external_id": external_id}
            )
        ).first()
        if row is None:
            return None
        user = to_model(User, row)
        identity = to_model(Identity, row)
        assert user is not None and identity is not None
        conversation = None
        if row.draft_flow is not None:
            conversation = Conversation(
                user.id, channel, row.draft_flow, row.draft_step, row.draft_data, row.draft_updated_at
            )
        return user, identity, conversation

    async def add_identity(
        self, channel: str, external_id: str, user_id: int, chat_id: str | None, now: datetime
    ) -> None:
        await self.c.execute(
            _INSERT_IDENTITY,
            {
                "channel": channel,
                "external_id": external_id,
                "user_id": user_id,
                "chat_id": chat_id,
                "last_seen_at": now,
            },
        )

    async def touch_identity(
        self, channel: str, external_id: str, chat_id: str | None, now: datetime
    ) -> None:
        await self.c.execute(
            _TOUCH_IDENTITY,
            {"channel_": channel, "external_id_": external_id, "chat_id": chat_id, "now": now},
        )

    async def mark_blocked(self, channel: str, chat_id: str, now: datetime) -> None:
        """The person behind this private chat blocked the bot: broadcasts skip them until they write."""
        await self.c.execute(
            t.identities.update()
            .where(
                t.identities.c.channel == channel,
                t.identities.c.chat_id == chat_id,
                t.identities.c.blocked_at.is_(None),
            )
            .values(blocked_at=now)
        )

    async def identities(self, user_id: int) -> list[Identity]:
        rows = await self.c.execute(_IDENTITIES_OF_USER, {"user_id": user_id})
        return all_models(Identity, rows)

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
        rows = await self.c.execute(_WORKERS_OF_GRID, {"grid_key": grid_key})
        return all_models(User, rows)

    async def with_roles(self, roles: Iterable[str]) -> list[User]:
        rows = await self.c.execute(
            sa.select(t.users).where(t.users.c.role.in_(list(roles))).order_by(t.users.c.id)
        )
        return all_models(User, rows)


class InviteRepo(Repo):
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
        return to_model(Invite, row)

    async def redeem(self, code: str, user_id: int, now: datetime) -> bool:
        """Mark the invite used; False if someone else used it first or it expired."""
        result = await self.c.execute(
            t.invites.update()
            .where(t.invites.c.code == code, t.invites.c.used_by.is_(None), t.invites.c.expires_at > now)
            .values(used_by=user_id, used_at=now)
        )
        return result.rowcount == 1


_DRAFT = sa.select(t.conversations).where(
    t.conversations.c.user_id == param("user_id"), t.conversations.c.channel == param("channel")
)
_DELETE_DRAFT = t.conversations.delete().where(
    t.conversations.c.user_id == param("user_id"), t.conversations.c.channel == param("channel")
)


@cache
def _save_draft(dialect: str) -> Any:
    stmt = insert_for(dialect, t.conversations)
    return stmt.on_conflict_do_update(
        index_elements=["user_id", "channel"],
        set_={name: stmt.excluded[name] for name in ("flow", "step", "data", "updated_at")},
    )


class ConversationRepo(Repo):
    async def get(self, user_id: int, channel: str) -> Conversation | None:
        row = (await self.c.execute(_DRAFT, {"user_id": user_id, "channel": channel})).first()
        return to_model(Conversation, row)

    async def save(
        self, user_id: int, channel: str, flow: str, step: str, data: dict[str, Any], now: datetime
    ) -> None:
        values = {"user_id": user_id, "channel": channel, "flow": flow, "step": step, "data": data}
        await self.c.execute(_save_draft(self.c.dialect.name), {**values, "updated_at": now})

    async def delete(self, user_id: int, channel: str) -> None:
        await self.c.execute(_DELETE_DRAFT, {"user_id": user_id, "channel": channel})

    async def idle_since(self, cutoff: datetime, limit: int = 100) -> list[Conversation]:
        rows = await self.c.execute(
            sa.select(t.conversations).where(t.conversations.c.updated_at <= cutoff).limit(limit)
        )
        return all_models(Conversation, rows)

    async def delete_if_unchanged(self, user_id: int, channel: str, updated_at: datetime) -> bool:
        """Drop a draft only if nobody touched it since it was seen idle."""
        result = await self.c.execute(
            t.conversations.delete().where(
                t.conversations.c.user_id == user_id,
                t.conversations.c.channel == channel,
                t.conversations.c.updated_at == updated_at,
            )
        )
        return result.rowcount == 1


_REPORT_BY_ID = sa.select(t.reports).where(t.reports.c.id == param("report_id"))
_INSERT_REPORT = t.reports.insert().returning(t.reports.c.id)
_REPORTS_BY_REPORTER = (
    sa.select(t.reports)
    .where(t.reports.c.reporter_id == param("reporter_id"))
    .order_by(t.reports.c.id.desc())
    .limit(param("limit"))
)
_INSERT_REPORT_EVENT = t.report_events.insert()
_REPORTS_SINCE = (
    sa.select(sa.func.count())
    .select_from(t.reports)
    .where(t.reports.c.reporter_id == param("reporter_id"), t.reports.c.created_at >= param("since"))
)
_REPORT_PHOTOS = (
    sa.select(t.report_photos.c.media_id)
    .where(t.report_photos.c.report_id == param("report_id"), t.report_photos.c.kind == param("kind"))
    .order_by(t.report_photos.c.position)
)
_REPORT_CARD = sa.select(t.report_cards).where(
    t.report_cards.c.report_id == param("report_id"),
    t.report_cards.c.channel == param("channel"),
    t.report_cards.c.chat_id == param("chat_id"),
)


@cache
def _next_ticket(dialect: str) -> Any:
    stmt = insert_for(dialect, t.ticket_counters).values(last_seq=1)
    return stmt.on_conflict_do_update(
        index_elements=["year"], set_={"last_seq": t.ticket_counters.c.last_seq + 1}
    ).returning(t.ticket_counters.c.last_seq)


@cache
def _save_card(dialect: str) -> Any:
    stmt = insert_for(dialect, t.report_cards)
    return stmt.on_conflict_do_update(
        index_elements=["report_id", "channel", "chat_id"], set_={"message_id": stmt.excluded.message_id}
    )


class ReportRepo(Repo):
    async def next_ticket_number(self, year: int) -> int:
        return int((await self.c.execute(_next_ticket(self.c.dialect.name), {"year": year})).scalar_one())

    async def create(self, **values: Any) -> Report:
        report_id = (await self.c.execute(_INSERT_REPORT, values)).scalar_one()
        report = await self.get(report_id)
        assert report is not None
        return report

    async def get(self, report_id: int) -> Report | None:
        row = (await self.c.execute(_REPORT_BY_ID, {"report_id": report_id})).first()
        return to_model(Report, row)

    async def by_ticket(self, ticket: str) -> Report | None:
        row = (await self.c.execute(sa.select(t.reports).where(t.reports.c.ticket == ticket))).first()
        return to_model(Report, row)

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
            _INSERT_REPORT_EVENT,
            {
                "report_id": report_id,
                "actor_id": actor_id,
                "from_state": from_state,
                "to_state": to_state,
                "note": note,
                "created_at": now,
            },
        )

    async def events(self, report_id: int) -> list[ReportEvent]:
        rows = await self.c.execute(
            sa.select(t.report_events)
            .where(t.report_events.c.report_id == report_id)
            .order_by(t.report_events.c.id)
        )
        return all_models(ReportEvent, rows)

    async def count_since(self, reporter_id: int, since: datetime) -> int:
        result = await self.c.execute(_REPORTS_SINCE, {"reporter_id": reporter_id, "since": since})
        return int(result.scalar_one())

    async def by_reporter(self, reporter_id: int, limit: int = 10) -> list[Report]:
        rows = await self.c.execute(_REPORTS_BY_REPORTER, {"reporter_id": reporter_id, "limit": limit})
        return all_models(Report, rows)

    async def open_reports(self, grid_keys: Sequence[str] | None, limit: int = 30) -> list[Report]:
        query = sa.select(t.reports).where(
            t.reports.c.state.in_(("submitted", "acknowledged", "assigned", "in_progress"))
        )
        if grid_keys is not None:
            query = query.where(t.reports.c.grid_key.in_(grid_keys))
        rows = await self.c.execute(query.order_by(t.reports.c.created_at, t.reports.c.id).limit(limit))
        return all_models(Report, rows)

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
        rows = await self.c.execute(_REPORT_PHOTOS, {"report_id": report_id, "kind": kind})
        return list(rows.scalars())

    async def add_card(self, report_id: int, channel: str, chat_id: str, message_id: str) -> None:
        await self.c.execute(
            _save_card(self.c.dialect.name),
            {"report_id": report_id, "channel": channel, "chat_id": chat_id, "message_id": message_id},
        )

    async def card(self, report_id: int, channel: str, chat_id: str) -> ReportCard | None:
        row = (
            await self.c.execute(
                _REPORT_CARD, {"report_id": report_id, "channel": channel, "chat_id": chat_id}
            )
        ).first()
        return to_model(ReportCard, row)


class MediaRepo(Repo):
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
        return to_model(Media, row)


_ENQUEUE = t.outbox.insert().returning(t.outbox.c.id)
_MARK_SENT = (
    t.outbox.update()
    .where(t.outbox.c.id.in_(param("ids", expanding=True)))
    .values(state="sent", sent_at=param("now"), attempts=t.outbox.c.attempts + 1)
)
_first_pending_per_chat = (
    sa.select(sa.func.min(t.outbox.c.id).label("id"))
    .where(
        t.outbox.c.state == "pending",
        t.outbox.c.channel.in_(param("channels", expanding=True)),
        sa.or_(t.outbox.c.next_attempt_at <= param("now"), t.outbox.c.attempts > 0),
    )
    .group_by(t.outbox.c.channel, t.outbox.c.chat_id)
    .subquery()
)
_HEADS = (
    sa.select(t.outbox)
    .join(_first_pending_per_chat, t.outbox.c.id == _first_pending_per_chat.c.id)
    .where(t.outbox.c.next_attempt_at <= param("now"))
    .order_by(t.outbox.c.id)
    .limit(param("limit"))
)
_NEXT_DUE = sa.select(sa.func.min(t.outbox.c.next_attempt_at)).where(
    t.outbox.c.state == "pending",
    t.outbox.c.channel.in_(param("channels", expanding=True)),
    t.outbox.c.next_attempt_at > param("now"),
)


class OutboxRepo(Repo):
    def __init__(self, connection: DbConnection) -> None:
        super().__init__(connection)
        # Lets the caller wake the delivery worker only when there is something new.
        self.enqueued = 0

    async def enqueue(
        self, channel: str, chat_id: str, language: str, kind: str, payload: dict[str, Any], now: datetime
    ) -> int:
        self.enqueued += 1
        values = {"channel": channel, "chat_id": chat_id, "language": language, "kind": kind}
        row = {**values, "payload": payload, "next_attempt_at": now, "created_at": now}
        return int((await self.c.execute(_ENQUEUE, row)).scalar_one())

    async def due(self, now: datetime, limit: int = 100) -> list[OutboxMessage]:
        rows = await self.c.execute(
            sa.select(t.outbox)
            .where(t.outbox.c.state == "pending", t.outbox.c.next_attempt_at <= now)
            .order_by(t.outbox.c.id)
            .limit(limit)
        )
        return all_models(OutboxMessage, rows)

    async def mark_sent(self, message_ids: Sequence[int], now: datetime) -> None:
        """Rows the platform accepted: one statement for a whole batch."""
        if message_ids:
            await self.c.execute(_MARK_SENT, {"ids": list(message_ids), "now": now})

    async def heads(self, now: datetime, channels: Iterable[str], limit: int) -> list[OutboxMessage]:
        """Per chat, its oldest pending row if it is due now: a chat's messages go out in order.

        A row waiting to be retried holds back its chat's later rows; a row merely
        scheduled for later (quiet hours) does not.
        """
        rows = await self.c.execute(_HEADS, {"now": now, "channels": list(channels), "limit": limit})
        return all_models(OutboxMessage, rows)

    async def next_due(self, now: datetime, channels: Iterable[str]) -> datetime | None:
        """When the next pending row of these channels falls due, if any is waiting for later."""
        due: datetime | None = (
            await self.c.execute(_NEXT_DUE, {"now": now, "channels": list(channels)})
        ).scalar()
        return due

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
        return all_models(OutboxMessage, await self.c.execute(sa.select(t.outbox).order_by(t.outbox.c.id)))


_SCHEDULE = sa.select(t.schedules).where(
    t.schedules.c.kind == param("kind"), t.schedules.c.ref == param("ref")
)


@cache
def _arm_schedule(dialect: str) -> Any:
    stmt = insert_for(dialect, t.schedules).values(state="pending", fired_at=None)
    return stmt.on_conflict_do_update(
        index_elements=["kind", "ref"],
        set_={"due_at": stmt.excluded.due_at, "state": "pending", "fired_at": None},
    )


class ScheduleRepo(Repo):
    async def arm(self, kind: str, ref: str, due_at: datetime) -> None:
        """Create the schedule, or re-arm it for a new time."""
        await self.c.execute(_arm_schedule(self.c.dialect.name), {"kind": kind, "ref": ref, "due_at": due_at})

    async def cancel(self, kind: str, ref: str) -> None:
        await self.c.execute(
            t.schedules.update()
            .where(t.schedules.c.kind == kind, t.schedules.c.ref == ref, t.schedules.c.state == "pending")
            .values(state="cancelled")
        )

    async def pending_of(self, kind: str) -> list[Schedule]:
        rows = await self.c.execute(
            sa.select(t.schedules)
            .where(t.schedules.c.kind == kind, t.schedules.c.state == "pending")
            .order_by(t.schedules.c.due_at, t.schedules.c.id)
        )
        return all_models(Schedule, rows)

    async def due(self, now: datetime, limit: int = 100) -> list[Schedule]:
        rows = await self.c.execute(
            sa.select(t.schedules)
            .where(t.schedules.c.state == "pending", t.schedules.c.due_at <= now)
            .order_by(t.schedules.c.due_at, t.schedules.c.id)
            .limit(limit)
        )
        return all_models(Schedule, rows)

    async def claim(self, schedule_id: int, now: datetime) -> bool:
        """Take a due schedule for firing; only one claimant ever succeeds."""
        result = await self.c.execute(
            t.schedules.update()
            .where(t.schedules.c.id == schedule_id, t.schedules.c.state == "pending")
            .values(state="done", fired_at=now)
        )
        return result.rowcount == 1

    async def get(self, kind: str, ref: str) -> Schedule | None:
        row = (await self.c.execute(_SCHEDULE, {"kind": kind, "ref": ref})).first()
        return to_model(Schedule, row)


class InboxRepo(Repo):
    async def accept_many(self, channel: str, rows: list[dict[str, Any]], now: datetime) -> None:
        """Store a batch of inbound messages in one statement; repeats of known ones are skipped.

        Each row carries `dedupe_key` and `payload`.
        """
        statement = self._insert(t.inbox).on_conflict_do_nothing(index_elements=["channel", "dedupe_key"])
        await self.c.execute(statement, [{"channel": channel, "received_at": now, **row} for row in rows])

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


class MenuRepo(Repo):
    async def remember(self, channel: str, chat_id: str, actions: list[str | None], now: datetime) -> None:
        await self.remember_many(channel, [chat_id], actions, now)

    async def remember_many(
        self, channel: str, chat_ids: Sequence[str], actions: list[str | None], now: datetime
    ) -> None:
        """The same menu for many chats (the members of one batched send): one statement."""
        statement = self._insert(t.menus)
        statement = statement.on_conflict_do_update(
            index_elements=["channel", "chat_id"],
            set_={"actions": statement.excluded.actions, "updated_at": statement.excluded.updated_at},
        )
        await self.c.execute(
            statement,
            [
                {"channel": channel, "chat_id": chat, "actions": actions, "updated_at": now}
                for chat in chat_ids
            ],
        )

    async def action(self, channel: str, chat_id: str, number: int) -> str | None:
        actions = (
            await self.c.execute(
                sa.select(t.menus.c.actions).where(t.menus.c.channel == channel, t.menus.c.chat_id == chat_id)
            )
        ).scalar()
        if not actions or not 1 <= number <= len(actions):
            return None
        return actions[number - 1]


# Statements of the ledger's hot paths, built once: constructing a statement
# costs more than SQLite takes to run it.


def _dialect_insert(dialect: str, table: sa.Table) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


@cache
def _account_ids() -> sa.CompoundSelect[Any]:
    """(id, kind) of the system accounts and of the open accounts of person `user_id`."""
    a = t.point_accounts.c
    return sa.union_all(
        sa.select(a.id, a.kind).where(a.user_id.is_(None)),
        sa.select(a.id, a.kind).where(a.user_id == sa.bindparam("user_id"), a.merged_into.is_(None)),
    )


@cache
def _insert_entry(dialect: str) -> Any:
    # The unique source_key (and reverses_id) decide: on PostgreSQL a concurrent
    # twin waits for the first to commit and then inserts nothing.
    table = t.ledger_entries
    return _dialect_insert(dialect, table).on_conflict_do_nothing().returning(table.c.id)


def _owner_grid() -> sa.ScalarSelect[Any]:
    return (
        sa.select(t.users.c.grid_key)
        .where(t.users.c.id == t.point_accounts.c.user_id)
        .scalar_subquery()
        .label("grid_key")
    )


@cache
def _take() -> sa.Update:
    """Debit `amount` from `account` if it holds that much (the community always does)."""
    a = t.point_accounts.c
    amount = sa.bindparam("amount", type_=sa.Integer)
    return (
        t.point_accounts.update()
        .where(a.id == sa.bindparam("account"), sa.or_(a.balance >= amount, a.kind == COMMUNITY))
        .values(balance=a.balance - amount)
        .returning(a.kind, a.user_id, _owner_grid())
    )


@cache
def _give() -> sa.Update:
    """Credit `amount` to `account` unless it was closed by a merge."""
    a = t.point_accounts.c
    return (
        t.point_accounts.update()
        .where(a.id == sa.bindparam("account"), a.merged_into.is_(None))
        .values(balance=a.balance + sa.bindparam("amount", type_=sa.Integer))
        .returning(a.kind, a.user_id, _owner_grid())
    )


@cache
def _add_earnings(dialect: str) -> Any:
    table = t.point_earnings
    insert = _dialect_insert(dialect, table)
    return insert.on_conflict_do_update(
        index_elements=["user_id", "period"],
        set_={"points": table.c.points + insert.excluded.points, "grid_key": insert.excluded.grid_key},
    )


@cache
def _leaderboard(by_grid: bool) -> sa.Select[Any]:
    """Top earners of `period` (of grid `grid_key`), best first, `limit` of them, without those opted out.

    Walks ix_point_earnings_period_points (or _period_grid_points) from the
    top down and stops after `limit` rows that qualify, however many people
    earned something.
    """
    p, u = t.point_earnings.c, t.users.c
    query = (
        sa.select(p.user_id, p.points)
        .join(t.users, u.id == p.user_id)
        .where(p.period == sa.bindparam("period"), p.points > 0, sa.not_(u.leaderboard_opt_out))
        .order_by(p.points.desc(), p.user_id)
        .limit(sa.bindparam("limit"))
    )
    return query.where(p.grid_key == sa.bindparam("grid_key")) if by_grid else query


@cache
def _amounts() -> sa.CompoundSelect[Any]:
    """(kind, balance) of a person's open accounts and (ALL_TIME, points) earned; binds `user_id`."""
    a, p = t.point_accounts.c, t.point_earnings.c
    return sa.union_all(
        sa.select(a.kind.label("name"), a.balance.label("amount")).where(
            a.user_id == sa.bindparam("user_id"), a.merged_into.is_(None)
        ),
        sa.select(sa.literal(ALL_TIME).label("name"), p.points.label("amount")).where(
            p.user_id == sa.bindparam("user_id"), p.period == ALL_TIME
        ),
    )


@cache
def _recent_entries() -> sa.Select[Any]:
    """Newest entries of a person's open spendable account (binds `user_id`, `limit`), signed for them.

    Built once: constructing this union costs more than running it.
    """
    a, e = t.point_accounts.c, t.ledger_entries.c
    account = (
        sa.select(a.id)
        .where(a.user_id == sa.bindparam("user_id"), a.kind == USER, a.merged_into.is_(None))
        .scalar_subquery()
    )

    def side(column: sa.ColumnElement[int], sign: int) -> sa.Subquery:
        # Each side walks its own index backwards: O(limit), however long the history.
        return (
            sa.select(
                e.id,
                (e.amount * sign).label("amount"),
                e.reason_key,
                e.reason_params,
                e.source_key,
                e.actor_id,
                e.reverses_id,
                e.created_at,
            )
            .where(column == account)
            .order_by(e.id.desc())
            .limit(sa.bindparam("limit"))
            .subquery()
        )

    both = sa.union_all(
        sa.select(side(e.credit_account_id, 1)), sa.select(side(e.debit_account_id, -1))
    ).subquery()
    return sa.select(both).order_by(both.c.id.desc()).limit(sa.bindparam("limit"))


class LedgerRepo(Repo):
    """The time bank (storage/ledger.py): points move only by appending balanced entries.

    `tz` is the community's time zone: it decides which month an entry's points
    count towards on the monthly leaderboard.
    """

    def __init__(self, connection: DbConnection, tz: tzinfo = UTC) -> None:
        super().__init__(connection)
        self.tz = tz

    def month(self, now: datetime) -> str:
        """The period of the monthly leaderboard `now` falls in."""
        return month_of(now, self.tz)

    # -- accounts -------------------------------------------------------------

    async def _open_account(self, kind: str, user_id: int | None) -> int | None:
        return (await self._accounts(user_id)).get(kind)

    async def _accounts(self, user_id: int | None) -> dict[str, int]:
        """Ids of the system accounts and of this person's open accounts, by kind: one query."""
        rows = await self.c.execute(_account_ids(), {"user_id": user_id})
        return {row.kind: row.id for row in rows}

    async def account(self, kind: str, user_id: int | None = None) -> int:
        """The open account of this kind (of this person), created on first use."""
        if (kind in SYSTEM_KINDS) != (user_id is None):
            raise ValueError(f"{kind} accounts {'have no owner' if user_id is not None else 'need an owner'}")
        return (await self._ensure(user_id, kind))[kind]

    async def _ensure(self, user_id: int | None, *kinds: str) -> dict[str, int]:
        """Ids of the accounts of these kinds (system ones, or this person's), creating what is missing."""
        if user_id is None and not set(kinds) <= set(SYSTEM_KINDS):
            raise ValueError("personal accounts need an owner")
        accounts = await self._accounts(user_id)
        missing = [kind for kind in kinds if kind not in accounts]
        for kind in missing:
            owner = None if kind in SYSTEM_KINDS else user_id
            # A concurrent first use creates the same account: the unique
            # indexes let one insert win and the other do nothing.
            await self.c.execute(
                self._insert(t.point_accounts).values(kind=kind, user_id=owner).on_conflict_do_nothing()
            )
        return await self._accounts(user_id) if missing else accounts

    async def _live(self, account_id: int) -> int:
        """The account that took over `account_id` when its owner was merged into another person."""
        while True:
            merged_into = (
                await self.c.execute(
                    sa.select(t.point_accounts.c.merged_into).where(t.point_accounts.c.id == account_id)
                )
            ).scalar()
            if merged_into is None:
                return account_id
            account_id = merged_into

    # -- movements ------------------------------------------------------------

    async def post(
        self,
        debit: int,
        credit: int,
        amount: int,
        source_key: str,
        reason_key: str,
        reason_params: dict[str, Any],
        actor_id: int | None,
        now: datetime,
        *,
        reverses_id: int | None = None,
        period: str | None = None,
    ) -> int | None:
        """Move `amount` points from `debit` to `credit`; the new entry's id.

        None if an entry for `source_key` exists already: the event was counted
        before (a retry, a second click, a concurrent worker). Raises
        InsufficientPoints if `debit` holds fewer points, leaving the
        surrounding transaction as it was.
        """
        if amount <= 0:
            raise ValueError("a movement moves a positive number of points")
        if debit == credit:
            raise ValueError("a movement needs two different accounts")
        period = period or self.month(now)
        dialect = self.c.dialect.name
        # A savepoint, so a refused movement undoes its own entry and nothing else.
        async with self.c.begin_nested():
            entry = {
                "debit_account_id": debit,
                "credit_account_id": credit,
                "amount": amount,
                "source_key": source_key,
                "reverses_id": reverses_id,
                "reason_key": reason_key,
                "reason_params": reason_params,
                "actor_id": actor_id,
                "period": period,
                "created_at": now,
            }
            entry_id = (await self.c.execute(_insert_entry(dialect), entry)).scalar()
            if entry_id is None:
                return None
            touched: dict[int, sa.Row[Any]] = {}
            # Rows are locked in id order, so two opposite movements cannot deadlock.
            for account_id in sorted((debit, credit)):
                # The debit's balance is checked by its UPDATE (and the table's
                # CHECK), never by an earlier read another transaction could overtake.
                statement = _take() if account_id == debit else _give()
                row = (await self.c.execute(statement, {"account": account_id, "amount": amount})).first()
                if row is None and account_id == debit:
                    raise InsufficientPoints(debit, amount)
                if row is None:
                    raise LedgerError(f"account {credit} is closed or does not exist")
                touched[account_id] = row
            await self._count_earnings(touched[debit], touched[credit], amount, period)
        return int(entry_id)

    async def _count_earnings(
        self, debit: sa.Row[Any], credit: sa.Row[Any], amount: int, period: str
    ) -> None:
        if debit.kind == COMMUNITY and credit.kind == USER:
            person, points = credit, amount
        elif debit.kind == USER and credit.kind == COMMUNITY:
            person, points = debit, -amount
        else:
            return
        await self.c.execute(
            _add_earnings(self.c.dialect.name),
            [
                {"user_id": person.user_id, "period": key, "points": points, "grid_key": person.grid_key}
                for key in (period, ALL_TIME)
            ],
        )

    async def credit_user(
        self,
        user_id: int,
        amount: int,
        source_key: str,
        reason_key: str,
        reason_params: dict[str, Any],
        actor_id: int | None,
        now: datetime,
    ) -> int | None:
        """Award points from the community; None if `source_key` was awarded before."""
        accounts = await self._ensure(user_id, COMMUNITY, USER)
        return await self.post(
            accounts[COMMUNITY],
            accounts[USER],
            amount,
            source_key,
            reason_key,
            reason_params,
            actor_id,
            now,
        )

    async def reverse(
        self,
        entry_id: int,
        reason_key: str,
        reason_params: dict[str, Any],
        actor_id: int | None,
        now: datetime,
    ) -> int | None:
        """Undo an entry with its mirror image; None if it was reversed already.

        The points count towards the original's month, so a correction takes
        them off the leaderboard they were wrongly put on. Redemptions are not
        reversed but settled (spend/release), and a reversal is final: award
        the points again instead of reversing it.
        """
        e, d, c = t.ledger_entries, t.point_accounts.alias("d"), t.point_accounts.alias("c")
        original = (
            await self.c.execute(
                sa.select(
                    e.c.debit_account_id,
                    e.c.credit_account_id,
                    e.c.amount,
                    e.c.reverses_id,
                    e.c.period,
                    d.c.kind.label("debit_kind"),
                    c.c.kind.label("credit_kind"),
                )
                .join(d, d.c.id == e.c.debit_account_id)
                .join(c, c.c.id == e.c.credit_account_id)
                .where(e.c.id == entry_id)
            )
        ).first()
        if original is None:
            raise LookupError(f"no ledger entry {entry_id}")
        if original.reverses_id is not None:
            raise LedgerError("a reversal cannot be reversed")
        if RESERVED in (original.debit_kind, original.credit_kind):
            raise LedgerError("redemptions are settled with spend() or release()")
        return await self.post(
            await self._live(original.credit_account_id),
            await self._live(original.debit_account_id),
            original.amount,
            reversal_key(entry_id),
            reason_key,
            reason_params,
            actor_id,
            now,
            reverses_id=entry_id,
            period=original.period,
        )

    async def reserve(
        self,
        user_id: int,
        amount: int,
        ref: str,
        reason_key: str,
        reason_params: dict[str, Any],
        actor_id: int | None,
        now: datetime,
    ) -> int | None:
        """Hold points for redemption `ref` until it is approved or rejected; None if held already."""
        accounts = await self._ensure(user_id, USER, RESERVED)
        return await self.post(
            accounts[USER],
            accounts[RESERVED],
            amount,
            reserve_key(ref),
            reason_key,
            reason_params,
            actor_id,
            now,
        )

    async def spend(
        self,
        ref: str,
        actor_id: int | None,
        now: datetime,
        reason_key: str = REASON_REDEMPTION_APPROVED,
        reason_params: dict[str, Any] | None = None,
    ) -> int | None:
        """Approve redemption `ref`: its held points are spent. None if it was settled before.

        The entry's reason parameters default to the redemption's (what was redeemed).
        """
        return await self._settle(ref, SPENT, actor_id, now, reason_key, reason_params)

    async def release(
        self,
        ref: str,
        actor_id: int | None,
        now: datetime,
        reason_key: str = REASON_REDEMPTION_REJECTED,
        reason_params: dict[str, Any] | None = None,
    ) -> int | None:
        """Reject redemption `ref`: its held points go back. None if it was settled before.

        The entry's reason parameters default to the redemption's (what was redeemed).
        """
        return await self._settle(ref, USER, actor_id, now, reason_key, reason_params)

    async def _settle(
        self,
        ref: str,
        to_kind: str,
        actor_id: int | None,
        now: datetime,
        reason_key: str,
        reason_params: dict[str, Any] | None,
    ) -> int | None:
        e, a = t.ledger_entries, t.point_accounts
        held = (
            await self.c.execute(
                sa.select(e.c.amount, e.c.reason_params, a.c.user_id)
                .join(a, a.c.id == e.c.debit_account_id)
                .where(e.c.source_key == reserve_key(ref))
            )
        ).first()
        if held is None:
            raise LookupError(f"no points held for redemption {ref}")
        # The holder may have been merged into another person since: their open accounts.
        accounts = await self._ensure(held.user_id, RESERVED, to_kind)
        return await self.post(
            accounts[RESERVED],
            accounts[to_kind],
            held.amount,
            settle_key(ref),
            reason_key,
            held.reason_params if reason_params is None else reason_params,
            actor_id,
            now,
        )

    async def merge_users(self, keep: int, drop: int, now: datetime) -> None:
        """Give `drop`'s points and history to `keep` (linked accounts), before `drop` is removed."""
        a = t.point_accounts.c
        accounts = await self.c.execute(
            sa.select(a.id, a.kind, a.balance).where(a.user_id == drop, a.merged_into.is_(None))
        )
        for account in accounts.all():
            survivor = await self._open_account(account.kind, keep)
            if survivor is None:
                continue  # the account simply changes hands below
            if account.balance > 0:
                await self.post(
                    account.id,
                    survivor,
                    account.balance,
                    f"merge:{account.id}",
                    REASON_ACCOUNTS_MERGED,
                    {},
                    None,
                    now,
                )
            await self.c.execute(
                t.point_accounts.update().where(a.id == account.id).values(merged_into=survivor)
            )
        await self.c.execute(t.point_accounts.update().where(a.user_id == drop).values(user_id=keep))
        p = t.point_earnings
        earned = (await self.c.execute(sa.select(p.c.period, p.c.points).where(p.c.user_id == drop))).all()
        if earned:
            stmt = self._insert(p).values(
                [{"user_id": keep, "period": row.period, "points": row.points} for row in earned]
            )
            await self.c.execute(
                stmt.on_conflict_do_update(
                    index_elements=["user_id", "period"], set_={"points": p.c.points + stmt.excluded.points}
                )
            )
            await self.c.execute(p.delete().where(p.c.user_id == drop))
            await self.c.execute(
                p.update()
                .where(p.c.user_id == keep)
                .values(grid_key=sa.select(t.users.c.grid_key).where(t.users.c.id == keep).scalar_subquery())
            )
        await self.c.execute(
            t.ledger_entries.update().where(t.ledger_entries.c.actor_id == drop).values(actor_id=keep)
        )

    # -- reading --------------------------------------------------------------

    async def _amounts(self, user_id: int) -> dict[str, int]:
        """Balances of the open accounts of this person by kind, and all-time earnings: one query."""
        return {name: int(amount) for name, amount in await self.c.execute(_amounts(), {"user_id": user_id})}

    async def balance(self, user_id: int) -> int:
        """Points this person can redeem now."""
        return (await self._amounts(user_id)).get(USER, 0)

    async def reserved(self, user_id: int) -> int:
        """Points held by this person's redemptions that wait for approval."""
        return (await self._amounts(user_id)).get(RESERVED, 0)

    async def lifetime(self, user_id: int) -> int:
        """Net points ever earned from the community (what tiers are based on)."""
        return (await self._amounts(user_id)).get(ALL_TIME, 0)

    async def recent(self, user_id: int, limit: int = 10) -> list[LedgerEntry]:
        """The newest entries into and out of this person's spendable account, newest first."""
        rows = await self.c.execute(_recent_entries(), {"user_id": user_id, "limit": limit})
        return all_models(LedgerEntry, rows)

    async def statement(self, user_id: int, limit: int = 10) -> PointsStatement:
        """Everything /points shows, in two queries."""
        amounts = await self._amounts(user_id)
        return PointsStatement(
            balance=amounts.get(USER, 0),
            reserved=amounts.get(RESERVED, 0),
            lifetime=amounts.get(ALL_TIME, 0),
            recent=await self.recent(user_id, limit) if USER in amounts else [],
        )

    async def leaderboard(
        self, period: str = ALL_TIME, grid_key: str | None = None, limit: int = 10
    ) -> list[Standing]:
        """Who earned most in `period` (a month from `month()`, or all time), in the community or one grid.

        People who opted out are left out, not ranked as zero.
        """
        rows = await self.c.execute(
            _leaderboard(grid_key is not None), {"period": period, "grid_key": grid_key, "limit": limit}
        )
        return [Standing(user_id=row.user_id, points=row.points) for row in rows]

    # -- auditing -------------------------------------------------------------

    async def discrepancies(self) -> list[str]:
        """Everything the cached balances and earnings say that the entries do not."""
        e, a = t.ledger_entries.c, t.point_accounts.c
        problems: list[str] = []
        moves = sa.union_all(
            sa.select(e.credit_account_id.label("account_id"), e.amount.label("delta")),
            sa.select(e.debit_account_id.label("account_id"), (-e.amount).label("delta")),
        ).subquery()
        summed = dict(
            (
                await self.c.execute(
                    sa.select(moves.c.account_id, sa.func.sum(moves.c.delta)).group_by(moves.c.account_id)
                )
            ).all()
        )
        total = 0
        for row in await self.c.execute(sa.select(a.id, a.kind, a.balance)):
            total += row.balance
            expected = int(summed.pop(row.id, 0))
            if row.balance != expected:
                problems.append(f"account {row.id}: balance {row.balance}, entries sum to {expected}")
            if row.balance < 0 and row.kind != COMMUNITY:
                problems.append(f"account {row.id} ({row.kind}) is overdrawn: {row.balance}")
        if summed:
            problems.append(f"entries for unknown accounts {sorted(summed)}")
        if total != 0:
            problems.append(f"balances sum to {total}, not 0")

        earned: dict[tuple[int, str], int] = {}
        d, c = t.point_accounts.alias("d"), t.point_accounts.alias("c")
        pairs = (
            (d.c.kind == COMMUNITY, c.c.kind == USER, c.c.user_id, 1),
            (d.c.kind == USER, c.c.kind == COMMUNITY, d.c.user_id, -1),
        )
        for debit_is, credit_is, owner, sign in pairs:
            rows = await self.c.execute(
                sa.select(owner, t.ledger_entries.c.period, sa.func.sum(e.amount))
                .select_from(t.ledger_entries)
                .join(d, d.c.id == e.debit_account_id)
                .join(c, c.c.id == e.credit_account_id)
                .where(debit_is, credit_is)
                .group_by(owner, e.period)
            )
            for user_id, period, points in rows:
                for key in ((user_id, period), (user_id, ALL_TIME)):
                    earned[key] = earned.get(key, 0) + sign * int(points)
        p = t.point_earnings.c
        cached = {
            (row.user_id, row.period): row.points
            for row in await self.c.execute(sa.select(p.user_id, p.period, p.points))
        }
        stale = await self.c.execute(
            sa.select(p.user_id, p.period)
            .join(t.users, t.users.c.id == p.user_id)
            .where(p.grid_key.is_distinct_from(t.users.c.grid_key))
        )
        problems.extend(f"earnings of {tuple(row)} name another grid than the person's" for row in stale)
        for key in sorted(set(earned) | set(cached)):
            if earned.get(key, 0) != cached.get(key, 0):
                problems.append(
                    f"earnings of {key}: cached {cached.get(key, 0)}, entries say {earned.get(key, 0)}"
                )
        return problems

    async def verify(self) -> bool:
        """True if every cached balance and earning equals the sum of the entries."""
        return not await self.discrepancies()


class LinkRepo(Repo):
    def __init__(self, connection: DbConnection, ledger: LedgerRepo) -> None:
        super().__init__(connection)
        self.ledger = ledger

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

    async def merge_users(self, keep: int, drop: int, now: datetime | None = None) -> None:
        """Give everything of user `drop` to user `keep`, then remove `drop`."""
        # `now` dates the entries that move points; callers should pass their clock.
        now = now or datetime.now(UTC)
        await self._withdraw_double_requests(keep, drop, now)
        await self.ledger.merge_users(keep, drop, now)
        for table, column in _references_to_users():
            # Where one row per person is allowed (one sign-up per shift, one answer per
            # question...) and both people have one, the surviving person's row stays.
            for unique in _unique_column_sets(table):
                if column.name not in unique:
                    continue
                theirs = table.alias("theirs")
                same_place = [theirs.c[name] == table.c[name] for name in unique if name != column.name]
                clash = sa.exists().where(theirs.c[column.name] == keep, *same_place)
                await self.c.execute(table.delete().where(column == drop, clash))
            await self.c.execute(table.update().where(column == drop).values({column.name: keep}))
        kept_grids = sa.select(t.grid_assignments.c.grid_key).where(t.grid_assignments.c.user_id == keep)
        await self.c.execute(
            t.grid_assignments.update()
            .where(t.grid_assignments.c.user_id == drop, t.grid_assignments.c.grid_key.not_in(kept_grids))
            .values(user_id=keep)
        )
        await self.c.execute(t.users.delete().where(t.users.c.id == drop))

    async def _withdraw_double_requests(self, keep: int, drop: int, now: datetime) -> None:
        """Where both accounts wait for the same reward, the person may keep one request (one
        pending request per person and reward): the dropped account's is withdrawn and its held
        points go back, to move with the rest of its points."""
        r = t.redemptions.c
        kept = t.redemptions.alias("kept")
        doubles = await self.c.execute(
            sa.select(r.id).where(
                r.user_id == drop,
                r.state == PENDING,
                sa.exists().where(
                    kept.c.user_id == keep, kept.c.state == PENDING, kept.c.reward_key == r.reward_key
                ),
            )
        )
        for (redemption_id,) in doubles.all():
            await self.c.execute(
                t.redemptions.update().where(r.id == redemption_id).values(state=REJECTED, decided_at=now)
            )
            await self.ledger.release(redemption_ref(redemption_id), None, now, REASON_REDEMPTION_MERGED)


# Handled by their own rules when two people are merged (points move as ledger entries).
_MERGED_SEPARATELY = frozenset(
    {"users", "grid_assignments", "point_accounts", "point_earnings", "ledger_entries"}
)


@cache
def _references_to_users() -> list[tuple[sa.Table, sa.Column[Any]]]:
    """Every column that points at a person, so merging two people cannot miss a table added later."""
    return [
        (table, column)
        for table in t.metadata.sorted_tables
        if table.name not in _MERGED_SEPARATELY
        for column in table.columns
        if any(fk.column is t.users.c.id for fk in column.foreign_keys)
    ]


def _unique_column_sets(table: sa.Table) -> list[tuple[str, ...]]:
    """Column sets that are unique everywhere in the table (partial unique indexes aside)."""
    sets = [tuple(c.name for c in table.primary_key.columns)]
    sets += [
        tuple(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    ]
    sets += [
        tuple(c.name for c in index.columns)
        for index in table.indexes
        if index.unique and index.dialect_options["sqlite"].get("where") is None
    ]
    return sets


class Repos:
    """All repositories bound to one transaction.

    `tz` is the community's time zone, which decides the months of the points leaderboard.
    """

    def __init__(self, connection: DbConnection, tz: tzinfo = UTC) -> None:
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
        self.ledger = LedgerRepo(connection, tz)
        self.links = LinkRepo(connection, self.ledger)
        self.patrols = PatrolRepo(connection)
        self.attendance = AttendanceRepo(connection)
        self.rewards = RewardRepo(connection)
        self.broadcasts = BroadcastRepo(connection)
        self.notices = NoticeRepo(connection)
