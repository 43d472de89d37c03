"""The CSV files /export sends: the ledger, or the patrol hours, of a range of local dates."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from handlers.messages import Document
from handlers.timebank import rules
from storage.models import LedgerExportRow, PatrolHoursRow

LEDGER_COLUMNS = (
    "entry_id",
    "time",
    "user_id",
    "person",
    "amount",
    "movement",
    "reason_key",
    "reason_params",
    "source_key",
    "actor_id",
    "actor",
)
PATROL_COLUMNS = (
    "shift_id",
    "shift_date",
    "starts",
    "ends",
    "area",
    "user_id",
    "person",
    "check_in",
    "check_in_method",
    "check_out",
    "check_out_method",
    "minutes",
    "flagged",
    "no_show",
)


@dataclass(frozen=True)
class Export:
    document: Document
    rows: int


def _cell(text: str | None) -> str:
    """Free text for a spreadsheet cell: never read by Excel as a formula."""
    if not text:
        return ""
    return "'" + text if text[0] in "=+-@\t\r" else text


def _local(moment: datetime | None, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment is not None else ""


def _flag(value: bool) -> int:
    return 1 if value else 0


def _params_text(params: dict[str, Any]) -> str:
    """Reason parameters as "name=value; ..." with a name per language in its default language."""
    shown = []
    for name, value in params.items():
        if isinstance(value, dict) and set(value) == {"$l"}:
            names = value["$l"]
            value = names.get("zh_CN") or next(iter(names.values()), "")
        shown.append(f"{name}={value}")
    return "; ".join(shown)


def _file(name: str, first: date, last: date, table: list[Sequence[Any]]) -> Document:
    out = io.StringIO()
    csv.writer(out).writerows(table)
    span = (
        first.strftime("%Y-%m")
        if rules.is_whole_month(first, last)
        else f"{first.isoformat()}_{last.isoformat()}"
    )
    # The BOM makes Excel read the file as UTF-8, so names in Chinese are not garbled.
    return Document(f"{name}-{span}.csv", "text/csv", out.getvalue().encode("utf-8-sig"))


def ledger(rows: Sequence[LedgerExportRow], tz: tzinfo, first: date, last: date) -> Export:
    """The ledger entries of [first, last] as a CSV Excel opens correctly."""
    table: list[Sequence[Any]] = [LEDGER_COLUMNS]
    for row in rows:
        table.append(
            (
                row.id,
                _local(row.created_at, tz),
                row.person_id or "",
                _cell(row.person_name),
                rules.available_change(row.debit_kind, row.credit_kind, row.amount),
                f"{row.debit_kind}>{row.credit_kind}",
                row.reason_key,
                _cell(_params_text(row.reason_params)),
                row.source_key,
                row.actor_id or "",
                _cell(row.actor_name),
            )
        )
    return Export(_file("ledger", first, last, table), len(rows))


def patrol_hours(rows: Sequence[PatrolHoursRow], tz: tzinfo, first: date, last: date) -> Export:
    """Who patrolled when during [first, last] as a CSV Excel opens correctly."""
    table: list[Sequence[Any]] = [PATROL_COLUMNS]
    for row in rows:
        table.append(
            (
                row.shift_id,
                row.starts_at.astimezone(tz).strftime("%Y-%m-%d"),
                row.starts_at.astimezone(tz).strftime("%H:%M"),
                row.ends_at.astimezone(tz).strftime("%H:%M"),
                _cell(row.area),
                row.user_id,
                _cell(row.person_name),
                _local(row.checked_in_at, tz),
                row.checkin_method or "",
                _local(row.checked_out_at, tz),
                row.checkout_method or "",
                "" if row.minutes_worked is None else row.minutes_worked,
                _flag(row.flagged),
                _flag(row.no_show),
            )
        )
    return Export(_file("patrol-hours", first, last, table), len(rows))
