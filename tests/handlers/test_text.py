"""Names and texts shown to others lose the invisible characters that make them read otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import Translator
from handlers import choices
from handlers.accounts import rules as accounts
from handlers.messages import Incoming, Text, Verbatim
from handlers.text import BIDI_CONTROLS, ZERO_WIDTH, clean_name, clean_text
from tests.harness import CHANNEL, Harness

SPOOFED = "\u202eecilA\u202c \u2066Wang\u2069"


def test_bidi_controls_are_removed_from_names() -> None:
    assert clean_name(SPOOFED) == "ecilA Wang"
    for control in BIDI_CONTROLS | ZERO_WIDTH:
        assert clean_name(f"A{control}B") == "AB", hex(ord(control))


def test_names_are_one_line_and_texts_keep_their_lines() -> None:
    assert clean_name(" 王\n阿姨\t\x00\x1b[31m ") == "王 阿姨 [31m"
    assert clean_text("第一行\r\n第二行\u2028第三行\x07") == "第一行\n第二行\n第三行"


def test_joiners_are_kept_only_where_they_join_emoji_or_a_joining_script() -> None:
    family = "👨\u200d👩\u200d👧"
    rainbow = "🏳\ufe0f\u200d🌈"
    assert clean_name(f"{family} {rainbow}") == f"{family} {rainbow}"
    assert clean_name("Al\u200dice 王\u200d阿\u200c姨 \u200dx") == "Alice 王阿姨 x"
    persian = "می\u200cخواهم"
    assert clean_text(persian) == persian


def test_what_was_stored_before_is_cleaned_when_shown() -> None:
    translator = Translator({"en": {"card": "Reporter: {name}"}}, "en", ZoneInfo("Asia/Shanghai"))
    shown = translator.text("en", Text("card", {"name": Verbatim(SPOOFED)}), lambda p: p)
    assert shown == "Reporter: ecilA Wang"


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("wang", building="3")
    yield harness
    await harness.close()


async def test_a_spoofed_display_name_is_stored_clean(bot: Harness) -> None:
    alice = {"channel": CHANNEL, "user_external_id": "alice", "chat_id": "alice", "display_name": SPOOFED}
    await bot.rt.engine.handle(Incoming(**alice, command="start"))
    await bot.rt.engine.handle(Incoming(**alice, action=choices.encode("lang", "en")))
    # The platform's name is kept from the moment the person accepts the privacy notice.
    await bot.rt.engine.handle(Incoming(**alice, action=choices.encode("onb", "accept")))
    found = await bot.repos_do(lambda r: r.users.by_identity(CHANNEL, "alice"))
    assert found is not None and found[0].display_name == "ecilA Wang"


async def test_only_invisible_characters_leave_the_platform_id_as_name(bot: Harness) -> None:
    await bot.rt.engine.handle(
        Incoming(
            channel=CHANNEL,
            user_external_id="u42",
            chat_id="u42",
            display_name="\u202e\u200b",
            command="start",
        )
    )
    found = await bot.repos_do(lambda r: r.users.by_identity(CHANNEL, "u42"))
    assert found is not None and found[0].display_name == "u42"


async def test_a_name_given_on_the_command_line_is_stored_clean(bot: Harness) -> None:
    now = bot.clock.now()
    user = await bot.repos_do(
        lambda r: accounts.grant_role(r, "telegram", "7", accounts.POLICE, [], now, SPOOFED)
    )
    assert user.display_name == "ecilA Wang"


async def test_a_report_description_is_stored_clean(bot: Harness) -> None:
    await bot.say("wang", "/report")
    await bot.press("wang", "v1:rpt:cat:fire")
    await bot.press("wang", "v1:rpt:urg:normal")
    await bot.say("wang", "\u202e道通防消了住堵\u202c，\u200b物杂\u2067满堆")
    draft = await bot.repos_do(lambda r: r.conversations.get(1, CHANNEL))
    assert draft.data["description"] == "道通防消了住堵，物杂满堆"
