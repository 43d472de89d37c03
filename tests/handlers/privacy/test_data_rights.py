"""/mydata, /deleteme, /erase, declining the privacy notice and retention, through the real engine,
outbox and database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.i18n import Translator
from handlers.accounts import rules as accounts
from handlers.community import Privacy
from handlers.messages import Document, Incoming, Reply
from handlers.privacy import rules as privacy
from storage import schema as t
from storage.repositories import Repos
from tests import harness as harnesses
from tests.harness import CHANNEL, Harness, jpeg_with_gps


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("admin", accounts.ADMIN, building=None)
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("wang", building="3")
    await harness.person("chen", building="8")
    yield harness
    await harness.close()


async def report_with_photo(bot: Harness, who: str, text: str) -> str:
    await bot.say(who, "/report")
    await bot.press(who, "v1:rpt:cat:fire")
    await bot.press(who, "v1:rpt:urg:normal")
    await bot.say(who, text)
    await bot.photo(who, jpeg_with_gps())
    await bot.press(who, "v1:rpt:ph:done")
    await bot.press(who, "v1:rpt:loc:home")
    await bot.press(who, "v1:rpt:anon:no")
    await bot.press(who, "v1:rpt:ok:1")
    user_id = await bot.user_id(who)
    mine = await bot.repos_do(lambda r: r.reports.by_reporter(user_id, limit=1))
    return str(mine[0].ticket)


async def reject(bot: Harness, ticket: str) -> int:
    report = await bot.repos_do(lambda r: r.reports.by_ticket(ticket))
    await bot.press("police", f"v1:rep:rej:{report.id}")
    assert await bot.say("police", "不属于本社区管辖范围") == ["review.rejected"]
    return int(report.id)


def documents(bot: Harness) -> list[Document]:
    """The files of the last answer, rendered with the real catalogues."""
    assert bot.last is not None
    translator = Translator.load("zh_CN", bot.rt.community.tz)
    rendered = [translator.render("zh_CN", reply, str) for reply in bot.last.replies]
    return [message.document for message in rendered if message.document is not None]


async def photo_files(bot: Harness) -> list[Path]:
    paths = await bot.repos_do(lambda r: _all(r, sa.select(t.media.c.path)))
    return [bot.settings.media_dir / path for (path,) in paths]


async def _all(repos: Repos, query: Any) -> list[Any]:
    return list((await repos.connection.execute(query)).all())


async def test_mydata_sends_a_readable_file_and_a_json_file_of_everything_held(bot: Harness) -> None:
    ticket = await report_with_photo(bot, "wang", "三号楼楼道堆满纸箱")
    wang = await bot.user_id("wang")
    await bot.repos_do(
        lambda r: r.ledger.credit_user(wang, 7, "test:gift", "points.award", {}, None, bot.clock.now())
    )
    assert await bot.say("wang", "/mydata") == ["mydata.ready_readable", "mydata.ready_json"]
    readable, machine = documents(bot)
    assert readable.mime == "text/plain" and readable.filename.endswith(".txt")
    text = readable.data.decode("utf-8")
    # Written for the reader, in their language, with what they wrote as they wrote it.
    assert "■ 您提交的上报（位置、照片、处理记录和评价）（共 1 条）" in text
    assert "description：三号楼楼道堆满纸箱" in text and "■ 您收到的通报和“收到”确认（共 0 条）" in text
    data = json.loads(machine.data)
    assert data["format"] == privacy.EXPORT_FORMAT and data["person_id"] == wang
    held = {(section["table"], section["column"]): section["rows"] for section in data["data"]}
    (report,) = held[("reports", "reporter_id")]
    assert report["ticket"] == ticket and report["description"] == "三号楼楼道堆满纸箱"
    assert [event["to_state"] for event in report["events"]] == ["submitted"]
    assert [photo["kind"] for photo in report["photos"]] == ["before"]
    assert [(i["channel"], i["external_id"]) for i in held[("identities", "user_id")]] == [
        ("console", "wang")
    ]
    (user,) = held[("users", "id")]
    assert (user["display_name"], user["building"]) == ("wang", "3")
    (account,) = held[("point_accounts", "user_id")]
    assert [entry["amount"] for entry in account["entries"]] == [7]
    # Nobody else's rows: chen's report is not in wang's file.
    assert len(held[("reports", "reporter_id")]) == 1
    (entry,) = await bot.repos_do(lambda r: r.audit.entries(action="data.export"))
    assert (entry.actor_id, entry.subject_id, entry.via) == (wang, wang, "console")


async def test_deleteme_erases_the_person_and_keeps_the_records(bot: Harness) -> None:
    open_ticket = await report_with_photo(bot, "wang", "路灯坏了一个多星期")
    closed_ticket = await report_with_photo(bot, "wang", "小区门口井盖松动")
    await reject(bot, closed_ticket)
    wang = await bot.user_id("wang")
    chen = await bot.user_id("chen")
    now = bot.clock.now()
    await bot.repos_do(lambda r: r.ledger.credit_user(wang, 30, "test:a", "points.award", {}, None, now))
    await bot.repos_do(lambda r: r.ledger.credit_user(chen, 5, "test:b", "points.award", {}, None, now))
    balances = await bot.repos_do(
        lambda r: _all(r, sa.select(t.point_accounts.c.id, t.point_accounts.c.balance))
    )
    # A message to wang waits in the outbox (queued, not yet delivered).
    await bot.repos_do(lambda r: r.outbox.enqueue("console", "wang", "zh_CN", "message", {}, now))
    files_before = await photo_files(bot)
    assert len(files_before) == 1  # the same picture twice is one stored file

    assert await bot.say("wang", "/deleteme") == ["deleteme.confirm"]
    assert bot.actions() == [f"v1:prv:me:{wang}", "v1:prv:keep"]
    assert await bot.press("wang", "v1:prv:keep") == ["erase.kept"]
    # Someone else's confirmation button does nothing.
    assert await bot.press("chen", f"v1:prv:me:{wang}") == ["error.stale_button"]
    assert await bot.press("wang", f"v1:prv:me:{wang}") == ["deleteme.done"]

    user = await bot.repos_do(lambda r: r.users.get(wang))
    assert user.display_name == privacy.ERASED_NAME and user.erased_at is not None
    assert (user.language, user.building, user.unit, user.grid_key, user.role) == (
        None,
        None,
        None,
        None,
        accounts.RESIDENT,
    )
    assert await bot.repos_do(lambda r: r.users.identities(wang)) == []
    reports = {r.ticket: r for r in await bot.repos_do(lambda r: r.reports.by_reporter(wang))}
    assert set(reports) == {open_ticket, closed_ticket}
    assert all(report.anonymous for report in reports.values())
    # The open report keeps its photo (police act on it), the closed one loses it; the stored file
    # stays while the open report still shows it.
    assert await bot.repos_do(lambda r: r.reports.photos(reports[open_ticket].id)) != []
    assert await bot.repos_do(lambda r: r.reports.photos(reports[closed_ticket].id)) == []
    assert all(path.exists() for path in files_before)
    # Not one ledger row or balance changed: every sum still adds up.
    assert (
        await bot.repos_do(lambda r: _all(r, sa.select(t.point_accounts.c.id, t.point_accounts.c.balance)))
        == balances
    )
    assert await bot.repos_do(lambda r: r.ledger.balance(wang)) == 30
    pending = await bot.repos_do(
        lambda r: _all(r, sa.select(t.outbox.c.state).where(t.outbox.c.last_error == "recipient erased"))
    )
    assert pending == [("failed",)]
    assert (
        await bot.repos_do(lambda r: _all(r, sa.select(t.outbox).where(t.outbox.c.chat_id == "wang"))) == []
    )
    (entry,) = await bot.repos_do(lambda r: r.audit.entries(action="person.erase"))
    assert (entry.actor_id, entry.subject_id, entry.detail["identities"]) == (wang, wang, 1)

    # The next message from that chat account is a stranger's.
    assert await bot.say("wang", "你好") == ["onboarding.ask_language"]
    assert await bot.user_id("wang") != wang


async def test_police_erase_a_person_on_request_and_only_they_may(bot: Harness) -> None:
    chen = await bot.user_id("chen")
    police = await bot.user_id("police")
    assert await bot.say("wang", "/erase console chen") == ["error.not_allowed"]
    assert await bot.say("police", "/erase console") == ["erase.usage"]
    assert await bot.say("police", "/erase console nobody") == ["erase.unknown_person"]
    assert await bot.say("police", "/erase console admin") == ["error.not_allowed"]
    assert await bot.say("police", "/erase console chen") == ["erase.confirm"]
    assert bot.actions() == [f"v1:prv:who:{chen}", "v1:prv:keep"]
    # A resident pressing a forwarded confirmation is refused at the press too.
    assert await bot.press("wang", f"v1:prv:who:{chen}") == ["error.not_allowed"]
    assert await bot.press("police", f"v1:prv:who:{chen}") == ["erase.done"]
    assert await bot.press("police", f"v1:prv:who:{chen}") == ["erase.already_erased"]
    (entry,) = await bot.repos_do(lambda r: r.audit.entries(action="person.erase"))
    assert (entry.actor_id, entry.subject_id, entry.via) == (police, chen, "console")


async def test_the_last_admin_cannot_erase_themselves(bot: Harness) -> None:
    admin = await bot.user_id("admin")
    await bot.say("admin", "/deleteme")
    assert await bot.press("admin", f"v1:prv:me:{admin}") == ["erase.last_admin"]
    await bot.person("second", accounts.ADMIN, building=None)
    assert await bot.press("admin", f"v1:prv:me:{admin}") == ["deleteme.done"]
    assert (await bot.repos_do(lambda r: r.users.get(admin))).role == accounts.RESIDENT


async def test_declining_the_privacy_notice_keeps_no_name(bot: Harness) -> None:
    await bot.say("newbie", "/start")
    await bot.press("newbie", "v1:lang:en")
    assert await bot.press("newbie", "v1:onb:decline") == ["onboarding.declined"]
    newbie = await bot.user_id("newbie")
    user = await bot.repos_do(lambda r: r.users.get(newbie))
    assert (user.display_name, user.language) == (accounts.DECLINED_NAME, None)
    assert user.declined_at is not None and user.privacy_accepted_at is None
    # Writing again does not start the questions again; /start does.
    assert await bot.say("newbie", "你好") == ["onboarding.declined_before"]
    assert await bot.say("newbie", "/report") == ["onboarding.declined_before"]
    assert await bot.say("newbie", "/start") == ["onboarding.ask_language"]
    await bot.press("newbie", "v1:lang:zh_CN")
    assert await bot.press("newbie", "v1:onb:accept") == ["onboarding.ask_building"]
    user = await bot.repos_do(lambda r: r.users.get(newbie))
    assert (user.display_name, user.declined_at) == ("newbie", None)


async def test_the_platform_name_is_kept_only_once_the_privacy_notice_is_accepted(bot: Harness) -> None:
    zhao = {"channel": CHANNEL, "user_external_id": "z9", "chat_id": "z9", "display_name": "赵小明"}
    await bot.rt.engine.handle(Incoming(**zhao, command="start"))
    await bot.rt.engine.handle(Incoming(**zhao, text="你好"))
    stranger = await bot.repos_do(lambda r: r.users.by_identity(CHANNEL, "z9"))
    assert stranger is not None and stranger[0].display_name == "z9"
    await bot.rt.engine.handle(Incoming(**zhao, command="start"))
    await bot.rt.engine.handle(Incoming(**zhao, action="v1:lang:zh_CN"))
    await bot.rt.engine.handle(Incoming(**zhao, action="v1:onb:accept"))
    consented = await bot.repos_do(lambda r: r.users.by_identity(CHANNEL, "z9"))
    assert consented is not None and consented[0].display_name == "赵小明"


def test_a_retention_is_a_positive_number_of_days() -> None:
    assert Privacy().retention_days is None
    with pytest.raises(ValueError, match="greater than 0"):
        Privacy(retention_days=0)


async def test_onboarding_tells_the_retention_in_force(database_url: str, tmp_path: Path) -> None:
    community = harnesses.test_community().model_copy(update={"privacy": Privacy(retention_days=90)})
    harness = await Harness(database_url, tmp_path).start(community)
    try:
        await harness.say("newbie", "/start")
        await harness.press("newbie", "v1:lang:zh_CN")
        assert harness.last is not None
        (reply,) = harness.last.replies
        assert isinstance(reply, Reply)
        assert reply.text.params["retention"].params == {"days": 90}
    finally:
        await harness.close()


async def test_retention_forgets_old_closed_reports_places_and_photos(
    database_url: str, tmp_path: Path
) -> None:
    community = harnesses.test_community().model_copy(update={"privacy": Privacy(retention_days=30)})
    bot = await Harness(database_url, tmp_path).start(community)
    try:
        await bot.person("police", accounts.POLICE, building=None)
        await bot.person("wang", building="3")
        old = await report_with_photo(bot, "wang", "很久以前的上报")
        await reject(bot, old)
        still_open = await report_with_photo(bot, "wang", "一直没有处理的上报")
        (stored,) = await photo_files(bot)
        await bot.wait(timedelta(days=20))
        recent = await report_with_photo(bot, "wang", "最近办结的上报")
        await reject(bot, recent)

        async def places() -> dict[str, tuple[object, ...]]:
            rows = await bot.repos_do(
                lambda r: _all(r, sa.select(t.reports.c.ticket, t.reports.c.building, t.reports.c.latitude))
            )
            return {ticket: (building, lat) for ticket, building, lat in rows}

        assert (await places())[old][0] == "3"
        # Thirty days after the old one closed, the next nightly sweep forgets it, and only it.
        await bot.wait(timedelta(days=10, hours=1))
        after = await places()
        assert after[old] == (None, None)
        assert after[recent][0] == "3" and after[still_open][0] == "3"
        ids = {
            ticket: (await bot.repos_do(lambda r, x=ticket: r.reports.by_ticket(x))).id for ticket in after
        }
        assert await bot.repos_do(lambda r: r.reports.photos(ids[old])) == []
        assert await bot.repos_do(lambda r: r.reports.photos(ids[still_open])) != []
        assert stored.exists()  # the open report shows the same picture
        # Swept once: a second run finds nothing, and the sweep is armed for the next night.
        assert await bot.repos_do(lambda r: privacy.sweep(r, community, bot.clock.now())) == 0
        armed = await bot.repos_do(lambda r: r.schedules.pending_of(privacy.RETENTION))
        assert len(armed) == 1 and armed[0].due_at > bot.clock.now()
        # Once every report holding the picture is past retention, the file itself goes.
        await bot.press("police", f"v1:rep:rej:{ids[still_open]}")
        await bot.say("police", "不属于本社区管辖范围")
        await bot.wait(timedelta(days=31))
        assert not stored.exists()
        assert await bot.repos_do(lambda r: _all(r, sa.select(t.media.c.id))) == []
    finally:
        await bot.close()
