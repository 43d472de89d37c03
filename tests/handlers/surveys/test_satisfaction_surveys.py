"""Satisfaction surveys end to end: police compose, residents answer one question at a time
with buttons, points once on finishing, results per grid with response rates, closing, permissions.

Residents wang, li and zhao live in grid g1 (building 3); chen and sun in g2 (building 8).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers.accounts import rules as accounts
from handlers.messages import Lines, Text
from handlers.surveys import rules
from storage.models import Survey
from storage.notices import Invitee
from tests.harness import CHANNEL, Harness

G1 = ("wang", "li", "zhao")
G2 = ("chen", "sun")


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("worker", accounts.GRID_WORKER, grids=("g1",), building=None)
    for name in G1:
        await harness.person(name, building="3")
    for name in G2:
        await harness.person(name, building="8")
    yield harness
    await harness.close()


async def compose(bot: Harness, *, audience: str = "all", sample: str | None = None) -> None:
    """Police write a two-question survey (a scale, then choices) up to the confirmation."""
    assert await bot.say("police", "/survey") == ["survey.ask_title"]
    assert await bot.say("police", "二季度社区安全感调查") == ["survey.ask_question"]
    assert await bot.say("police", "您对小区夜间治安满意吗？") == ["survey.ask_type"]
    assert await bot.press("police", "v1:svf:type:scale") == ["survey.ask_more"]
    assert await bot.press("police", "v1:svf:more:add") == ["survey.ask_question"]
    assert await bot.say("police", "您最担心哪类问题？") == ["survey.ask_type"]
    assert await bot.press("police", "v1:svf:type:choice") == ["survey.ask_choices"]
    assert await bot.say("police", "电信诈骗 ／ 入室盗窃 / 消防安全") == ["survey.ask_more"]
    assert await bot.press("police", "v1:svf:more:done") == ["survey.ask_audience"]
    assert await bot.press("police", f"v1:svf:aud:{audience}") == ["survey.ask_sample"]
    if sample is None:
        assert await bot.press("police", "v1:svf:sample:all") == ["survey.confirm"]
    else:
        assert await bot.say("police", sample) == ["survey.confirm"]


async def latest(bot: Harness) -> Survey:
    [survey] = await bot.repos_do(lambda r: r.notices.recent_surveys(1))
    return survey


def answer(survey: Survey, question: int, value: int) -> str:
    return f"v1:svy:a:{survey.id}:{question}:{value}"


def params(bot: Harness, index: int = 0) -> dict[str, Any]:
    assert bot.last is not None
    text = bot.last.replies[index].text
    assert isinstance(text, Text)
    return text.params


async def test_residents_answer_one_question_at_a_time_and_earn_points_once(bot: Harness) -> None:
    await compose(bot)
    shown = params(bot)
    assert shown["invited"] == 5 and shown["points"] == 5
    assert [q.params["question"].value for q in shown["questions"].items] == [
        "您对小区夜间治安满意吗？",
        "您最担心哪类问题？",
    ]
    assert await bot.press("police", "v1:svf:ok:1") == ["survey.started"]
    survey = await latest(bot)
    assert survey.questions == [
        {"text": "您对小区夜间治安满意吗？", "type": "scale"},
        {"text": "您最担心哪类问题？", "type": "choice", "choices": ["电信诈骗", "入室盗窃", "消防安全"]},
    ]
    # Every resident is invited privately with the first question; staff are not surveyed.
    for name in (*G1, *G2):
        [invitation] = bot.channel.to(name)
        assert invitation.text == "survey.invite\nsurvey.question_scale"
        assert [action for _, action in invitation.buttons] == [answer(survey, 0, v) for v in range(1, 6)]
    assert bot.channel.to("worker") == []

    assert await bot.press("wang", answer(survey, 0, 4)) == ["survey.question_choice"]
    assert bot.notice() == "survey.answer_noted"
    assert bot.actions() == [answer(survey, 1, n) for n in range(3)]
    # The same button again (a double tap) stores nothing and moves nothing.
    assert await bot.press("wang", answer(survey, 0, 2)) == ["survey.already_answered"]
    assert await bot.press("wang", answer(survey, 1, 0)) == ["survey.thanks"]
    assert params(bot)["points"] == 5
    assert await bot.press("wang", answer(survey, 1, 1)) == ["survey.already_finished"]
    # A button that names no such question or choice is a stale one.
    assert await bot.press("li", answer(survey, 1, 7)) == ["error.stale_button"]
    assert await bot.press("li", answer(survey, 0, 9)) == ["error.stale_button"]

    wang = await bot.user_id("wang")
    assert await bot.repos_do(lambda r: r.ledger.balance(wang)) == 5
    again = await bot.repos_do(
        lambda r: r.ledger.credit_user(wang, 5, f"survey:{survey.id}:{wang}", "x", {}, None, bot.clock.now())
    )
    assert again is None
    assert await bot.say("wang", "/points") == ["points.summary"]
    [line] = params(bot)["lines"].items
    assert line.params["reason"] == Text("points.reason.survey", {"title": "二季度社区安全感调查"})

    await bot.press("li", answer(survey, 0, 2))
    await bot.press("chen", answer(survey, 0, 5))
    await bot.press("chen", answer(survey, 1, 2))
    answers = await bot.repos_do(lambda r: r.notices.answer_counts(survey.id))
    assert sorted((a.grid_key, a.question, a.answer, a.count) for a in answers) == [
        ("g1", 0, "2", 1),
        ("g1", 0, "4", 1),
        ("g1", 1, "0", 1),
        ("g2", 0, "5", 1),
        ("g2", 1, "2", 1),
    ]
    assert await bot.repos_do(lambda r: r.ledger.verify())


async def test_results_per_grid_with_response_rates(bot: Harness) -> None:
    await compose(bot)
    await bot.press("police", "v1:svf:ok:1")
    survey = await latest(bot)
    for name, scale, choice in (("wang", 4, 0), ("li", 2, 0), ("chen", 5, 2)):
        await bot.press(name, answer(survey, 0, scale))
        await bot.press(name, answer(survey, 1, choice))
    await bot.press("zhao", answer(survey, 0, 3))  # answered the first question only

    assert await bot.say("police", "/surveys") == ["survey.results"]
    assert bot.actions() == [f"v1:svy:close:{survey.id}"]
    shown = params(bot)
    assert (shown["finished"], shown["invited"], shown["rate"]) == (3, 5, "60%")
    g1, g2 = shown["grids"].items
    assert (g1.params["grid"].value, g1.params["finished"], g1.params["invited"], g1.params["rate"]) == (
        "第一网格",
        2,
        3,
        "67%",
    )
    assert (g2.params["finished"], g2.params["invited"], g2.params["rate"]) == (1, 2, "50%")
    scale, choice = (item.params["result"] for item in g1.params["questions"].items)
    # Unfinished answers count too: (4 + 2 + 3) / 3.
    assert (
        scale.key == "survey.result_scale" and scale.params["average"] == "3.0" and scale.params["count"] == 3
    )
    assert isinstance(choice, Lines)
    assert [(line.params["choice"].value, line.params["count"]) for line in choice.items[1:]] == [
        ("电信诈骗", 2),
        ("入室盗窃", 0),
        ("消防安全", 0),
    ]


async def test_a_random_sample_of_one_grid(bot: Harness) -> None:
    await compose(bot, audience="g1", sample="2")
    assert params(bot)["invited"] == 2
    await bot.press("police", "v1:svf:ok:1")
    survey = await latest(bot)
    assert survey.audience == {"type": "grids", "grids": ["g1"]} and survey.sample_size == 2
    invited = [name for name in (*G1, *G2) if bot.channel.to(name)]
    assert len(invited) == 2 and set(invited) <= set(G1)
    outsider = next(name for name in (*G1, *G2) if name not in invited)
    assert await bot.press(outsider, answer(survey, 0, 5)) == ["survey.not_invited"]


async def test_people_who_blocked_the_bot_are_not_invited(bot: Harness) -> None:
    await bot.repos_do(lambda r: r.users.mark_blocked(CHANNEL, "sun", bot.clock.now()))
    await compose(bot, audience="g2")
    assert params(bot)["invited"] == 1
    await bot.press("police", "v1:svf:ok:1")
    assert [len(bot.channel.to(name)) for name in G2] == [1, 0]


async def test_invitations_go_to_the_newest_private_chat_not_blocked(bot: Harness) -> None:
    wang = await bot.user_id("wang")
    later = bot.clock.now() + timedelta(minutes=5)
    await bot.repos_do(lambda r: r.users.add_identity("telegram", "555", wang, "555", later))

    async def wangs_chat() -> tuple[str, str]:
        found = await bot.repos_do(lambda r: r.notices.reachable_residents("g1"))
        [invitee] = [i for i in found if i.user_id == wang]
        return invitee.channel, invitee.chat_id

    assert await wangs_chat() == ("telegram", "555")
    await bot.repos_do(lambda r: r.users.mark_blocked("telegram", "555", later))
    assert await wangs_chat() == (CHANNEL, "wang")


async def test_answering_after_closing_is_refused_politely(bot: Harness) -> None:
    await compose(bot)
    await bot.press("police", "v1:svf:ok:1")
    survey = await latest(bot)
    await bot.press("wang", answer(survey, 0, 3))
    assert await bot.press("police", f"v1:svy:close:{survey.id}") == ["survey.closed_now", "survey.results"]
    assert bot.notice() == "survey.closed_now"
    assert await bot.press("wang", answer(survey, 1, 0)) == ["survey.closed"]
    assert await bot.press("police", f"v1:svy:close:{survey.id}") == ["survey.already_closed"]
    wang = await bot.user_id("wang")
    assert await bot.repos_do(lambda r: r.ledger.balance(wang)) == 0
    assert await bot.say("police", "/surveys") == ["survey.results"]
    assert bot.actions() == []
    assert params(bot)["state"] == Text("survey.state_closed")


async def test_residents_may_neither_start_nor_read_nor_close_surveys(bot: Harness) -> None:
    assert await bot.say("wang", "/survey") == ["error.not_allowed"]
    assert await bot.say("wang", "/surveys") == ["error.not_allowed"]
    assert await bot.say("police", "/surveys") == ["survey.none"]
    await compose(bot)
    await bot.press("police", "v1:svf:ok:1")
    survey = await latest(bot)
    assert await bot.press("wang", f"v1:svy:close:{survey.id}") == ["error.not_allowed"]
    assert (await latest(bot)).state == "open"
    assert "survey" not in await help_commands(bot, "wang")
    assert {"survey", "surveys"} <= set(await help_commands(bot, "police"))


async def help_commands(bot: Harness, who: str) -> list[str]:
    await bot.say(who, "/help")
    return [line.key.removeprefix("help.command.") for line in params(bot)["lines"].items]


async def test_bad_input_is_explained_and_nothing_is_lost(bot: Harness) -> None:
    await bot.say("police", "/survey")
    assert await bot.say("police", "标" * 61) == ["review.text_too_long"]
    await bot.say("police", "安全感调查")
    await bot.say("police", "您最担心哪类问题？")
    assert await bot.say("police", "选择题") == ["survey.use_buttons", "survey.ask_type"]
    await bot.press("police", "v1:svf:type:choice")
    assert await bot.say("police", "只有一个") == ["survey.bad_choices"]
    assert await bot.say("police", "诈骗 / 诈骗") == ["survey.bad_choices"]
    assert await bot.say("police", "A/B/C/D/E/F/G") == ["survey.bad_choices"]
    assert await bot.say("police", "诈骗 / 盗窃") == ["survey.ask_more"]
    await bot.press("police", "v1:svf:more:done")
    await bot.press("police", "v1:svf:aud:g2")
    assert params(bot)["count"] == 2
    assert await bot.say("police", "三个人") == ["survey.bad_sample"]
    assert await bot.say("police", "3") == ["survey.bad_sample"]
    # The dialogue survives a restart where it was.
    await bot.restart()
    assert await bot.say("police", "２") == ["survey.confirm"]
    assert await bot.press("police", "v1:svf:no:1") == ["survey.cancelled"]
    assert await bot.repos_do(lambda r: r.notices.recent_surveys(1)) == []


async def test_five_questions_at_most(bot: Harness) -> None:
    await bot.say("police", "/survey")
    await bot.say("police", "满意度调查")
    for number in range(1, rules.MAX_QUESTIONS + 1):
        assert params(bot)["number"] == number
        await bot.say("police", f"第 {number} 题")
        reply = await bot.press("police", "v1:svf:type:scale")
        if number < rules.MAX_QUESTIONS:
            assert reply == ["survey.ask_more"]
            await bot.press("police", "v1:svf:more:add")
    assert reply == ["survey.ask_audience"]


async def test_nobody_to_ask_sends_nothing(bot: Harness) -> None:
    for name in G2:
        await bot.repos_do(lambda r, name=name: r.users.mark_blocked(CHANNEL, name, bot.clock.now()))
    await compose(bot, audience="g2")
    assert await bot.press("police", "v1:svf:ok:1") == ["survey.nobody"]
    assert await bot.repos_do(lambda r: r.notices.recent_surveys(1)) == []


def test_typed_choices_and_sample_sizes() -> None:
    assert rules.parse_choices(" 电信诈骗／入室  盗窃 | 其他 ") == ["电信诈骗", "入室 盗窃", "其他"]
    assert rules.parse_sample("５０人", 60) == 50
    invitees = [Invitee(n, "g1", "console", str(n), None) for n in range(10)]
    assert len({i.user_id for i in rules.draw_sample(invitees, 3)}) == 3
    assert sorted(i.user_id for i in rules.draw_sample(invitees, 30)) == list(range(10))
