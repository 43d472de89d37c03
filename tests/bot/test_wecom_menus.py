"""WeChat Work: numbered menus that cannot act on the wrong card, cards that reach staff who never
wrote, report cards without a police group, names from the contacts, texts worded for it.

Real signed and encrypted callbacks in, the fake WeChat Work API out (see test_wecom_channel.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.community_file import load_community
from bot.settings import EXAMPLE_COMMUNITY_FILE
from handlers.accounts import rules as accounts
from handlers.community import Community, PoliceGroups
from tests.bot.wecom_live import POLICE, REPORTER, ROBOT_KEY, WORKER, WeComBot, card_keys, numbered
from tests.fakes.wecom_api import FakeWeComApi
from tests.harness import jpeg_with_gps

NEIGHBOUR = "ChenJie"
OTHER_POLICE = "LiuJingGuan"


def texts(bodies: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["content"] for b in bodies if b["msgtype"] == "text"]


def no_police_group() -> Community:
    return load_community(EXAMPLE_COMMUNITY_FILE).model_copy(update={"police_groups": PoliceGroups()})


async def file_report(bot: WeComBot, user: str, description: str) -> None:
    """A resident files a report on WeChat Work, every menu answered by its number."""
    await bot.say(user, "上报")
    await bot.choose(user, "消防隐患")
    await bot.choose(user, "一般")
    await bot.say(user, description)
    await bot.choose(user, "完成")
    await bot.choose(user, "就在我住的楼")
    await bot.choose(user, "实名")
    await bot.choose(user, "提交")


def menu_of(text: str) -> dict[str, int]:
    return {label: int(number) for label, number in numbered(text).items()}


def card_text(bodies: list[dict[str, Any]], ticket: str) -> str:
    [text] = [t for t in texts(bodies) if ticket in t and numbered(t)]
    return text


async def test_two_cards_never_share_a_number_and_a_gone_number_acts_on_nothing(
    fake: FakeWeComApi, bot: WeComBot
) -> None:
    await bot.grant(POLICE, accounts.POLICE, name="张警官")
    await bot.onboard(POLICE, None)
    await bot.onboard(REPORTER, "1")
    await file_report(bot, REPORTER, "1号楼楼道堆满纸箱")
    await file_report(bot, REPORTER, "2号楼消防栓被挡住了")
    first, second = await bot.report("#2026-0001"), await bot.report("#2026-0002")

    tasks = await bot.say(POLICE, "/tasks")
    menu_a = menu_of(card_text(tasks, "#2026-0001"))
    menu_b = menu_of(card_text(tasks, "#2026-0002"))
    assert len(menu_a) == len(menu_b) == 4
    assert not set(menu_a.values()) & set(menu_b.values())
    assert sorted([*menu_a.values(), *menu_b.values()]) == list(range(1, 9))

    # The number of the FIRST card's "受理" acknowledges the first report, and only it.
    ack_a = next(number for label, number in menu_a.items() if "受理" in label and "不予" not in label)
    said = await bot.say(POLICE, str(ack_a))
    assert "#2026-0001" in texts(said)[0]
    assert (await bot.report("#2026-0001")).state == "acknowledged"
    assert (await bot.report("#2026-0002")).state == "submitted"

    # The first card was answered: its "不予受理" now means nothing, and says so.
    reject_a = next(number for label, number in menu_a.items() if "不予受理" in label)
    events = await bot.repos(lambda r: r.reports.events(first.id))
    answer = await bot.say(POLICE, str(reject_a))
    assert [m["msgtype"] for m in answer] == ["text"] and "失效" in texts(answer)[0]
    assert (await bot.report("#2026-0001")).state == "acknowledged"
    assert (await bot.report("#2026-0002")).state == "submitted"
    assert await bot.repos(lambda r: r.reports.events(first.id)) == events

    # The second card is still open under its own numbers.
    dup_b = next(number for label, number in menu_b.items() if "重复" in label)
    assert dup_b not in menu_a.values()
    await bot.say(POLICE, str(dup_b))
    assert (await bot.report("#2026-0002")).state == "submitted"  # asks which report it repeats
    assert (await bot.repos(lambda r: r.reports.events(second.id)))[-1].to_state == "submitted"


async def test_a_number_never_shown_is_just_a_number(fake: FakeWeComApi, bot: WeComBot) -> None:
    # The building question has no menu: "1" is building 1, not the privacy menu's "同意".
    await bot.say(REPORTER, "/start")
    await bot.choose(REPORTER, "简体中文")
    await bot.choose(REPORTER, "同意")
    done = await bot.say(REPORTER, "1")
    assert "第一网格" in texts(done)[0]
    # Outside any dialogue a number no menu showed gets the usual hint, not "gone".
    hint = await bot.say(REPORTER, "42")
    assert "失效" not in texts(hint)[0]


async def test_a_menu_sent_while_another_is_open_continues_its_numbers(
    fake: FakeWeComApi, tmp_path: Path
) -> None:
    """No police group: both officers get each card privately. One acknowledges; the refreshed
    card replaces the other's copy, whose old numbers then act on nothing."""
    bot = await WeComBot(fake, tmp_path, no_police_group()).start()
    try:
        await bot.grant(POLICE, accounts.POLICE, name="张警官")
        await bot.grant(OTHER_POLICE, accounts.POLICE, name="刘警官")
        await bot.onboard(POLICE, None)
        await bot.onboard(OTHER_POLICE, None)
        await bot.onboard(REPORTER, "1")
        await file_report(bot, REPORTER, "1号楼楼道堆满纸箱")

        # The card reached both officers privately, with its buttons and its numbers.
        for officer in (POLICE, OTHER_POLICE):
            got = fake.messages_to(officer)
            card = card_text(got, "#2026-0001")
            assert set(menu_of(card).values()) == {1, 2, 3, 4}
            assert "v1:rep:ack:1" in card_keys([m for m in got if m["msgtype"] == "template_card"][-1])
        old = menu_of(card_text(fake.messages_to(OTHER_POLICE), "#2026-0001"))

        ack = next(number for label, number in menu_of(card).items() if label.endswith("受理"))
        await bot.say(POLICE, str(ack))
        assert (await bot.report("#2026-0001")).state == "acknowledged"

        # The other officer's copy was posted again as it is now, numbered after the old one.
        refreshed = [t for t in texts(fake.messages_to(OTHER_POLICE)) if "#2026-0001" in t][-1]
        assert "已受理" in refreshed
        assert min(menu_of(refreshed).values()) == max(old.values()) + 1
        # An old number of the replaced copy acts on nothing and says so.
        events = await bot.repos(lambda r: r.reports.events(1))
        answer = await bot.say(OTHER_POLICE, str(old[next(label for label in old if "重复" in label)]))
        assert "失效" in texts(answer)[0]
        assert await bot.repos(lambda r: r.reports.events(1)) == events
        # A new one works.
        reject = next(n for label, n in menu_of(refreshed).items() if "不予受理" in label)
        asked = await bot.say(OTHER_POLICE, str(reject))
        assert texts(asked), "the refusal dialogue starts"
    finally:
        await bot.close()


