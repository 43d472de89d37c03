"""Points by hand (/award) and their correction, and points for a report its reporter found useful."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from handlers.messages import Incoming
from tests.handlers.timebank.timebank_support import at_once, verified
from tests.harness import CHANNEL, Harness


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("admin", accounts.ADMIN, building=None)
    await harness.person("wang", building="3")
    await harness.person("wangfang", building="8")
    await harness.person("chen", building="8")
    yield harness
    await harness.close()


async def balance(bot: Harness, who: str) -> int:
    user_id = await bot.user_id(who)
    return int(await bot.repos_do(lambda r: r.ledger.balance(user_id)))


async def up_to_confirm(bot: Harness, who: str, points: str = "20", reason: str = "协助调解邻里纠纷") -> None:
    wang = await bot.user_id(who)
    await bot.say("police", "/award")
    await bot.say("police", who)
    await bot.press("police", f"v1:awf:who:{wang}")
    await bot.say("police", points)
    assert await bot.say("police", reason) == ["award.confirm"]


async def test_an_officer_awards_points_by_name_and_the_person_is_told(bot: Harness) -> None:
    assert await bot.say("police", "/award") == ["award.ask_person"]
    # Part of a name offers everyone it fits, with building and grid to tell them apart.
    assert await bot.say("police", "wang") == ["award.pick_person"]
    wang, wangfang = await bot.user_id("wang"), await bot.user_id("wangfang")
    assert bot.actions() == [f"v1:awf:who:{wang}", f"v1:awf:who:{wangfang}"]
    labels = [bot.render(c.label) for c in bot.last.replies[0].choices[0]]
    assert labels == ["timebank.person_building"]
    assert await bot.say("police", "nobody-like-this") == ["award.nobody_found"]
    assert await bot.press("police", f"v1:awf:who:{wang}") == ["award.ask_points"]

    # Points must be a whole number within the community's limit; asked again politely.
    assert await bot.say("police", "twenty") == ["award.points_out_of_range"]
    assert await bot.say("police", "101") == ["award.points_out_of_range"]
    assert await bot.say("police", "０") == ["award.points_out_of_range"]
    assert await bot.say("police", "２０") == ["award.ask_reason"]
    assert await bot.say("police", "   ") == ["timebank.need_reason"]
    assert await bot.say("police", "很" * 201) == ["review.text_too_long"]
    assert await bot.say("police", "协助调解邻里纠纷") == ["award.confirm"]
    assert bot.last.replies[0].text.params["points"] == 20
    assert await bot.press("police", "v1:awf:ok:1") == ["award.done"]
    assert await balance(bot, "wang") == 20

    told = bot.channel.to("wang")[-1]
    assert told.text == "award.received"
    # A second press of the same Confirm finds the dialogue finished: nothing more is awarded.
    assert await bot.press("police", "v1:awf:ok:1") == ["error.stale_button"]
    assert await balance(bot, "wang") == 20

    assert await bot.say("wang", "/points") == ["points.summary"]
    [line] = bot.last.replies[0].text.params["lines"].items
    assert line.params["amount"] == "+20"
    assert (line.params["reason"].key, line.params["reason"].params) == (
        "points.reason.award",
        {"reason": "协助调解邻里纠纷"},
    )
    assert await verified(bot)


async def test_a_common_name_offers_the_first_few_and_asks_for_more(bot: Harness) -> None:
    for n in range(10):
        await bot.person(f"li{n}", building="5")
    await bot.say("police", "/award")
    assert await bot.say("police", "li") == ["award.pick_person_more"]
    assert len(bot.actions()) == 8
    assert await bot.say("police", "li7") == ["award.pick_person"]
    assert bot.actions() == [f"v1:awf:who:{await bot.user_id('li7')}"]


async def test_a_report_ticket_finds_its_reporter(bot: Harness) -> None:
    ticket = await bot.file_report("chen")
    await bot.say("admin", "/award")
    assert await bot.say("admin", "#2099-0001") == ["review.no_such_ticket"]
    assert await bot.say("admin", f"＃{ticket}") == ["award.ask_points"]
    await bot.say("admin", "5")
    await bot.say("admin", "上报及时，避免了火灾")
    assert await bot.press("admin", "v1:awf:ok:1") == ["award.done"]
    assert await balance(bot, "chen") == 5


async def test_cancel_and_self_awards_give_nothing(bot: Harness) -> None:
    await up_to_confirm(bot, "wang")
    assert await bot.press("police", "v1:awf:no:1") == ["award.cancelled"]
    police = await bot.user_id("police")
    await bot.say("police", "/award")
    # An officer is not offered to themselves, nor accepted by a forged button.
    assert await bot.say("police", "police") == ["award.nobody_found"]
    assert await bot.press("police", f"v1:awf:who:{police}") == ["award.not_yourself"]
    assert await balance(bot, "wang") == 0
    assert await balance(bot, "police") == 0


async def test_residents_can_neither_award_nor_revoke(bot: Harness) -> None:
    assert await bot.say("wang", "/award") == ["error.not_allowed"]
    await up_to_confirm(bot, "chen")
    await bot.press("police", "v1:awf:ok:1")
    [revoke] = bot.actions()
    assert await bot.press("wang", revoke) == ["error.not_allowed"]
    assert await bot.press("chen", revoke) == ["error.not_allowed"]
    assert await balance(bot, "chen") == 20


async def test_revoking_posts_a_reversing_entry_once_and_tells_the_person(bot: Harness) -> None:
    await up_to_confirm(bot, "wang", points="30")
    await bot.press("police", "v1:awf:ok:1")
    [revoke] = bot.actions()
    assert revoke.startswith("v1:awv:rev:")

    # Another officer may correct it too; the reason is required.
    assert await bot.press("admin", revoke) == ["award.ask_revoke_reason"]
    assert await bot.say("admin", " ") == ["timebank.need_reason"]
    assert await bot.say("admin", "奖励对象弄错了") == ["award.revoke_done"]
    assert bot.channel.to("wang")[-1].text == "award.revoked"
    assert await balance(bot, "wang") == 0

    # A second revoke is harmless, whoever presses it and however.
    assert await bot.press("police", revoke) == ["award.already_revoked"]
    assert await bot.press("admin", revoke) == ["award.already_revoked"]

    # Corrections are new entries, never edits: both show in /points, with their reasons.
    await bot.say("wang", "/points")
    lines = bot.last.replies[0].text.params["lines"].items
    assert [(line.params["amount"], line.params["reason"].key) for line in lines] == [
        ("-30", "points.reason.award_revoked"),
        ("+30", "points.reason.award"),
    ]
    assert bot.last.replies[0].text.params["lifetime"] == 0
    assert await verified(bot)


async def test_two_revocations_typed_at_once_reverse_once(bot: Harness) -> None:
    await up_to_confirm(bot, "wang", points="30")
    await bot.press("police", "v1:awf:ok:1")
    [revoke] = bot.actions()
    await bot.press("police", revoke)
    await bot.press("admin", revoke)
    answers = await asyncio.gather(
        *(
            bot.rt.engine.handle(Incoming(CHANNEL, who, who, who, text="发错人了"))
            for who in ("police", "admin")
        )
    )
    keys = sorted(bot.render(r.replies[0].text) for r in answers)
    assert keys == ["award.already_revoked", "award.revoke_done"]
    assert await balance(bot, "wang") == 0
    assert await verified(bot)


async def test_an_award_already_spent_cannot_be_revoked(bot: Harness) -> None:
    await up_to_confirm(bot, "wang", points="100")
    await bot.press("police", "v1:awf:ok:1")
    [revoke] = bot.actions()
    await bot.press("wang", "v1:rwd:ask:rice")
    assert await bot.press("wang", "v1:rwd:ok:rice") == ["reward.requested"]
    await bot.press("police", revoke)
    assert await bot.say("police", "发错人了") == ["award.revoke_spent"]
    assert bot.last.replies[0].text.params == {"points": 100, "balance": 0}
    # The dialogue ended; nothing moved.
    assert await bot.say("police", "发错人了") == ["help.hint"]
    wang = await bot.user_id("wang")
    assert await bot.repos_do(lambda r: r.ledger.reserved(wang)) == 100
    assert await verified(bot)


async def test_confirm_pressed_twice_at_once_awards_once(bot: Harness) -> None:
    await up_to_confirm(bot, "wang", points="15")
    answers = await at_once(bot, ("police", "v1:awf:ok:1"), ("police", "v1:awf:ok:1"))
    assert ["award.done"] in answers
    assert sorted(map(tuple, answers)) in (
        [("award.already_done",), ("award.done",)],
        [("award.done",), ("error.stale_button",)],
    )
    assert await balance(bot, "wang") == 15
    assert [s.text for s in bot.channel.to("wang")].count("award.received") == 1
    assert await verified(bot)


async def resolve(bot: Harness, ticket: str) -> int:
    report = await bot.repos_do(lambda r: r.reports.by_ticket(ticket))
    await bot.press("police", f"v1:rep:ack:{report.id}")
    await bot.press("police", f"v1:rep:res:{report.id}")
    await bot.say("police", "已处理")
    await bot.press("police", "v1:rev:nophoto")
    return int(report.id)


async def test_a_report_rated_useful_earns_points_once(bot: Harness) -> None:
    useful = await resolve(bot, await bot.file_report("wang"))
    so_so = await resolve(bot, await bot.file_report("wang"))
    assert await balance(bot, "wang") == 10  # resolved twice

    await bot.press("wang", f"v1:rate:{useful}:5")
    assert await balance(bot, "wang") == 13
    await bot.press("wang", f"v1:rate:{useful}:4")
    assert bot.notice() == "rating.already"
    await bot.press("wang", f"v1:rate:{so_so}:3")
    assert await balance(bot, "wang") == 13

    await bot.say("wang", "/cancel")
    await bot.say("wang", "/points")
    newest = bot.last.replies[0].text.params["lines"].items[0]
    assert newest.params["reason"].key == "points.reason.report_useful"
    # Only the reporter rates; another person's stars earn nothing.
    await bot.press("chen", f"v1:rate:{so_so}:5")
    assert await balance(bot, "chen") == 0
    assert await verified(bot)
