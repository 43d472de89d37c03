"""Recurring notices end to end: composing, the preview of the next times, sending as broadcasts,
listing and stopping, the grace period across restarts, and permissions.

The clock starts on Monday 2026-05-18 at 09:00 in Shanghai (01:00 UTC).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from handlers.accounts import rules as accounts
from handlers.errors import DomainError
from handlers.messages import Text, When
from handlers.notices import rules
from storage import schema as t
from storage.models import Notice
from tests.harness import Harness

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("wang", building="3")
    await harness.person("chen", building="8")
    yield harness
    await harness.close()


async def compose(
    bot: Harness, *, frequency: str = "daily", day: str | None = None, at: str = "19:00"
) -> None:
    """Police write a community notice up to the preview."""
    assert await bot.say("police", "/notice") == ["notice.ask_text"]
    assert await bot.say("police", "今晚社区活动室开展防诈骗宣传，欢迎参加。") == ["notice.ask_kind"]
    assert bot.actions()[0] == "v1:ntf:kind:community"
    assert await bot.press("police", "v1:ntf:kind:community") == ["broadcast.ask_audience"]
    assert await bot.press("police", "v1:ntf:aud:community") == ["notice.ask_priority"]
    assert bot.actions() == ["v1:ntf:prio:info", "v1:ntf:prio:important"]
    assert await bot.press("police", "v1:ntf:prio:info") == ["notice.ask_frequency"]
    if frequency == "daily":
        assert await bot.press("police", "v1:ntf:freq:daily") == ["notice.ask_time"]
    elif frequency == "weekly":
        assert await bot.press("police", "v1:ntf:freq:weekly") == ["notice.ask_weekday"]
        assert await bot.press("police", f"v1:ntf:wd:{day}") == ["notice.ask_time"]
    else:
        assert await bot.press("police", "v1:ntf:freq:monthly") == ["notice.ask_monthday"]
        assert await bot.say("police", f"{day}号") == ["notice.ask_time"]
    assert await bot.say("police", at) == ["notice.preview"]


async def only_notice(bot: Harness) -> Notice:
    [notice] = await bot.repos_do(lambda r: r.notices.active_notices())
    return notice


async def broadcasts_of(bot: Harness, notice_id: int) -> list[datetime]:
    async def query(repos: object) -> list[datetime]:
        rows = await repos.connection.execute(  # type: ignore[attr-defined]
            sa.select(t.broadcasts.c.created_at)
            .where(t.broadcasts.c.notice_id == notice_id)
            .order_by(t.broadcasts.c.id)
        )
        return list(rows.scalars())

    return await bot.repos_do(query)


def upcoming(bot: Harness) -> list[datetime]:
    assert bot.last is not None
    text = bot.last.replies[0].text
    assert isinstance(text, Text)
    return [line.params["when"].at for line in text.params["upcoming"].items]


async def test_a_weekly_notice_goes_out_every_week_as_a_broadcast(bot: Harness) -> None:
    await compose(bot, frequency="weekly", day="1")
    # Monday 09:00 now: tonight is the first Monday 19:00.
    assert upcoming(bot) == [local(5, 18, 19), local(5, 25, 19), local(6, 1, 19)]
    preview = bot.last.replies[0].text.params  # type: ignore[union-attr]
    assert preview["rule"] == Text(
        "notice.rule_weekly", {"weekday": Text("notice.weekday_1"), "time": "19:00"}
    )
    assert (preview["people"], preview["groups"]) == (2, 0)
    assert await bot.press("police", "v1:ntf:ok:1") == ["notice.created"]
    notice = await only_notice(bot)
    assert (notice.kind, notice.priority, notice.rule) == ("community", "info", "weekly:1:19:00")
    assert notice.audience == {"type": "community", "grids": []}

    await bot.wait(local(5, 18, 18, 59) - bot.clock.now())
    assert await broadcasts_of(bot, notice.id) == []
    await bot.wait(timedelta(minutes=2))
    assert await broadcasts_of(bot, notice.id) == [local(5, 18, 19, 1)]
    assert [s.text for s in bot.channel.to("wang")] == ["broadcast.message_info"]
    assert [s.text for s in bot.channel.to("chen")] == ["broadcast.message_info"]
    assert (await only_notice(bot)).last_sent_at == local(5, 18, 19, 1)
    schedule = await bot.repos_do(lambda r: r.schedules.get(rules.NOTICE, str(notice.id)))
    assert schedule is not None and (schedule.state, schedule.due_at) == ("pending", local(5, 25, 19))

    await bot.wait(timedelta(days=7))
    assert len(await broadcasts_of(bot, notice.id)) == 2
    assert len(bot.channel.to("wang")) == 2


async def test_notices_are_listed_and_stopped(bot: Harness) -> None:
    await compose(bot, frequency="monthly", day="15")
    assert upcoming(bot) == [local(6, 15, 19), local(7, 15, 19), local(8, 15, 19)]
    await bot.press("police", "v1:ntf:ok:1")
    notice = await only_notice(bot)
    assert await bot.say("police", "/notices") == ["notice.list_header", "notice.line"]
    line = bot.last.replies[1].text.params  # type: ignore[union-attr]
    assert line["next"] == When(local(6, 15, 19))
    assert bot.actions() == [f"v1:ntc:stop:{notice.id}"]

    assert await bot.press("police", f"v1:ntc:stop:{notice.id}") == ["notice.stopped"]
    assert bot.notice() == "notice.stopped"
    assert await bot.press("police", f"v1:ntc:stop:{notice.id}") == ["notice.already_stopped"]
    assert await bot.say("police", "/notices") == ["notice.none"]
    await bot.wait(local(6, 16, 0) - bot.clock.now())
    assert await broadcasts_of(bot, notice.id) == []
    assert bot.channel.to("wang") == []


async def test_a_notice_missed_while_down_is_sent_once_within_the_grace_period(bot: Harness) -> None:
    await compose(bot)
    await bot.press("police", "v1:ntf:ok:1")
    notice = await only_notice(bot)
    # Down from 18:00 until 19:40: within the hour of grace, so it goes out at start-up, once.
    bot.clock.set(local(5, 18, 19, 40))
    await bot.restart()
    await bot.rt.engine.fire_due()
    await bot.deliver()
    assert await broadcasts_of(bot, notice.id) == [local(5, 18, 19, 40)]
    await bot.restart()
    await bot.wait(timedelta(minutes=5))
    assert len(await broadcasts_of(bot, notice.id)) == 1
    assert len(bot.channel.to("wang")) == 1
    schedule = await bot.repos_do(lambda r: r.schedules.get(rules.NOTICE, str(notice.id)))
    assert schedule is not None and schedule.due_at == local(5, 19, 19)


async def test_a_notice_missed_beyond_the_grace_period_is_skipped_and_logged(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await compose(bot)
    await bot.press("police", "v1:ntf:ok:1")
    notice = await only_notice(bot)
    bot.clock.set(local(5, 18, 20, 30))
    await bot.restart()
    with caplog.at_level(logging.WARNING, logger="handlers.notices.rules"):
        await bot.rt.engine.fire_due()
    await bot.deliver()
    assert await broadcasts_of(bot, notice.id) == []
    assert bot.channel.to("wang") == []
    [skipped] = [r for r in caplog.records if r.getMessage() == "notice skipped"]
    assert (skipped.notice_id, skipped.late_minutes) == (notice.id, 90)  # type: ignore[attr-defined]
    # The next evening it goes out as usual.
    await bot.wait(local(5, 19, 19, 1) - bot.clock.now())
    assert await broadcasts_of(bot, notice.id) == [local(5, 19, 19, 1)]


async def test_grids_are_chosen_by_toggling(bot: Harness) -> None:
    await bot.say("police", "/notice")
    await bot.say("police", "本周六上午网格内开展消防安全检查，请配合。")
    await bot.press("police", "v1:ntf:kind:police")
    assert await bot.press("police", "v1:ntf:aud:grids") == ["broadcast.ask_grids"]
    assert await bot.press("police", "v1:ntf:grid:-done") == [
        "broadcast.no_grids_chosen",
        "broadcast.ask_grids",
    ]
    for key in ("g1", "g2", "g1"):
        assert await bot.press("police", f"v1:ntf:grid:{key}") == ["broadcast.ask_grids"]
    assert bot.last.replies[0].choices[0][1].label.key == "broadcast.grid_chosen"  # type: ignore[union-attr]
    assert await bot.press("police", "v1:ntf:grid:-done") == ["notice.ask_priority"]
    await bot.press("police", "v1:ntf:prio:important")
    await bot.press("police", "v1:ntf:freq:daily")
    await bot.say("police", "8点")
    assert (bot.last.replies[0].text.params["people"]) == 1  # type: ignore[union-attr]
    await bot.press("police", "v1:ntf:ok:1")
    notice = await only_notice(bot)
    assert (notice.kind, notice.priority, notice.rule) == ("police", "important", "daily:08:00")
    assert notice.audience == {"type": "grids", "grids": ["g2"]}
    await bot.wait(local(5, 19, 8, 1) - bot.clock.now())
    assert [s.text for s in bot.channel.to("chen")] == ["broadcast.message_important"]
    assert bot.channel.to("wang") == []


async def test_bad_input_is_explained_and_the_draft_survives_a_restart(bot: Harness) -> None:
    assert await bot.say("police", "/notice") == ["notice.ask_text"]
    assert await bot.press("police", "v1:ntf:kind:community") == ["error.stale_button"]
    await bot.say("police", "每月 1 日检查楼道灭火器。")
    assert await bot.say("police", "社区通知") == ["notice.use_buttons", "notice.ask_kind"]
    await bot.press("police", "v1:ntf:kind:community")
    await bot.press("police", "v1:ntf:aud:community")
    await bot.restart()
    await bot.press("police", "v1:ntf:prio:info")
    await bot.press("police", "v1:ntf:freq:monthly")
    assert await bot.say("police", "31") == ["notice.bad_monthday"]
    assert await bot.press("police", "v1:ntf:md:1") == ["notice.ask_time"]
    assert await bot.say("police", "25:00") == ["notice.bad_time"]
    assert await bot.say("police", "晚上") == ["notice.bad_time"]
    assert await bot.say("police", "９：３０") == ["notice.preview"]
    assert await bot.press("police", "v1:ntf:no:1") == ["notice.cancelled"]
    assert await bot.repos_do(lambda r: r.notices.active_notices()) == []


async def test_residents_may_not_set_list_or_stop_notices(bot: Harness) -> None:
    assert await bot.say("wang", "/notice") == ["error.not_allowed"]
    assert await bot.say("wang", "/notices") == ["error.not_allowed"]
    await compose(bot)
    await bot.press("police", "v1:ntf:ok:1")
    notice = await only_notice(bot)
    assert await bot.press("wang", f"v1:ntc:stop:{notice.id}") == ["error.not_allowed"]
    assert (await only_notice(bot)).active


def test_rules_and_their_next_times() -> None:
    monday_9am = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)
    daily = rules.parse_rule("daily:07:30")
    assert rules.next_after(daily, monday_9am, SHANGHAI) == local(5, 19, 7, 30)
    assert rules.next_after(daily, local(5, 19, 7, 29), SHANGHAI) == local(5, 19, 7, 30)
    assert rules.next_after(daily, local(5, 19, 7, 30), SHANGHAI) == local(5, 20, 7, 30)
    sunday = rules.parse_rule("weekly:7:19:00")
    assert rules.occurrences(sunday, monday_9am, SHANGHAI, 2) == [local(5, 24, 19), local(5, 31, 19)]
    month_end = rules.parse_rule("monthly:28:09:00")
    assert rules.occurrences(month_end, local(12, 28, 10), SHANGHAI, 3) == [
        datetime(2027, 1, 28, 1, 0, tzinfo=UTC),
        datetime(2027, 2, 28, 1, 0, tzinfo=UTC),
        datetime(2027, 3, 28, 1, 0, tzinfo=UTC),
    ]
    assert str(rules.rule_of("weekly", 3, "06:05")) == "weekly:3:06:05"
    assert str(rules.rule_of("daily", 3, "06:05")) == "daily:06:05"
    for bad in ("monthly:29:09:00", "weekly:8:09:00", "hourly:09:00"):
        with pytest.raises(ValueError):
            rules.parse_rule(bad)


def test_typed_times() -> None:
    for typed, expected in (
        ("19:00", time(19, 0)),
        ("7:30", time(7, 30)),
        ("1930", time(19, 30)),
        ("19点", time(19, 0)),
        ("19点30分", time(19, 30)),
        ("１９：００", time(19, 0)),
    ):
        assert rules.parse_time(typed) == expected, typed
    for typed in ("24:00", "19:60", "晚上七点", ""):
        with pytest.raises(DomainError):
            rules.parse_time(typed)
