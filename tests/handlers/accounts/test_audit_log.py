"""Every privileged action leaves an entry in the audit log; /audit shows them to admins only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from handlers.community import Reward
from handlers.messages import Lines, Text, Verbatim
from storage.audit import AuditEntry
from tests import harness as driver
from tests.handlers.timebank.timebank_support import give_points
from tests.harness import Harness


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    community = driver.test_community()
    rewards = [Reward(key="rice", names={"zh_CN": "大米 5 斤", "en": "Rice"}, cost=100, stock=5)]
    community = community.model_copy(
        update={"timebank": community.timebank.model_copy(update={"rewards": rewards})}
    )
    harness = await Harness(database_url, tmp_path).start(community)
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("admin", accounts.ADMIN, building=None)
    await harness.person("li", accounts.GRID_WORKER, grids=("g1",), building=None)
    await harness.person("wang", building="3")
    yield harness
    await harness.close()


async def entries(bot: Harness, action: str | None = None) -> list[AuditEntry]:
    found: list[AuditEntry] = await bot.repos_do(lambda r: r.audit.entries(action=action))
    return found


async def test_awarding_and_revoking_points(bot: Harness) -> None:
    wang, police, admin = await bot.user_id("wang"), await bot.user_id("police"), await bot.user_id("admin")
    await bot.say("police", "/award")
    await bot.say("police", "wang")
    await bot.press("police", f"v1:awf:who:{wang}")
    await bot.say("police", "20")
    await bot.say("police", "协助调解邻里纠纷")
    assert await bot.press("police", "v1:awf:ok:1") == ["award.done"]
    (award,) = await entries(bot, "points.award")
    assert (award.actor_id, award.subject_id, award.via) == (police, wang, "console")
    assert award.detail == {"points": 20} and str(award.target).startswith("ledger:")

    [revoke] = bot.actions()
    await bot.press("admin", revoke)
    assert await bot.say("admin", "奖励对象弄错了") == ["award.revoke_done"]
    (revoked,) = await entries(bot, "points.revoke")
    assert (revoked.actor_id, revoked.subject_id, revoked.target) == (admin, wang, award.target)
    # Reasons are message texts: they stay in the ledger, not in the log.
    assert "奖励" not in str(revoked.detail) and "调解" not in str(award.detail)


async def test_approving_and_rejecting_redemptions(bot: Harness) -> None:
    wang, police = await bot.user_id("wang"), await bot.user_id("police")
    await give_points(bot, "wang", 300, "test:1")
    await bot.press("wang", "v1:rwd:ask:rice")
    await bot.press("wang", "v1:rwd:ok:rice")
    first = int(bot.last.replies[0].text.params["id"])
    await bot.press("police", f"v1:rdm:ok:{first}")
    (approved,) = await entries(bot, "redemption.approve")
    assert (approved.actor_id, approved.subject_id) == (police, wang)
    assert approved.target == f"redemption:{first}" and approved.detail == {"reward": "rice"}

    await bot.press("wang", "v1:rwd:ask:rice")
    await bot.press("wang", "v1:rwd:ok:rice")
    second = int(bot.last.replies[0].text.params["id"])
    await bot.press("police", f"v1:rdm:no:{second}")
    assert await bot.say("police", "本月已领过") == ["reward.rejected_by_you"]
    (rejected,) = await entries(bot, "redemption.reject")
    assert rejected.target == f"redemption:{second}" and rejected.subject_id == wang


async def test_an_export(bot: Harness) -> None:
    await give_points(bot, "wang", 30, "test:1")
    await bot.say("police", "/export")
    await bot.press("police", "v1:exf:kind:ledger")
    assert await bot.say("police", "2026-05-01 到 2026-05-31") == ["export.ready_ledger"]
    (export,) = await entries(bot, "data.export")
    assert export.actor_id == await bot.user_id("police") and export.target == "export:ledger"
    assert export.detail["first"] == "2026-05-01" and export.detail["last"] == "2026-05-31"
    # A refused export is no export.
    await bot.say("wang", "/export")
    assert len(await entries(bot, "data.export")) == 1


async def test_a_broadcast(bot: Harness) -> None:
    await bot.say("police", "/alert")
    await bot.press("police", "v1:bca:kind:fraud")
    await bot.say("police", "近期有冒充公检法的诈骗电话，请勿向陌生账户转账。")
    await bot.press("police", "v1:bca:aud:community")
    await bot.press("police", "v1:bca:prio:urgent")
    await bot.press("police", "v1:bca:when:now")
    assert await bot.press("police", "v1:bca:ok:1") == ["broadcast.sending"]
    (sent,) = await entries(bot, "broadcast.send")
    assert sent.actor_id == await bot.user_id("police") and str(sent.target).startswith("broadcast:")
    assert sent.detail == {"kind": "fraud", "priority": "urgent", "audience": "community", "scheduled": False}


async def test_each_view_of_an_anonymous_reporters_name(bot: Harness) -> None:
    wang = await bot.user_id("wang")
    await bot.file_report("wang")  # named: nothing to reveal
    await bot.say("wang", "/report")
    for press in ("v1:rpt:cat:fire", "v1:rpt:urg:normal"):
        await bot.press("wang", press)
    await bot.say("wang", "楼道里堆满了杂物，堵住了消防通道")
    for press in ("v1:rpt:ph:done", "v1:rpt:loc:home", "v1:rpt:anon:yes", "v1:rpt:ok:1"):
        await bot.press("wang", press)
    anonymous = (await bot.repos_do(lambda r: r.reports.by_reporter(wang, limit=1)))[0]
    assert anonymous.anonymous

    # The grid worker's cards hide the name: nothing is revealed, nothing recorded.
    await bot.say("li", "/tasks")
    assert await entries(bot, "report.reveal_reporter") == []
    # An officer's cards show it: each time, one entry for the anonymous report only.
    await bot.say("police", "/tasks")
    await bot.say("police", "/tasks")
    reveals = await entries(bot, "report.reveal_reporter")
    assert [(e.actor_id, e.subject_id, e.target) for e in reveals] == [
        (await bot.user_id("police"), wang, f"report:{anonymous.ticket}")
    ] * 2
    # Finding the person to award by an anonymous report's ticket names them too.
    await bot.say("admin", "/award")
    assert await bot.say("admin", f"#{anonymous.ticket}") == ["award.ask_points"]
    latest = (await entries(bot, "report.reveal_reporter"))[0]
    assert (latest.actor_id, latest.subject_id) == (await bot.user_id("admin"), wang)
    assert latest.detail == {"seen_in": "award"}


async def test_audit_is_for_admins_and_pages_back(bot: Harness) -> None:
    for who in ("police", "li", "wang"):
        assert await bot.say(who, "/audit") == ["error.not_allowed"]
        assert await bot.press(who, "v1:aud:older:99") == ["error.not_allowed"]
    assert await bot.say("admin", "/audit") == ["audit.none"]

    for _ in range(accounts.AUDIT_PAGE + 2):
        await bot.say("police", "/invite volunteer")
    assert await bot.say("admin", "/audit") == ["audit.list"]
    lines = bot.last.replies[0].text.params["lines"]
    assert isinstance(lines, Lines) and len(lines.items) == accounts.AUDIT_PAGE
    first = lines.items[0]
    assert isinstance(first, Text)
    assert first.params["action"] == Verbatim("invite.create")
    assert first.params["actor"] == Verbatim("police")
    [older] = bot.actions()
    assert await bot.press("admin", older) == ["audit.list"]
    assert len(bot.last.replies[0].text.params["lines"].items) == 2
    assert bot.actions() == []