async def test_report_cards_reach_officers_privately_when_wecom_has_no_police_group(
    fake: FakeWeComApi, tmp_path: Path
) -> None:
    bot = await WeComBot(fake, tmp_path, no_police_group()).start()
    try:
        await bot.grant(POLICE, accounts.POLICE, name="张警官")
        await bot.onboard(POLICE, None)
        await bot.onboard(REPORTER, "1")
        await file_report(bot, REPORTER, "1号楼楼道堆满纸箱")
        got = fake.messages_to(POLICE)
        assert "#2026-0001" in card_text(got, "#2026-0001")
        assert fake.robot_messages(ROBOT_KEY) == []
        card = [m for m in got if m["msgtype"] == "template_card"][-1]
        await bot.click(POLICE, card_keys(card)[0])
        assert (await bot.report("#2026-0001")).state == "acknowledged"
    finally:
        await bot.close()


async def test_an_app_group_chat_of_police_is_told_to_act_in_the_app(
    fake: FakeWeComApi, tmp_path: Path
) -> None:
    groups = PoliceGroups(wecom=["appchat:police-room"])
    community = load_community(EXAMPLE_COMMUNITY_FILE).model_copy(update={"police_groups": groups})
    bot = await WeComBot(fake, tmp_path, community).start()
    try:
        await bot.grant(POLICE, accounts.POLICE, name="张警官")
        await bot.onboard(POLICE, None)
        await bot.onboard(REPORTER, "1")
        await file_report(bot, REPORTER, "1号楼楼道堆满纸箱")
        [card] = [m["text"]["content"] for m in fake.appchat_messages("police-room")]
        # No numbers there (a reply in the group never reaches the app), the actions named instead.
        assert "#2026-0001" in card and not numbered(card)
        assert "受理" in card and "/tasks" in card
        # The officer is in that group: no private copy.
        assert not [t for t in texts(fake.messages_to(POLICE)) if "#2026-0001" in t]
    finally:
        await bot.close()


