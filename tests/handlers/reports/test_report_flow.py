"""Whole dialogues through the real engine, outbox and database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

from handlers.accounts import rules as accounts
from tests.harness import POLICE_GROUP, Harness, jpeg_with_gps


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("worker", accounts.GRID_WORKER, grids=("g1",), building=None)
    await harness.person("wang", building="3")
    await harness.person("chen", building="8")
    yield harness
    await harness.close()


async def report_state(bot: Harness, ticket: str) -> str:
    report = await bot.repos_do(lambda r: r.reports.by_ticket(ticket))
    return report.state


async def test_report_lifecycle_from_filing_to_rating(bot: Harness) -> None:
    assert await bot.say("wang", "/report") == ["report.intro\nreport.ask_category"]
    assert "v1:rpt:cat:fire" in bot.actions()
    assert await bot.press("wang", "v1:rpt:cat:fire") == ["report.ask_urgency"]
    assert await bot.press("wang", "v1:rpt:urg:urgent") == ["report.ask_description"]
    assert await bot.say("wang", "3号楼消防通道被电动车堵住了") == ["report.ask_photos"]
    assert await bot.photo("wang", jpeg_with_gps()) == ["report.photo_received"]
    assert await bot.press("wang", "v1:rpt:ph:done") == ["report.ask_location"]
    assert await bot.press("wang", "v1:rpt:loc:home") == ["report.location_noted\nreport.ask_anonymous"]
    assert await bot.press("wang", "v1:rpt:anon:no") == ["report.summary"]
    assert await bot.press("wang", "v1:rpt:ok:1") == ["report.submitted"]

    report = (await bot.repos_do(lambda r: r.reports.by_reporter(1 + 2, limit=1)))[0]
    assert report.ticket == "2026-0001"
    assert (report.category, report.urgency, report.grid_key, report.building) == (
        "fire",
        "urgent",
        "g1",
        "3",
    )
    # The grid worker is told privately, the police group gets a card with the photo and actions.
    assert [s.text for s in bot.channel.to("worker")] == ["notify.new_report"]
    card = bot.channel.to(POLICE_GROUP)[0]
    assert card.text == "report.card" and card.photos == 1
    assert ("button.acknowledge", f"v1:rep:ack:{report.id}") in card.buttons

    # Police acknowledge from the group: the card is edited in place, the reporter told.
    await bot.press("police", f"v1:rep:ack:{report.id}", group=True)
    assert bot.notice() == "review.acknowledged"
    assert card.edits == ["report.card"]
    assert ("button.acknowledge", f"v1:rep:ack:{report.id}") not in card.buttons
    assert bot.channel.to("wang")[-1].text == "notify.reporter.acknowledged"

    # Assigning from the group continues in the officer's private chat.
    await bot.press("police", f"v1:rep:asg:{report.id}", group=True)
    assert bot.channel.to("police")[-1].text == "review.pick_worker"
    worker_id = await bot.user_id("worker")
    assert await bot.press("police", f"v1:rep:to:{report.id}:{worker_id}") == ["review.assigned"]
    assert bot.channel.to("worker")[-1].text == "notify.assigned_to_you"
    assert bot.channel.to("wang")[-1].text == "notify.reporter.assigned"

    assert await bot.press("worker", f"v1:rep:start:{report.id}") == ["review.started"]
    assert await bot.press("worker", f"v1:rep:res:{report.id}") == ["review.ask_resolution_note"]
    assert await bot.say("worker", "已清理通道，电动车已移走") == ["review.ask_after_photo"]
    assert await bot.photo("worker", jpeg_with_gps()) == ["review.resolved"]

    told = bot.channel.to("wang")[-1]
    assert told.text == "notify.reporter.resolved"
    assert [a for _, a in told.buttons] == [f"v1:rate:{report.id}:{n}" for n in range(1, 6)]
    assert await bot.press("wang", f"v1:rate:{report.id}:5") == ["rating.ask_comment"]
    assert await bot.say("wang", "处理很及时，谢谢！") == ["rating.thanks"]

    done = await bot.repos_do(lambda r: r.reports.get(report.id))
    assert (done.state, done.rating, done.rating_comment) == ("resolved", 5, "处理很及时，谢谢！")
    assert done.resolution_note == "已清理通道，电动车已移走"
    events = await bot.repos_do(lambda r: r.reports.events(report.id))
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, "submitted"),
        ("submitted", "acknowledged"),
        ("acknowledged", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "resolved"),
    ]
    assert all(e.actor_id for e in events)
    assert len(await bot.repos_do(lambda r: r.reports.photos(report.id, "after"))) == 1
    # A second rating is refused politely and changes nothing.
    assert await bot.press("wang", f"v1:rate:{report.id}:1") == ["rating.already"]


async def test_stored_photos_have_no_exif(bot: Harness) -> None:
    await bot.say("wang", "/report")
    await bot.press("wang", "v1:rpt:cat:road")
    await bot.press("wang", "v1:rpt:urg:normal")
    await bot.say("wang", "路灯坏了，晚上很黑")
    await bot.photo("wang", jpeg_with_gps())
    media = await bot.repos_do(lambda r: r.media.get(1))
    with Image.open(bot.rt.media.path_of(media.path)) as stored:
        assert dict(stored.getexif()) == {}
        assert "exif" not in stored.info


async def test_resident_cannot_press_police_buttons(bot: Harness) -> None:
    ticket = await bot.file_report("wang")
    report = await bot.repos_do(lambda r: r.reports.by_ticket(ticket))
    for verb in ("ack", "asg", "rej", "dup"):
        await bot.press("chen", f"v1:rep:{verb}:{report.id}", group=True)
        assert bot.notice() == "error.not_allowed"
    assert await bot.press("chen", f"v1:rep:ack:{report.id}") == ["error.not_allowed"]
    assert await report_state(bot, ticket) == "submitted"
    # ...and a grid worker of another grid may not either.
    await bot.person("worker2", accounts.GRID_WORKER, grids=("g2",), building=None)
    assert await bot.press("worker2", f"v1:rep:ack:{report.id}") == ["error.not_allowed"]


async def test_double_click_and_stale_buttons_are_harmless(bot: Harness) -> None:
    ticket = await bot.file_report("wang")
    report = await bot.repos_do(lambda r: r.reports.by_ticket(ticket))
    await bot.press("police", f"v1:rep:ack:{report.id}", group=True)
    await bot.press("police", f"v1:rep:ack:{report.id}", group=True)
    assert bot.notice() == "report.cannot_move"
    events = await bot.repos_do(lambda r: r.reports.events(report.id))
    assert [e.to_state for e in events] == ["submitted", "acknowledged"]
    assert await bot.press("wang", "v1:rpt:cat:fire") == ["error.stale_button"]
    assert await bot.press("wang", "garbage") == ["error.stale_button"]
    assert await bot.press("wang", "v9:rep:ack:1") == ["error.stale_button"]
    assert await bot.press("police", "v1:rep:ack:99999") == ["report.not_found"]


async def test_bad_input_at_every_step_is_answered_and_loses_nothing(bot: Harness) -> None:
    await bot.say("wang", "/report")
    assert await bot.send("wang", unsupported="sticker") == ["report.unsupported_here", "report.ask_category"]
    assert await bot.say("wang", "消防") == ["report.use_buttons", "report.ask_category"]
    await bot.press("wang", "v1:rpt:cat:fire")
    assert await bot.say("wang", "urgent") == ["report.use_buttons", "report.ask_urgency"]
    await bot.press("wang", "v1:rpt:urg:normal")
    assert await bot.say("wang", "x" * 5000) == ["report.description_too_long", "report.ask_description"]
    assert await bot.say("wang", "  ") == ["report.description_too_short", "report.ask_description"]
    assert await bot.send("wang", unsupported="voice") == [
        "report.unsupported_here",
        "report.ask_description",
    ]
    await bot.say("wang", "电瓶车在楼道里充电")
    assert await bot.send("wang", unsupported="voice") == ["report.unsupported_here", "report.ask_photos"]
    assert await bot.photo("wang", b"definitely not an image") == ["error.photo_unreadable"]
    assert await bot.photo("wang", jpeg_with_gps()) == ["report.photo_received"]
    assert await bot.say("wang", "再等等") == ["report.use_buttons", "report.photo_or_done"]
    await bot.press("wang", "v1:rpt:ph:done")
    assert await bot.location("wang", 39.9042, 116.4074) == ["report.location_outside", "report.ask_location"]
    assert await bot.say("wang", "99号楼") == ["report.unknown_building", "report.ask_location"]
    assert await bot.say("wang", "/frobnicate") == ["error.unknown_command"]
    assert await bot.location("wang", 31.2292, 121.4721) == ["report.location_noted\nreport.ask_anonymous"]
    await bot.press("wang", "v1:rpt:anon:yes")
    draft = await bot.repos_do(lambda r: r.conversations.get(3, "console"))
    assert draft.step == "confirm"
    assert draft.data["description"] == "电瓶车在楼道里充电"
    assert draft.data["grid_key"] == "g1" and draft.data["anonymous"] is True


async def test_edit_from_the_summary_returns_to_the_summary(bot: Harness) -> None:
    await bot.say("wang", "/report")
    await bot.press("wang", "v1:rpt:cat:fire")
    await bot.press("wang", "v1:rpt:urg:normal")
    await bot.say("wang", "消防栓被圈起来了")
    await bot.press("wang", "v1:rpt:ph:done")
    await bot.press("wang", "v1:rpt:loc:home")
    await bot.press("wang", "v1:rpt:anon:no")
    assert await bot.press("wang", "v1:rpt:edit:1") == ["report.ask_field"]
    assert await bot.press("wang", "v1:rpt:f:urgency") == ["report.ask_urgency"]
    assert await bot.press("wang", "v1:rpt:urg:urgent") == ["report.summary"]
    await bot.press("wang", "v1:rpt:ok:1")
    report = (await bot.repos_do(lambda r: r.reports.by_reporter(3)))[0]
    assert report.urgency == "urgent"


async def test_cancel_works_at_every_step(bot: Harness) -> None:
    steps = [("v1:rpt:cat:fire", True), ("v1:rpt:urg:normal", True), ("描述一下这个问题", False)]
    for depth in range(len(steps) + 1):
        await bot.say("wang", "/report")
        for value, is_action in steps[:depth]:
            await (bot.press("wang", value) if is_action else bot.say("wang", value))
        assert await bot.say("wang", "/cancel") == ["conversation.cancelled"]
        assert await bot.repos_do(lambda r: r.conversations.get(3, "console")) is None
    assert await bot.say("wang", "/cancel") == ["conversation.nothing_to_cancel"]


async def test_restart_mid_report_resumes_the_draft(bot: Harness) -> None:
    await bot.say("wang", "/report")
    await bot.press("wang", "v1:rpt:cat:dispute")
    await bot.press("wang", "v1:rpt:urg:normal")
    await bot.restart()
    assert await bot.say("wang", "楼上邻居深夜噪音，多次沟通无果") == ["report.ask_photos"]
    await bot.restart()
    assert await bot.say("wang", "/report") == ["report.resuming", "report.ask_photos"]
    await bot.press("wang", "v1:rpt:ph:done")
    await bot.press("wang", "v1:rpt:loc:home")
    await bot.press("wang", "v1:rpt:anon:no")
    assert await bot.press("wang", "v1:rpt:ok:1") == ["report.submitted"]


async def test_idle_draft_expires_with_a_note(bot: Harness) -> None:
    await bot.say("wang", "/report")
    await bot.press("wang", "v1:rpt:cat:fire")
    await bot.wait(timedelta(minutes=20))
    await bot.press("wang", "v1:rpt:urg:normal")  # activity pushes the expiry back
    await bot.wait(timedelta(minutes=20))
    assert await bot.repos_do(lambda r: r.conversations.get(3, "console")) is not None
    await bot.wait(timedelta(minutes=11))
    assert await bot.repos_do(lambda r: r.conversations.get(3, "console")) is None
    assert bot.channel.to("wang")[-1].text == "report.expired"
    assert await bot.say("wang", "还在吗") == ["help.hint"]


async def test_flood_of_reports_is_stopped_politely(bot: Harness) -> None:
    for _ in range(10):
        await bot.file_report("wang")
    assert await bot.say("wang", "/report") == ["report.rate_limited"]
    await bot.wait(timedelta(minutes=61))
    assert await bot.say("wang", "/report") == ["report.intro\nreport.ask_category"]


async def test_escalation_fires_once_across_a_restart(bot: Harness) -> None:
    ticket = await bot.file_report("wang", urgency="urgent")
    cards = len(bot.channel.to(POLICE_GROUP))
    await bot.wait(timedelta(minutes=14))
    assert bot.channel.to("worker")[-1].text == "notify.new_report"
    await bot.wait(timedelta(minutes=2))
    assert bot.channel.to("worker")[-1].text == "notify.reminder"
    # The bot is down when the escalation falls due; it fires at start-up, once.
    bot.clock.advance(timedelta(minutes=30))
    await bot.restart()
    assert await bot.rt.engine.fire_due() == 1
    await bot.deliver()
    assert bot.channel.to(POLICE_GROUP)[-1].text == "notify.escalation"
    await bot.restart()
    assert await bot.rt.engine.fire_due() == 0
    assert len(bot.channel.to(POLICE_GROUP)) == cards + 1
    assert await report_state(bot, ticket) == "submitted"


async def test_acknowledged_reports_are_not_escalated(bot: Harness) -> None:
    ticket = await bot.file_report("wang")
    report = await bot.repos_do(lambda r: r.reports.by_ticket(ticket))
    await bot.press("worker", f"v1:rep:ack:{report.id}")
    assert await bot.wait(timedelta(hours=5)) == 0
    assert [s.text for s in bot.channel.to(POLICE_GROUP)] == ["report.card"]


async def test_anonymous_reports_hide_the_reporter_except_from_police(bot: Harness) -> None:
    await bot.say("wang", "/report")
    await bot.press("wang", "v1:rpt:cat:fraud")
    await bot.press("wang", "v1:rpt:urg:normal")
    await bot.say("wang", "有人冒充民警打电话要求转账")
    await bot.press("wang", "v1:rpt:ph:done")
    await bot.press("wang", "v1:rpt:loc:home")
    await bot.press("wang", "v1:rpt:anon:yes")
    await bot.press("wang", "v1:rpt:ok:1")
    card = bot.channel.to(POLICE_GROUP)[0]
    assert card.text == "report.card"
    group_card = bot.last  # direct answer to the reporter; inspect the rendered card values instead
    assert group_card is not None
    report = (await bot.repos_do(lambda r: r.reports.by_reporter(3)))[0]
    from handlers.reports.views import card as render_card

    async def shown(show: bool) -> str:
        reply = await bot.repos_do(lambda r: render_card(r, bot.rt.community, report, show_reporter=show))
        return bot.render(reply.text.params["reporter"])

    assert await shown(False) == "report.anonymous_reporter"
    assert await shown(True) == "report.anonymous_seen_by_police"


async def test_tasks_lists_open_reports_of_the_workers_grids_oldest_first(bot: Harness) -> None:
    first = await bot.file_report("wang")
    await bot.wait(timedelta(hours=3))
    await bot.file_report("chen")  # building 8: grid g2
    third = await bot.file_report("wang")
    replies = await bot.say("worker", "/tasks")
    assert replies[0] == "tasks.list"
    listed = bot.last.replies[0].text.params
    assert listed["count"] == 2 and listed["overdue"] == 1
    lines = [line.params["ticket"] for line in listed["lines"].items]
    assert lines == [f"#{first}", f"#{third}"]
    assert [line.key for line in listed["lines"].items] == ["report.line_overdue", "report.line"]
    await bot.say("police", "/tasks")
    assert bot.last.replies[0].text.params["count"] == 3
    assert await bot.say("wang", "/tasks") == ["error.not_allowed"]


async def test_reject_and_duplicate_tell_the_reporter(bot: Harness) -> None:
    first = await bot.file_report("wang")
    second = await bot.file_report("chen")
    one = await bot.repos_do(lambda r: r.reports.by_ticket(first))
    two = await bot.repos_do(lambda r: r.reports.by_ticket(second))
    assert await bot.press("police", f"v1:rep:dup:{two.id}") == ["review.ask_original"]
    assert await bot.say("police", "#2099-0001") == ["review.no_such_ticket", "review.ask_original"]
    assert await bot.say("police", f"#{first}") == ["review.marked_duplicate"]
    assert bot.channel.to("chen")[-1].text == "notify.reporter.duplicate"
    assert await bot.press("police", f"v1:rep:rej:{one.id}") == ["review.ask_reject_reason"]
    assert await bot.say("police", "不属于本社区管辖范围") == ["review.rejected"]
    assert bot.channel.to("wang")[-1].text == "notify.reporter.rejected"
    assert await report_state(bot, first) == "rejected"
    assert (await bot.repos_do(lambda r: r.reports.by_ticket(second))).duplicate_of == one.id


async def test_myreports_lists_the_reporters_own_reports(bot: Harness) -> None:
    assert await bot.say("wang", "/myreports") == ["myreports.none"]
    await bot.file_report("wang")
    await bot.file_report("chen")
    assert await bot.say("wang", "/myreports") == ["myreports.list"]
    assert bot.last.replies[0].text.params["count"] == 1


async def test_report_before_onboarding_resumes_after_it(bot: Harness) -> None:
    assert await bot.say("newbie", "/report") == ["onboarding.ask_language"]
    await bot.press("newbie", "v1:lang:zh_TW")
    await bot.press("newbie", "v1:onb:accept")
    assert await bot.say("newbie", "5") == ["onboarding.done", "report.intro\nreport.ask_category"]


async def test_group_report_command_answers_with_a_private_link(bot: Harness) -> None:
    replies = await bot.send("wang", group=True, command="report")
    assert replies == ["group.report_privately"]
    assert bot.last.replies[0].choices[0][0].deep_link == "report"
    assert await bot.send("wang", group=True, text="大家好") == []
    assert await bot.repos_do(lambda r: r.conversations.get(3, "console")) is None
    assert await bot.say("wang", "/start report") == ["report.intro\nreport.ask_category"]


async def test_report_words_start_a_report(bot: Harness) -> None:
    for word in ("上报", "报告", "Report"):
        assert await bot.say("chen", word) == ["report.intro\nreport.ask_category"]
        await bot.say("chen", "/cancel")


async def test_ticket_numbers_count_per_year_in_local_time(bot: Harness) -> None:
    from datetime import UTC, datetime

    # 16:30 UTC on 31 December is already 1 January in Shanghai.
    bot.clock.set(datetime(2026, 12, 31, 16, 30, tzinfo=UTC))
    assert await bot.file_report("wang") == "2027-0001"
    assert await bot.file_report("wang") == "2027-0002"


async def test_outbox_keeps_messages_when_the_channel_fails(bot: Harness) -> None:
    from bot.channels.base import RetryLater

    bot.channel.fail_with = RetryLater(30)
    await bot.file_report("wang")
    counts = await bot.repos_do(lambda r: r.outbox.counts())
    assert counts == {"pending": 2}
    bot.channel.fail_with = None
    assert await bot.deliver() == 0  # not due yet: the platform asked us to wait
    await bot.wait(timedelta(seconds=31))
    assert await bot.repos_do(lambda r: r.outbox.counts()) == {"sent": 2}


async def test_a_deleted_group_card_is_posted_again(bot: Harness) -> None:
    from bot.channels.base import Undeliverable

    ticket = await bot.file_report("wang")
    report = await bot.repos_do(lambda r: r.reports.by_ticket(ticket))
    bot.channel.fail_edits_with = Undeliverable("Message to edit not found")
    await bot.press("police", f"v1:rep:ack:{report.id}", group=True)
    cards = [s for s in bot.channel.to(POLICE_GROUP) if s.text == "report.card"]
    assert len(cards) == 2 and ("button.assign", f"v1:rep:asg:{report.id}") in cards[-1].buttons
    # Later changes edit the new card.
    bot.channel.fail_edits_with = None
    await bot.press("police", f"v1:rep:rej:{report.id}")
    await bot.say("police", "重复上报")
    assert cards[-1].edits == ["report.card"]
    assert set(await bot.repos_do(lambda r: r.outbox.counts())) == {"sent"}
