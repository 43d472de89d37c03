"""Data rights over the wire on Telegram: /mydata arrives as two documents, /deleteme erases."""

from __future__ import annotations

import json

from tests.bot.telegram_live import REPORTER, Live, content
from tests.fakes.telegram_api import FakeBotApi


async def test_mydata_arrives_as_a_readable_and_a_json_document(onboarded: Live, api: FakeBotApi) -> None:
    live = onboarded
    sent = await live.say(REPORTER, "/mydata")
    assert [m.method for m in sent] == ["sendDocument", "sendDocument"]
    readable, machine = sent
    assert readable.document_name is not None and readable.document_name.endswith(".txt")
    assert machine.document_name is not None and machine.document_name.endswith(".json")
    assert readable.document is not None and machine.document is not None
    # In the person's language, with the chat account the bot knows them by.
    text = readable.document.decode("utf-8")
    assert "您的个人资料" in text and "您使用的聊天账号" in text and str(REPORTER) in text
    data = json.loads(machine.document)
    held = {(s["table"], s["column"]): s["rows"] for s in data["data"]}
    assert [(i["channel"], i["external_id"]) for i in held[("identities", "user_id")]] == [
        ("telegram", str(REPORTER))
    ]
    assert readable.caption is not None and "记录" in readable.caption
    assert [c.error for c in api.calls if c.rejected] == []


async def test_deleteme_asks_then_erases_and_the_account_starts_anew(
    onboarded: Live, api: FakeBotApi
) -> None:
    live = onboarded
    before = await live.repos(lambda r: r.users.by_identity("telegram", str(REPORTER)))
    assert before is not None
    asked = await live.say(REPORTER, "/deleteme")
    assert "无法撤销" in content(asked[-1])
    assert asked[-1].callback_data == [f"v1:prv:me:{before[0].id}", "v1:prv:keep"]
    _, done = await live.press(REPORTER, f"v1:prv:me:{before[0].id}", asked[-1])
    assert "已注销" in content(done[-1])
    assert await live.repos(lambda r: r.users.by_identity("telegram", str(REPORTER))) is None
    erased = await live.repos(lambda r: r.users.get(before[0].id))
    assert erased.display_name == "已注销用户" and erased.erased_at is not None
    # Writing again is a stranger writing: the questions start over.
    again = await live.say(REPORTER, "/start")
    assert "v1:lang:zh_CN" in again[-1].callback_data
