"""/export: the ledger and the patrol hours as CSV files, read back the way a spreadsheet would."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from handlers.messages import Document
from handlers.timebank import csv_export
from handlers.timebank import rules as bank
from tests.handlers.timebank.timebank_support import give_points, patrolled
from tests.harness import Harness


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("王小明", building="3")
    await harness.person("=HYPERLINK(1)", building="8")
    yield harness
    await harness.close()


def document(bot: Harness) -> Document:
    [reply] = bot.last.replies
    assert reply.document is not None
    return reply.document


def read(doc: Document) -> list[dict[str, str]]:
    assert doc.mime == "text/csv"
    # Excel needs the byte order mark to take the file as UTF-8.
    assert doc.data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(doc.data.decode("utf-8-sig"))))


async def test_the_ledger_of_a_typed_range_as_csv(bot: Harness) -> None:
    wang, other = await bot.user_id("王小明"), await bot.user_id("=HYPERLINK(1)")
    await give_points(bot, "王小明", 150, "award:1", when=datetime(2026, 5, 2, 1, 30, tzinfo=UTC))
    await give_points(bot, "=HYPERLINK(1)", 20, "award:2", when=datetime(2026, 5, 3, tzinfo=UTC))
    # The last hours of 31 May in Shanghai are still May; this is 1 June there.
    await give_points(bot, "王小明", 7, "award:june", when=datetime(2026, 5, 31, 16, 30, tzinfo=UTC))
    await bot.press("王小明", "v1:rwd:ask:rice")
    await bot.press("王小明", "v1:rwd:ok:rice")
    redemption = int(bot.last.replies[0].text.params["id"])
    await bot.press("police", f"v1:rdm:ok:{redemption}")

    assert await bot.say("police", "/export") == ["export.ask_kind"]
    assert await bot.press("police", "v1:exf:kind:ledger") == ["export.ask_range"]
    assert bot.last.replies[0].text.params["example"] == "2026-05-01 2026-05-31"
    assert await bot.say("police", "2026-05-01 到 2026年5月31日") == ["export.ready_ledger"]
    doc = document(bot)
    assert doc.filename == "ledger-2026-05.csv"
    rows = read(doc)
    assert list(rows[0]) == list(csv_export.LEDGER_COLUMNS)
    assert bot.last.replies[0].text.params["rows"] == len(rows) == 4

    first = rows[0]
    assert (first["time"], first["user_id"], first["person"], first["amount"]) == (
        "2026-05-02 09:30:00",
        str(wang),
        "王小明",
        "150",
    )
    assert (first["movement"], first["reason_key"], first["source_key"]) == (
        "community>user",
        "points.reason.award",
        "award:1",
    )
    # A name that looks like a formula is kept as text.
    assert rows[1]["person"] == "'=HYPERLINK(1)"
    held, spent = rows[2], rows[3]
    assert (held["movement"], held["amount"], held["reason_key"]) == (
        "user>reserved",
        "-100",
        "points.reason.redemption_requested",
    )
    assert held["reason_params"] == "reward=大米 5 斤"
    assert (spent["movement"], spent["amount"], spent["actor"]) == ("reserved>spent", "0", "police")

    # The amounts are the changes /points shows: their sums are the balances.
    sums: dict[str, int] = defaultdict(int)
    for row in rows:
        sums[row["user_id"]] += int(row["amount"])
    assert sums == {str(wang): 50, str(other): 20}

    # This month (June in Shanghai, by now) holds only the late entry.
    bot.clock.set(datetime(2026, 6, 5, tzinfo=UTC))
    await bot.say("police", "/export")
    await bot.press("police", "v1:exf:kind:ledger")
    await bot.press("police", "v1:exf:range:this")
    assert [r["source_key"] for r in read(document(bot))] == ["award:june"]
    assert document(bot).filename == "ledger-2026-06.csv"


async def test_patrol_hours_of_last_month_as_csv(bot: Harness) -> None:
    await patrolled(bot, datetime(2026, 4, 30, 11, 0, tzinfo=UTC), {"王小明": 95, "=HYPERLINK(1)": 0})
    await patrolled(bot, datetime(2026, 5, 20, 11, 0, tzinfo=UTC), {"王小明": 120})
    await bot.say("police", "/export")
    await bot.press("police", "v1:exf:kind:patrol")
    assert await bot.press("police", "v1:exf:range:last") == ["export.ready_patrol"]
    doc = document(bot)
    assert doc.filename == "patrol-hours-2026-04.csv"
    rows = read(doc)
    assert list(rows[0]) == list(csv_export.PATROL_COLUMNS)
    wang = rows[0]
    assert (wang["shift_date"], wang["starts"], wang["ends"], wang["area"]) == (
        "2026-04-30",
        "19:00",
        "21:00",
        "A 线",
    )
    assert (wang["person"], wang["check_in"], wang["check_out"], wang["minutes"]) == (
        "王小明",
        "2026-04-30 19:00:00",
        "2026-04-30 20:35:00",
        "95",
    )
    assert (wang["check_in_method"], wang["flagged"], wang["no_show"]) == ("location", "0", "0")
    assert rows[1]["person"] == "'=HYPERLINK(1)"
    assert len(rows) == 2


async def test_typed_ranges_are_checked_politely(bot: Harness) -> None:
    await bot.say("police", "/export")
    assert await bot.say("police", "ledger") == ["report.use_buttons", "export.ask_kind"]
    await bot.press("police", "v1:exf:kind:ledger")
    assert await bot.say("police", "上个月") == ["export.range_unreadable"]
    assert await bot.say("police", "2026-02-30 2026-03-01") == ["export.range_unreadable"]
    assert await bot.say("police", "2026-05-31 2026-05-01") == ["export.range_backwards"]
    assert await bot.say("police", "2024-01-01 2026-05-01") == ["export.range_too_long"]
    assert await bot.say("police", "2026/05/10 2026/05/12") == ["export.ready_ledger"]
    assert document(bot).filename == "ledger-2026-05-10_2026-05-12.csv"
    assert read(document(bot)) == []


async def test_residents_cannot_export(bot: Harness) -> None:
    assert await bot.say("王小明", "/export") == ["error.not_allowed"]
    # Nor by pressing a button of someone else's dialogue.
    assert await bot.press("王小明", "v1:exf:kind:ledger") == ["error.stale_button"]


def test_date_ranges_are_local_dates_inclusive() -> None:
    november = (date(2026, 11, 1), date(2026, 11, 30))
    assert bank.parse_date_range("２０２６－１１－０１ ~ 2026.11.30") == november
    assert bank.month_range("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert bank.month_range("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
