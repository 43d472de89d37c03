"""Hazard reports: the reports themselves, ticket numbers, state events, photos, cards and ratings.

The states a report moves through are storage/report_states.py; every move is
conditional on the state it leaves, so a second click loses the race harmlessly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam

from storage import report_states as rs
from storage import schema as t
from storage.models import Report, ReportCard, ReportEvent
from storage.rows import Insert, Repo, all_models, to_model


class ReportRepo(Repo):
    """Reports. The statements of reporting and of a report's card (bench/throughput.py) are prebuilt."""

    async def next_ticket_number(self, year: int) -> int:
        def next_number(insert: Insert) -> Any:
            counter = t.ticket_counters
            return (
                insert(counter)
                .values(last_seq=1)
                .on_conflict_do_update(index_elements=["year"], set_={"last_seq": counter.c.last_seq + 1})
                .returning(counter.c.last_seq)
            )

        return int((await self.c.execute(self.prebuilt(next_number), {"year": year})).scalar_one())

    async def create(self, **values: Any) -> Report:
        insert = self.prebuilt(lambda: t.reports.insert().returning(t.reports.c.id))
        report_id = (await self.c.execute(insert, values)).scalar_one()
        report = await self.get(report_id)
        assert report is not None
        return report

    async def get(self, report_id: int) -> Report | None:
        select = self.prebuilt(lambda: sa.select(t.reports).where(t.reports.c.id == bindparam("report_id")))
        row = (await self.c.execute(select, {"report_id": report_id})).first()
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
        values = {
            "report_id": report_id,
            "actor_id": actor_id,
            "from_state": from_state,
            "to_state": to_state,
            "note": note,
            "created_at": now,
        }
        await self.c.execute(self.prebuilt(lambda: t.report_events.insert()), values)

    async def events(self, report_id: int) -> list[ReportEvent]:
        rows = await self.c.execute(
            sa.select(t.report_events)
            .where(t.report_events.c.report_id == report_id)
            .order_by(t.report_events.c.id)
        )
        return all_models(ReportEvent, rows)

    async def count_since(self, reporter_id: int, since: datetime) -> int:
        count = self.prebuilt(
            lambda: (
                sa.select(sa.func.count())
                .select_from(t.reports)
                .where(
                    t.reports.c.reporter_id == bindparam("reporter_id"),
                    t.reports.c.created_at >= bindparam("since"),
                )
            )
        )
        result = await self.c.execute(count, {"reporter_id": reporter_id, "since": since})
        return int(result.scalar_one())

    async def by_reporter(self, reporter_id: int, limit: int = 10) -> list[Report]:
        select = self.prebuilt(
            lambda: (
                sa.select(t.reports)
                .where(t.reports.c.reporter_id == bindparam("reporter_id"))
                .order_by(t.reports.c.id.desc())
                .limit(bindparam("limit"))
            )
        )
        rows = await self.c.execute(select, {"reporter_id": reporter_id, "limit": limit})
        return all_models(Report, rows)

    async def open_reports(self, grid_keys: Sequence[str] | None, limit: int = 30) -> list[Report]:
        query = sa.select(t.reports).where(
            t.reports.c.state.in_((rs.SUBMITTED, rs.ACKNOWLEDGED, rs.ASSIGNED, rs.IN_PROGRESS))
        )
        if grid_keys is not None:
            query = query.where(t.reports.c.grid_key.in_(grid_keys))
        rows = await self.c.execute(query.order_by(t.reports.c.created_at, t.reports.c.id).limit(limit))
        return all_models(Report, rows)

    async def set_rating(self, report_id: int, rating: int, now: datetime) -> bool:
        r = t.reports.c
        result = await self.c.execute(
            t.reports.update()
            .where(r.id == report_id, r.rating.is_(None), r.state == rs.RESOLVED)
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
        select = self.prebuilt(
            lambda: (
                sa.select(t.report_photos.c.media_id)
                .where(
                    t.report_photos.c.report_id == bindparam("report_id"),
                    t.report_photos.c.kind == bindparam("kind"),
                )
                .order_by(t.report_photos.c.position)
            )
        )
        rows = await self.c.execute(select, {"report_id": report_id, "kind": kind})
        return list(rows.scalars())

    async def add_card(self, report_id: int, channel: str, chat_id: str, message_id: str) -> None:
        def upsert(insert: Insert) -> Any:
            stmt = insert(t.report_cards)
            return stmt.on_conflict_do_update(
                index_elements=["report_id", "channel", "chat_id"],
                set_={"message_id": stmt.excluded.message_id},
            )

        values = {"report_id": report_id, "channel": channel, "chat_id": chat_id, "message_id": message_id}
        await self.c.execute(self.prebuilt(upsert), values)

    async def card(self, report_id: int, channel: str, chat_id: str) -> ReportCard | None:
        select = self.prebuilt(
            lambda: sa.select(t.report_cards).where(
                t.report_cards.c.report_id == bindparam("report_id"),
                t.report_cards.c.channel == bindparam("channel"),
                t.report_cards.c.chat_id == bindparam("chat_id"),
            )
        )
        row = (
            await self.c.execute(select, {"report_id": report_id, "channel": channel, "chat_id": chat_id})
        ).first()
        return to_model(ReportCard, row)
