"""Points for useful reports, and /points showing balance, tier and the reason for each movement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from tests.harness import Harness


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("wang", building="3")
    yield harness
    await harness.close()


async def resolve(bot: Harness, ticket: str) -> int:
    report = await bot.repos_do(lambda r: r.reports.by_ticket(ticket))
    await bot.press("police", f"v1:rep:ack:{report.id}")
    await bot.press("police", f"v1:rep:res:{report.id}")
    await bot.say("police", "已处理")
    await bot.press("police", "v1:rev:nophoto")
    return report.id


async def test_a_resolved_report_earns_its_reporter_points_once(bot: Harness) -> None:
    assert await bot.say("wang", "/points") == ["points.none"]
    assert bot.render(bot.last.replies[0].text.params["tier"]) == "tier.bronze"
    ticket = await bot.file_report("wang")
    report_id = await resolve(bot, ticket)
    wang = await bot.user_id("wang")
    assert await bot.repos_do(lambda r: r.ledger.balance(wang)) == 5

    assert await bot.say("wang", "/points") == ["points.summary"]
    shown = bot.last.replies[0].text.params
    assert (shown["balance"], shown["lifetime"], shown["reserved"]) == (5, 5, 0)
    [line] = shown["lines"].items
    assert line.params["amount"] == "+5"
    assert line.params["reason"].key == "points.reason.report_resolved"
    assert line.params["reason"].params == {"ticket": f"#{ticket}"}

    # A second credit for the same report is impossible, whatever path tries it.
    again = await bot.repos_do(
        lambda r: r.ledger.credit_user(
            wang, 5, f"report:resolved:{report_id}", "x", {}, None, bot.clock.now()
        )
    )
    assert again is None
    assert await bot.repos_do(lambda r: r.ledger.verify())


async def test_rejected_reports_earn_nothing(bot: Harness) -> None:
    ticket = await bot.file_report("wang")
    report = await bot.repos_do(lambda r: r.reports.by_ticket(ticket))
    await bot.press("police", f"v1:rep:rej:{report.id}")
    await bot.say("police", "不属于本社区")
    assert await bot.repos_do(lambda r: r.ledger.balance(report.reporter_id)) == 0


def test_tiers_follow_lifetime_points() -> None:
    from handlers.community import TimeBank

    bank = TimeBank(silver_from=10, gold_from=20)
    assert [bank.tier(points) for points in (0, 9, 10, 19, 20)] == [
        "bronze",
        "bronze",
        "silver",
        "silver",
        "gold",
    ]
    with pytest.raises(ValueError, match="greater than silver_from"):
        TimeBank(silver_from=20, gold_from=20)
