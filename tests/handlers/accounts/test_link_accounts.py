"""/link joins one person's accounts on two apps into one, once both sides confirm; never a role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from handlers.messages import Text, reply_from_json
from storage.people import LinkRepo
from tests.harness import Harness


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("wang")
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("admin", accounts.ADMIN, building=None)
    yield harness
    await harness.close()


async def wecom_user(bot: Harness, who: str, building: str | None = "5") -> int:
    """Someone who started the bot on WeChat Work (the harness's channel is the simulator's)."""
    await bot.send(who, channel="wecom", command="start")
    await bot.send(who, channel="wecom", action="v1:lang:zh_CN")
    await bot.send(who, channel="wecom", action="v1:onb:accept")
    if building is not None:
        await bot.send(who, channel="wecom", text=building)
    found = await bot.repos_do(lambda r: r.users.by_identity("wecom", who))
    return int(found[0].id)


async def code_of(bot: Harness, who: str, channel: str = "console") -> str:
    assert await bot.send(who, channel=channel, command="link") == ["link.code"]
    assert bot.last is not None
    return str(bot.last.replies[0].text.params["code"])


async def queued_keys(bot: Harness, channel: str, chat_id: str) -> list[str]:
    """The message keys queued for a chat of a channel the harness does not deliver to."""
    rows = await bot.repos_do(lambda r: r.outbox.all())
    texts = [reply_from_json(m.payload).text for m in rows if (m.channel, m.chat_id) == (channel, chat_id)]
    return [text.key for text in texts if isinstance(text, Text)]


async def audit_actions(bot: Harness) -> list[str]:
    return [e.action for e in await bot.repos_do(lambda r: r.audit.entries())]


async def test_both_sides_confirm_before_anything_is_merged(bot: Harness) -> None:
    wang_id = await bot.user_id("wang")
    other_id = await wecom_user(bot, "wang-wecom")
    code = await code_of(bot, "wang")

    # The typing side sees whose account it would join, and must press Confirm.
    said = await bot.send("wang-wecom", channel="wecom", command="link", args=code.lower())
    assert said == ["link.confirm_claim"]
    assert bot.last is not None
    shown = bot.last.replies[0].text.params
    assert shown["owner"].value == "wang" and shown["mine"].value == "wang-wecom"
    assert bot.actions() == [f"v1:lnk:claim:{code}", f"v1:lnk:drop:{code}"]
    assert await bot.repos_do(lambda r: r.users.get(other_id)) is not None

    assert await bot.send("wang-wecom", channel="wecom", action=f"v1:lnk:claim:{code}") == [
        "link.waiting_for_owner"
    ]
    # Still two people: the code's maker is asked in their own chat first.
    assert await bot.repos_do(lambda r: r.users.get(other_id)) is not None
    asked = bot.channel.to("wang")[-1]
    assert asked.text == "link.confirm_owner"
    assert asked.buttons == [
        ("button.link_confirm", f"v1:lnk:ok:{code}"),
        ("button.link_refuse", f"v1:lnk:no:{code}"),
    ]
    # Only the code's maker can give the second confirmation.
    assert await bot.send("wang-wecom", channel="wecom", action=f"v1:lnk:ok:{code}") == ["link.invalid"]

    assert await bot.press("wang", f"v1:lnk:ok:{code}") == ["link.done"]
    merged = await bot.repos_do(lambda r: r.users.get(wang_id))
    assert merged.role == accounts.RESIDENT
    identities = await bot.repos_do(lambda r: r.users.identities(wang_id))
    assert {(i.channel, i.external_id) for i in identities} == {("console", "wang"), ("wecom", "wang-wecom")}
    assert await bot.repos_do(lambda r: r.users.get(other_id)) is None
    # The WeChat Work side hears it there too.
    assert (await queued_keys(bot, "wecom", "wang-wecom"))[-1] == "link.done"
    entry = (await bot.repos_do(lambda r: r.audit.entries(action="link.create")))[0]
    assert entry.actor_id == wang_id and entry.subject_id == wang_id and entry.via == "console"
    assert entry.detail["merged_user"] == other_id and entry.detail["role"] == accounts.RESIDENT


async def test_an_officer_typing_a_residents_code_gives_the_resident_nothing(bot: Harness) -> None:
    """The issue's phishing path: a resident's account gets an officer to type its code."""
    # Both on the same app, as reported: refused outright.
    code = await code_of(bot, "wang")
    assert await bot.say("police", f"/link {code}") == ["link.same_channel"]
    # Across apps: a staff role never travels over a link, whichever side holds it.
    attacker = await wecom_user(bot, "mallory")
    code = await code_of(bot, "mallory", "wecom")
    assert await bot.say("police", f"/link {code}") == ["link.roles_differ"]
    assert await bot.press("police", f"v1:lnk:claim:{code}") == ["link.roles_differ"]
    officer_code = await code_of(bot, "police")
    assert await bot.send("mallory", channel="wecom", command="link", args=officer_code) == [
        "link.roles_differ"
    ]
    # Nothing was claimed, merged or granted: the resident's accounts still cannot see police tools.
    assert [m.text for m in bot.channel.to("police") if m.text == "link.confirm_owner"] == []
    assert (await bot.repos_do(lambda r: r.users.get(attacker))).role == accounts.RESIDENT
    assert await bot.say("wang", "/alerts") == ["error.not_allowed"]
    assert await bot.send("mallory", channel="wecom", command="alerts") == ["error.not_allowed"]
    assert "link.create" not in await audit_actions(bot)


async def test_a_role_granted_after_the_code_was_typed_still_stops_the_link(bot: Harness) -> None:
    await wecom_user(bot, "zhang-wecom")
    code = await code_of(bot, "zhang-wecom", "wecom")
    await bot.say("wang", f"/link {code}")
    await bot.press("wang", f"v1:lnk:claim:{code}")
    await bot.person("wang", accounts.POLICE)  # granted meanwhile
    assert await bot.send("zhang-wecom", channel="wecom", action=f"v1:lnk:ok:{code}") == ["link.roles_differ"]
    wang_id = await bot.user_id("wang")
    assert len(await bot.repos_do(lambda r: r.users.identities(wang_id))) == 1


async def test_same_role_staff_link_and_a_volunteer_stays_a_volunteer(bot: Harness) -> None:
    officer_wecom = await wecom_user(bot, "police-wecom", building=None)
    await bot.repos_do(lambda r: r.users.update(officer_wecom, role=accounts.POLICE))
    code = await code_of(bot, "police-wecom", "wecom")
    await bot.say("police", f"/link {code}")
    await bot.press("police", f"v1:lnk:claim:{code}")
    assert await bot.send("police-wecom", channel="wecom", action=f"v1:lnk:ok:{code}") == ["link.done"]
    assert (await bot.repos_do(lambda r: r.users.get(officer_wecom))).role == accounts.POLICE

    volunteer = await wecom_user(bot, "wang-wecom")
    await bot.repos_do(lambda r: r.users.update(volunteer, role=accounts.VOLUNTEER))
    code = await code_of(bot, "wang")
    await bot.send("wang-wecom", channel="wecom", command="link", args=code)
    await bot.send("wang-wecom", channel="wecom", action=f"v1:lnk:claim:{code}")
    assert await bot.press("wang", f"v1:lnk:ok:{code}") == ["link.done"]
    wang_id = await bot.user_id("wang")
    assert (await bot.repos_do(lambda r: r.users.get(wang_id))).role == accounts.VOLUNTEER


async def test_the_codes_maker_can_refuse(bot: Harness) -> None:
    other_id = await wecom_user(bot, "stranger")
    code = await code_of(bot, "wang")
    await bot.send("stranger", channel="wecom", command="link", args=code)
    await bot.send("stranger", channel="wecom", action=f"v1:lnk:claim:{code}")
    assert await bot.press("wang", f"v1:lnk:no:{code}") == ["link.refused_by_you"]
    assert await bot.repos_do(lambda r: r.users.get(other_id)) is not None
    assert (await queued_keys(bot, "wecom", "stranger"))[-1] == "link.refused"
    # Spent: neither a second press nor the code again does anything.
    assert await bot.press("wang", f"v1:lnk:ok:{code}") == ["link.invalid"]
    assert await bot.send("stranger", channel="wecom", command="link", args=code) == ["link.invalid"]


async def test_a_claimed_code_cannot_be_taken_over_by_another_account(bot: Harness) -> None:
    await wecom_user(bot, "wang-wecom")
    await wecom_user(bot, "mallory")
    code = await code_of(bot, "wang")
    await bot.send("wang-wecom", channel="wecom", command="link", args=code)
    await bot.send("wang-wecom", channel="wecom", action=f"v1:lnk:claim:{code}")
    assert await bot.send("mallory", channel="wecom", command="link", args=code) == ["link.invalid"]
    assert await bot.send("mallory", channel="wecom", action=f"v1:lnk:claim:{code}") == ["link.invalid"]


async def test_link_codes_are_single_use_and_expire(bot: Harness) -> None:
    await wecom_user(bot, "other")
    code = await code_of(bot, "police")
    assert await bot.say("police", f"/link {code}") == ["link.same_account"]
    assert await bot.send("other", channel="wecom", command="link", args="NOPE1234") == ["link.invalid"]
    late = await code_of(bot, "wang")
    bot.clock.advance(timedelta(minutes=11))
    assert await bot.send("other", channel="wecom", command="link", args=late) == ["link.invalid"]
    # The maker's confirmation also has a deadline, counted from the other side's.
    code = await code_of(bot, "wang")
    await bot.send("other", channel="wecom", command="link", args=code)
    await bot.send("other", channel="wecom", action=f"v1:lnk:claim:{code}")
    bot.clock.advance(timedelta(minutes=accounts.LINK_CODE_MINUTES + 1))
    assert await bot.press("wang", f"v1:lnk:ok:{code}") == ["link.invalid"]


async def test_an_admin_undoes_a_link(bot: Harness) -> None:
    wang_id = await bot.user_id("wang")
    await wecom_user(bot, "wang-wecom")
    code = await code_of(bot, "wang")
    await bot.send("wang-wecom", channel="wecom", command="link", args=code)
    await bot.send("wang-wecom", channel="wecom", action=f"v1:lnk:claim:{code}")
    await bot.press("wang", f"v1:lnk:ok:{code}")

    assert await bot.say("police", "/links") == ["error.not_allowed"]
    assert await bot.say("admin", "/links") == ["links.list"]
    link_id = (await bot.repos_do(lambda r: r.links.recent_links(10)))[0].id
    assert bot.actions() == [f"v1:lku:ask:{link_id}"]
    assert await bot.press("police", f"v1:lku:do:{link_id}") == ["error.not_allowed"]
    assert await bot.press("admin", f"v1:lku:ask:{link_id}") == ["links.confirm_undo"]
    assert await bot.press("admin", f"v1:lku:do:{link_id}") == ["links.undone"]

    split = (await bot.repos_do(lambda r: r.users.by_identity("wecom", "wang-wecom")))[0]
    assert split.id != wang_id and split.role == accounts.RESIDENT and split.display_name == "wang-wecom"
    assert split.onboarded_at is None  # the split-off account registers afresh
    kept = await bot.repos_do(lambda r: r.users.identities(wang_id))
    assert [(i.channel, i.external_id) for i in kept] == [("console", "wang")]
    assert bot.channel.to("wang")[-1].text == "link.undone_you"
    entry = (await bot.repos_do(lambda r: r.audit.entries(action="link.undo")))[0]
    assert entry.actor_id == await bot.user_id("admin") and entry.subject_id == wang_id
    assert entry.detail["split_into"] == split.id and entry.target == f"link:{link_id}"
    # Once is enough.
    assert await bot.press("admin", f"v1:lku:do:{link_id}") == ["link.already_undone"]
    assert await bot.say("admin", "/links") == ["links.none"]


async def test_the_operator_undoes_a_link_by_the_account_it_brought(bot: Harness) -> None:
    wang_id = await bot.user_id("wang")
    await wecom_user(bot, "wang-wecom")
    code = await code_of(bot, "wang")
    await bot.send("wang-wecom", channel="wecom", command="link", args=code)
    await bot.send("wang-wecom", channel="wecom", action=f"v1:lnk:claim:{code}")
    await bot.press("wang", f"v1:lnk:ok:{code}")
    now = bot.clock.now()
    # The account that made the code was not brought by the link: there is nothing to split off.
    with pytest.raises(accounts.DomainError, match=r"link\.not_linked"):
        await bot.repos_do(lambda r: accounts.undo_link_of(r, "console", "wang", now))

    undone = await bot.repos_do(lambda r: accounts.undo_link_of(r, "wecom", "wang-wecom", now))
    assert undone.moved == [("wecom", "wang-wecom")] and undone.kept.id == wang_id
    entry = (await bot.repos_do(lambda r: r.audit.entries(action="link.undo")))[0]
    assert entry.via == "cli" and entry.actor_id is None
    with pytest.raises(accounts.DomainError, match=r"link\.not_linked"):
        await bot.repos_do(lambda r: accounts.undo_link_of(r, "wecom", "wang-wecom", now))


async def test_a_link_undone_meanwhile_leaves_no_empty_person(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await wecom_user(bot, "wang-wecom")
    code = await code_of(bot, "wang")
    await bot.send("wang-wecom", channel="wecom", command="link", args=code)
    await bot.send("wang-wecom", channel="wecom", action=f"v1:lnk:claim:{code}")
    await bot.press("wang", f"v1:lnk:ok:{code}")
    link_id = (await bot.repos_do(lambda r: r.links.recent_links(10)))[0].id
    people = len(await bot.repos_do(lambda r: r.users.with_roles(accounts.ROLES)))

    async def undone_by_someone_else(*_: object) -> list[tuple[str, str]]:
        return []

    # Another admin's undo committed between this one's check and its split.
    monkeypatch.setattr(LinkRepo, "split_off", undone_by_someone_else)
    assert await bot.press("admin", f"v1:lku:do:{link_id}") == ["link.already_undone"]
    assert len(await bot.repos_do(lambda r: r.users.with_roles(accounts.ROLES))) == people
