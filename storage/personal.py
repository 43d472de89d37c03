"""Personal data, generically: a person's rows of any table, erasing them, and the report data
(places and photos) that retention and erasure remove.

The tables and columns come from the features' declarations (handlers/registry.py PersonalData);
nothing here names a feature. Only tables and columns of storage/schema.py are accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa

from storage import schema as t
from storage.outbox import PENDING
from storage.rows import Repo

# What a message dropped because its recipient was erased says in the outbox's last_error.
ERASED_RECIPIENT = "recipient erased"
ERASED_CHAT = "erased"
CLOSED_STATES = ("resolved", "rejected", "duplicate")


def _table(name: str) -> sa.Table:
    table = t.metadata.tables.get(name)
    if table is None:
        raise KeyError(f"no table {name!r}")
    return table


class PersonalDataRepo(Repo):
    async def rows(
        self, table_name: str, column: str, user_id: int, columns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        table = _table(table_name)
        selected = [table.c[name] for name in columns] if columns is not None else list(table.c)
        order = list(table.primary_key.columns)
        result = await self.c.execute(sa.select(*selected).where(table.c[column] == user_id).order_by(*order))
        return [dict(row._mapping) for row in result]

    async def delete(self, table_name: str, column: str, user_id: int) -> int:
        table = _table(table_name)
        result = await self.c.execute(table.delete().where(table.c[column] == user_id))
        return int(result.rowcount)

    async def clear(self, table_name: str, column: str, user_id: int, columns: Sequence[str]) -> int:
        table = _table(table_name)
        result = await self.c.execute(
            table.update().where(table.c[column] == user_id).values({name: None for name in columns})
        )
        return int(result.rowcount)

    async def drop_messages_to(self, channel: str, chat_ids: Sequence[str], now: datetime) -> int:
        """Pending messages to these private chats are not sent (marked failed: broadcast recipients
        refer to outbox rows, so they are kept), and the numbered menu shown there is forgotten."""
        if not chat_ids:
            return 0
        o = t.outbox.c
        result = await self.c.execute(
            t.outbox.update()
            .where(o.channel == channel, o.chat_id.in_(list(chat_ids)), o.state == PENDING)
            .values(state="failed", last_error=ERASED_RECIPIENT, sent_at=now)
        )
        # What was sent stays for the delivery statistics, no longer addressed to the person and
        # without what it said (a /mydata file sent through the outbox is a copy of all they were).
        await self.c.execute(
            t.outbox.update()
            .where(o.channel == channel, o.chat_id.in_(list(chat_ids)))
            .values(chat_id=ERASED_CHAT, payload={})
        )
        m = t.menu_entries.c
        await self.c.execute(
            t.menu_entries.delete().where(m.channel == channel, m.chat_id.in_(list(chat_ids)))
        )
        return int(result.rowcount)

    async def closed_reports_of(self, reporter_id: int) -> list[int]:
        r = t.reports.c
        rows = await self.c.execute(
            sa.select(r.id).where(r.reporter_id == reporter_id, r.state.in_(CLOSED_STATES)).order_by(r.id)
        )
        return list(rows.scalars())

    async def report_photos(self, report_id: int) -> list[dict[str, Any]]:
        """The photos of a report as listed in an export: which, and the stored file's fingerprint."""
        p, m = t.report_photos.c, t.media.c
        rows = await self.c.execute(
            sa.select(p.kind, p.position, m.sha256, m.width, m.height, m.size)
            .join(t.media, t.media.c.id == p.media_id)
            .where(p.report_id == report_id)
            .order_by(p.kind.desc(), p.position)
        )
        return [dict(row._mapping) for row in rows]

    async def remove_report_photos(self, report_ids: Sequence[int], kinds: Sequence[str]) -> list[str]:
        """Take these photos off the reports; the media rows nothing refers to any more go too.
        Returns the stored files of those, for the caller to delete."""
        if not report_ids:
            return []
        p = t.report_photos.c
        chosen = sa.and_(p.report_id.in_(list(report_ids)), p.kind.in_(list(kinds)))
        media_ids = list((await self.c.execute(sa.select(p.media_id).where(chosen).distinct())).scalars())
        if not media_ids:
            return []
        await self.c.execute(t.report_photos.delete().where(chosen))
        still_used = sa.or_(*(sa.exists().where(column == t.media.c.id) for column in _references_to_media()))
        orphans = sa.and_(t.media.c.id.in_(media_ids), sa.not_(still_used))
        paths = list((await self.c.execute(sa.select(t.media.c.path).where(orphans))).scalars())
        await self.c.execute(t.media.delete().where(orphans))
        return paths

    async def mark_reports_anonymous(self, reporter_id: int) -> None:
        await self.c.execute(
            t.reports.update().where(t.reports.c.reporter_id == reporter_id).values(anonymous=True)
        )

    async def ledger_of_accounts(self, account_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Every entry into or out of these accounts, oldest first."""
        e = t.ledger_entries.c
        rows = await self.c.execute(
            sa.select(t.ledger_entries)
            .where(
                sa.or_(e.debit_account_id.in_(list(account_ids)), e.credit_account_id.in_(list(account_ids)))
            )
            .order_by(e.id)
        )
        return [dict(row._mapping) for row in rows]

    async def forget_recipient_chats(self, user_id: int) -> None:
        """A broadcast recipient row keeps its acknowledgement for the statistics, but no longer
        the person's chat id: it becomes "erased:<row id>", unique as the constraint wants."""
        b = t.broadcast_recipients.c
        await self.c.execute(
            t.broadcast_recipients.update()
            .where(b.user_id == user_id)
            .values(chat_id=sa.literal("erased:").concat(sa.cast(b.id, sa.String)))
        )

    async def reports_past_retention(self, closed_before: datetime, limit: int = 500) -> list[int]:
        """Closed reports older than the retention that still hold a place or a photo."""
        r = t.reports.c
        rows = await self.c.execute(
            sa.select(r.id)
            .where(
                r.state.in_(CLOSED_STATES),
                r.closed_at < closed_before,
                sa.or_(
                    r.latitude.is_not(None),
                    r.longitude.is_not(None),
                    r.building.is_not(None),
                    r.unit.is_not(None),
                    sa.exists().where(t.report_photos.c.report_id == r.id),
                ),
            )
            .order_by(r.id)
            .limit(limit)
        )
        return list(rows.scalars())

    async def forget_report_places(self, report_ids: Sequence[int]) -> None:
        if report_ids:
            await self.c.execute(
                t.reports.update()
                .where(t.reports.c.id.in_(list(report_ids)))
                .values(latitude=None, longitude=None, building=None, unit=None)
            )


@cache
def _references_to_media() -> tuple[sa.Column[Any], ...]:
    """Every column naming a stored photo, so a photo still shown elsewhere is never deleted."""
    return tuple(
        column
        for table in t.metadata.sorted_tables
        for column in table.columns
        if any(fk.column is t.media.c.id for fk in column.foreign_keys)
    )
