"""Data rights on WeChat Work, through real signed and encrypted callbacks: /mydata's files and
/deleteme's numbered confirmation."""

from __future__ import annotations

import json

from tests.bot.wecom_live import REPORTER, WeComBot, numbered
from tests.fakes.wecom_api import FakeWeComApi


async def test_mydata_arrives_as_two_uploaded_files(bot: WeComBot, fake: FakeWeComApi) -> None:
    await bot.onboard(REPORTER, "3")
    got = await bot.say(REPORTER, "/mydata")
    files = [m for m in got if m["msgtype"] == "file"]
    assert len(files) == 2
    uploaded = {m.media_id: m for m in fake.uploaded_media}
    readable, machine = (uploaded[f["file"]["media_id"]] for f in files)
    assert readable.filename.endswith(".txt") and machine.filename.endswith(".json")
    assert "您的个人资料" in readable.data.decode("utf-8")
    held = {(s["table"], s["column"]): s["rows"] for s in json.loads(machine.data)["data"]}
    assert [(i["channel"], i["external_id"]) for i in held[("identities", "user_id")]] == [
        ("wecom", REPORTER)
    ]


async def test_deleteme_is_confirmed_by_its_number_and_erases(bot: WeComBot, fake: FakeWeComApi) -> None:
    await bot.onboard(REPORTER, "3")
    before = await bot.repos(lambda r: r.users.by_identity("wecom", REPORTER))
    assert before is not None
    asked = await bot.say(REPORTER, "/deleteme")
    # The question with its numbered menu (a button card follows it, for the app's own buttons).
    question = asked[0]["text"]["content"]
    assert set(numbered(question)) == {"🗑 确认注销", "取消"} and "无法撤销" in question
    assert [m["msgtype"] for m in asked] == ["text", "template_card"]
    # "取消" first: nothing happens.
    kept = await bot.choose(REPORTER, "取消")
    assert "没有删除" in kept[-1]["text"]["content"]
    assert await bot.repos(lambda r: r.users.by_identity("wecom", REPORTER)) is not None
    await bot.say(REPORTER, "/deleteme")
    done = await bot.choose(REPORTER, "确认注销")
    assert "已注销" in done[-1]["text"]["content"]
    assert await bot.repos(lambda r: r.users.by_identity("wecom", REPORTER)) is None
    erased = await bot.repos(lambda r: r.users.get(before[0].id))
    assert erased.erased_at is not None and erased.building is None
    (entry,) = await bot.repos(lambda r: r.audit.entries(action="person.erase"))
    assert (entry.via, entry.subject_id) == ("wecom", before[0].id)
    # What they wrote is not kept in the inbox once handled: only the key that recognises a retry.
    handled = await bot.inbox_rows()
    assert handled and all(row.state == "done" and row.payload == {} for row in handled)
    # The old menu's numbers mean nothing now: the next message is a stranger's.
    again = await bot.say(REPORTER, "1")
    assert "简体中文" in numbered(again[0]["text"]["content"])
