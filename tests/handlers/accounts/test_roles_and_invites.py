"""Roles with a history: /roles revokes (admins only), everyone concerned is told, invites can be
withdrawn, and every grant, revocation and invite is in the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.accounts import roles
from handlers.accounts import rules as accounts
from storage.audit import AuditEntry
from storage.repositories import Repos
from tests.harness import POLICE_GROUP, Harness


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("wang")
    await harness.person("li", accounts.GRID_WORKER, grids=("g1",), building=None)
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("admin", accounts.ADMIN, building=None)
    yield harness
    await harness.close()


async def entries(bot: Harness, action: str) -> list[AuditEntry]:
    found: list[AuditEntry] = await bot.repos_do(lambda r: r.audit.entries(action=action))
    return found


async def test_an_admin_revokes_a_role_after_confirming(bot: Harness) -> None:
    li = await bot.user_id("li")
    assert await bot.say("admin", "/roles") == ["roles.list"]
    assert f"v1:rol:ask:{li}" in bot.actions()
    assert await bot.press("admin", f"v1:rol:ask:{li}") == ["roles.confirm_revoke"]
    assert bot.actions() == [f"v1:rol:do:{li}", f"v1:rol:drop:{li}"]
    assert await bot.press("admin", f"v1:rol:drop:{li}") == ["roles.kept"]
    assert (await bot.repos_do(lambda r: r.users.get(li))).role == accounts.GRID_WORKER

    assert await bot.press("admin", f"v1:rol:do:{li}") == ["roles.revoked"]
    revoked = await bot.repos_do(lambda r: r.users.get(li))
    assert revoked.role == accounts.RESIDENT
    assert await bot.repos_do(lambda r: r.users.grids_of(li)) == []
    # The person and the police group are told.
    assert bot.channel.to("li")[-1].text == "roles.revoked_you"
    assert bot.channel.to(POLICE_GROUP)[-1].text == "roles.revoked_police"
    # The revocation is checked where it matters: the worker's tools are gone.
    assert await bot.say("li", "/tasks") == ["error.not_allowed"]
    (entry,) = await entries(bot, "role.revoke")
    assert entry.actor_id == await bot.user_id("admin") and entry.subject_id == li
    assert entry.detail == {"role": "resident", "previous": "grid_worker", "grids": ["g1"]}
    # A second press of the old button explains instead of acting twice.
    assert await bot.press("admin", f"v1:rol:do:{li}") == ["roles.nothing_to_revoke"]
    assert len(await entries(bot, "role.revoke")) == 1


async def test_only_admins_see_and_revoke_roles(bot: Harness) -> None:
    li = await bot.user_id("li")
    admin = await bot.user_id("admin")
    for who in ("police", "wang", "li"):
        assert await bot.say(who, "/roles") == ["error.not_allowed"]
        assert await bot.press(who, f"v1:rol:do:{li}") == ["error.not_allowed"]
    assert await bot.press("admin", f"v1:rol:do:{admin}") == ["roles.not_yourself"]
    assert (await bot.repos_do(lambda r: r.users.get(li))).role == accounts.GRID_WORKER
    assert await entries(bot, "role.revoke") == []


async def test_invites_are_audited_listed_and_withdrawn(bot: Harness) -> None:
    assert await bot.say("police", "/invite grid_worker g2") == ["invite.created"]
    (created,) = await entries(bot, "invite.create")
    assert created.actor_id == await bot.user_id("police")
    assert created.detail == {"role": "grid_worker", "grid": "g2"}
    code = (await bot.repos_do(lambda r: r.invites.outstanding(bot.clock.now())))[0].code
    assert code[:6] in str(created.target) and code not in str(created.target)

    assert await bot.say("admin", "/invite police") == ["invite.created"]
    admins_code = next(
        i.code
        for i in await bot.repos_do(lambda r: r.invites.outstanding(bot.clock.now()))
        if i.role == "police"
    )
    # Police see their own invites and cannot withdraw an admin's; residents see none.
    assert await bot.say("police", "/invites") == ["invites.list"]
    assert bot.actions() == [f"v1:ivw:do:{code}"]
    assert await bot.press("police", f"v1:ivw:do:{admins_code}") == ["error.not_allowed"]
    assert await bot.say("wang", "/invites") == ["error.not_allowed"]
    assert await bot.say("admin", "/invites") == ["invites.list"]
    assert len(bot.actions()) == 2

    assert await bot.press("police", f"v1:ivw:do:{code}") == ["invites.withdrawn"]
    (withdrawn,) = await entries(bot, "invite.withdraw")
    assert withdrawn.actor_id == await bot.user_id("police") and withdrawn.target == created.target
    assert await bot.press("police", f"v1:ivw:do:{code}") == ["invite.withdraw_too_late"]
    # The withdrawn link no longer grants anything.
    assert await bot.say("newcomer", f"/start inv_{code}") == ["invite.withdrawn"]
    newcomer = await bot.repos_do(lambda r: r.users.by_identity("console", "newcomer"))
    assert newcomer[0].role == accounts.RESIDENT
    assert await entries(bot, "invite.redeem") == []


async def test_a_redeemed_invite_is_audited_and_announced(bot: Harness) -> None:
    await bot.say("police", "/invite volunteer")
    code = (await bot.repos_do(lambda r: r.invites.outstanding(bot.clock.now())))[0].code
    said = await bot.say("zhao", f"/start inv_{code}")
    assert said[0] == "invite.welcome"
    zhao = (await bot.repos_do(lambda r: r.users.by_identity("console", "zhao")))[0]
    assert zhao.role == accounts.VOLUNTEER
    (entry,) = await entries(bot, "invite.redeem")
    assert entry.subject_id == zhao.id and entry.detail["invited_by"] == await bot.user_id("police")
    assert entry.detail["role"] == "volunteer" and entry.detail["previous"] == "resident"
    assert bot.channel.to(POLICE_GROUP)[-1].text == "roles.granted_police"


async def test_a_command_line_grant_keeps_the_persons_data_and_is_told(bot: Harness) -> None:
    ticket = await bot.file_report("wang")
    wang = await bot.user_id("wang")
    await bot.repos_do(lambda r: r.users.update(wang, display_name="王芳"))

    async def grant(repos: Repos) -> accounts.RoleChange:
        change = await accounts.grant_from_command_line(
            repos, "console", "wang", accounts.GRID_WORKER, ["g2"], bot.clock.now(), "someone else"
        )
        await roles.announce(repos, bot.rt.community, change, bot.clock.now())
        return change

    change = await bot.rt.engine.run(grant)
    await bot.deliver()
    assert change.previous == accounts.RESIDENT and change.grids == ["g2"]
    person = await bot.repos_do(lambda r: r.users.get(wang))
    # Same person: name, home, reports all kept; only the role and grid are new.
    assert person.id == wang and person.display_name == "王芳" and person.building == "3"
    assert person.onboarded_at is not None and person.role == accounts.GRID_WORKER
    assert [r.ticket for r in await bot.repos_do(lambda r: r.reports.by_reporter(wang))] == [ticket]
    assert bot.channel.to("wang")[-1].text == "roles.granted_you"
    assert bot.channel.to(POLICE_GROUP)[-1].text == "roles.granted_police"
    (entry,) = await entries(bot, "role.grant")
    assert entry.via == "cli" and entry.actor_id is None and entry.subject_id == wang
    assert entry.detail == {"role": "grid_worker", "previous": "resident", "grids": ["g2"]}


async def test_a_command_line_revocation_is_told_and_audited(bot: Harness) -> None:
    li = await bot.user_id("li")

    async def revoke(repos: Repos) -> accounts.RoleChange:
        person = await accounts.person_on(repos, "console", "li")
        change = await accounts.revoke_role(repos, None, "cli", person.id, bot.clock.now())
        await roles.announce(repos, bot.rt.community, change, bot.clock.now())
        return change

    await bot.rt.engine.run(revoke)
    await bot.deliver()
    assert bot.channel.to("li")[-1].text == "roles.revoked_you"
    assert bot.channel.to(POLICE_GROUP)[-1].text == "roles.revoked_police"
    (entry,) = await entries(bot, "role.revoke")
    assert entry.via == "cli" and entry.actor_id is None and entry.subject_id == li