async def _shouwang(database: Path, *args: str) -> tuple[int, str]:
    """The `shouwang` command line, in a process of its own, on the bot's database and community."""
    community = database.with_name("community.toml")
    # The bot's community (no_police_group): the example's file without its Telegram police group.
    example = EXAMPLE_COMMUNITY_FILE.read_text(encoding="utf-8")
    community.write_text(example.replace('telegram = ["-1001234567890"]', "telegram = []"), encoding="utf-8")
    env = {
        **os.environ,
        "SHOUWANG_DATABASE_URL": f"sqlite:///{database}",
        "SHOUWANG_COMMUNITY_FILE": str(community),
        "SHOUWANG_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_staff_granted_from_the_command_line_get_cards_before_they_ever_wrote(
    fake: FakeWeComApi, tmp_path: Path
) -> None:
    bot = await WeComBot(fake, tmp_path, no_police_group()).start()
    try:
        database = tmp_path / "db.sqlite"
        grants = [
            ("--user", WORKER, "--role", "grid_worker", "--grid", "g1"),
            ("--user", POLICE, "--role", "police"),
        ]
        for grant in grants:
            code, output = await _shouwang(database, "role", "grant", "--channel", "wecom", *grant)
            assert code == 0, output
        fake.names[WORKER] = "李网格员"
        fake.names[REPORTER] = "王芳"
        assert fake.messages_to(WORKER) == [] and fake.messages_to(POLICE) == []
        # The command line queued each grant's notice at the real time: the bot's clock catches up.
        bot.clock.set(max(row.next_attempt_at for row in await bot.outbox()))
        await bot.settle()
        # Each is told of their own grant; with no police group, the officer also of the worker's.
        assert len(fake.messages_to(WORKER)) == 1 and len(fake.messages_to(POLICE)) == 2
        told = len(fake.messages_to(WORKER))
        ticket = f"#{bot.clock.now().year}-0001"

        await bot.onboard(REPORTER, "1")
        await file_report(bot, REPORTER, "1号楼楼道堆满纸箱")

        # Neither ever wrote to the app: the grid worker has the new report, the officer its card.
        worker = fake.messages_to(WORKER)[told:]
        assert ticket in texts(worker)[0]
        assert any(m["msgtype"] == "template_card" for m in worker)
        assert ticket in card_text(fake.messages_to(POLICE), ticket)
        # The reporter is shown by the name the contacts hold, not by their UserID.
        assert "王芳" in texts(worker)[0] and REPORTER not in texts(worker)[0]
        # The worker, granted without a name, is named from the contacts once they write.
        await bot.say(WORKER, "/help")
        user = await bot.repos(lambda r: r.users.by_identity("wecom", WORKER))
        assert user[0].display_name == "李网格员"
    finally:
        await bot.close()


async def test_without_access_to_the_contacts_the_userid_stands_in(fake: FakeWeComApi, bot: WeComBot) -> None:
    fake.contacts_hidden = True
    await bot.onboard(REPORTER, "1")
    user = await bot.repos(lambda r: r.users.by_identity("wecom", REPORTER))
    assert user[0].display_name == REPORTER
    assert [c.errcode for c in fake.calls_to("user/get")] == [60011]
    # Asked once, not on every message.
    await bot.say(REPORTER, "/help")
    assert len(fake.calls_to("user/get")) == 1


async def test_reporting_on_wecom_is_worded_for_it(fake: FakeWeComApi, bot: WeComBot) -> None:
    done = await bot.onboard(REPORTER, "3")
    assert "发送“上报”" in texts(done)[0] and "📝 上报隐患" not in texts(done)[0]
    await bot.say(REPORTER, "上报")
    await bot.choose(REPORTER, "消防隐患")
    asked = await bot.choose(REPORTER, "一般")
    assert "配文字说明" not in texts(asked)[0]
    await bot.say(REPORTER, "3号楼楼道堆满杂物")
    await bot.photo(REPORTER, jpeg_with_gps())
    where = await bot.choose(REPORTER, "完成")
    assert "发送当前位置" not in texts(where)[0] and "“位置”" in texts(where)[0]
    # The full label in the numbered menu; on the card's button, cut after a whole word.
    assert "🏠 就在我住的楼（3）" in numbered(texts(where)[0])
    card = next(m for m in where if m["msgtype"] == "template_card")
    labels = [button["text"] for button in card["template_card"]["button_list"]]
    assert "🏠 就在我住的楼…" in labels
    assert all(len(label) <= 10 for label in labels)


@pytest.mark.parametrize(
    ("text", "limit", "shown"),
    [
        ("🏠 就在我住的楼（3）", 10, "🏠 就在我住的楼…"),
        ("定位点（31.23000, 121.47000）", 20, "定位点（31.23000…"),
        ("定位点（31.23000, 121.47000）", 26, "定位点（31.23000, 121.47000）"),
        ("Report a hazard now", 10, "Report a…"),
        ("⚠️ 紧急：消防通道堵塞", 10, "⚠️ 紧急：消防通…"),
        ("Acknowledge", 10, "Acknowled…"),
    ],
)
def test_fit_cuts_after_a_whole_word_or_number(text: str, limit: int, shown: str) -> None:
    from bot.channels.wecom.fit import fit

    assert fit(text, limit) == shown
    assert len(fit(text, limit)) <= limit


def test_a_long_text_is_shortened_above_its_menu_not_through_it() -> None:
    from bot.channels.wecom.channel import TEXT_LIMIT_BYTES, with_numbered_menu
    from bot.i18n import RenderedButton, RenderedMessage

    message = RenderedMessage("情况说明" * 400, [[RenderedButton("受理", "v1:rep:ack:1")]])
    text = with_numbered_menu(message, 7)
    assert len(text.encode()) <= TEXT_LIMIT_BYTES
    assert text.endswith("…\n7. 受理")
