"""/link joins one person's accounts on two channels into one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from tests.harness import Harness


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await Harness(database_url, tmp_path).start()
    await harness.person("police", accounts.POLICE, building=None)
    yield harness
    await harness.close()


async def test_link_merges_role_reports_and_identities(bot: Harness) -> None:
    # The officer also uses WeChat Work, where they started as a plain resident and filed a report.
    await bot.send("zhang-wecom", channel="wecom", command="start")
    await bot.send("zhang-wecom", channel="wecom", action="v1:lang:zh_CN")
    await bot.send("zhang-wecom", channel="wecom", action="v1:onb:accept")
    await bot.send("zhang-wecom", channel="wecom", text="5")
    wecom_user = (await bot.repos_do(lambda r: r.users.by_identity("wecom", "zhang-wecom")))[0]
    assert wecom_user.role == "resident"

    assert await bot.say("police", "/link") == ["link.code"]
    code = bot.last.replies[0].text.params["code"]
    assert await bot.send("zhang-wecom", channel="wecom", command="link", args=code.lower()) == ["link.done"]

    police_id = await bot.user_id("police")
    merged = await bot.repos_do(lambda r: r.users.get(police_id))
    assert merged.role == "police"
    assert merged.building == "5"  # the profile completed on WeChat Work is kept
    identities = await bot.repos_do(lambda r: r.users.identities(police_id))
    assert {(i.channel, i.external_id) for i in identities} == {
        ("console", "police"),
        ("wecom", "zhang-wecom"),
    }
    assert await bot.repos_do(lambda r: r.users.get(wecom_user.id)) is None
    # On WeChat Work the officer now has police rights.
    assert (await bot.send("zhang-wecom", channel="wecom", command="tasks"))[0] in (
        "tasks.none",
        "tasks.list",
    )


async def test_link_codes_are_single_use_and_expire(bot: Harness) -> None:
    await bot.say("police", "/link")
    code = bot.last.replies[0].text.params["code"]
    assert await bot.say("police", f"/link {code}") == ["link.same_account"]
    assert await bot.send("other", channel="wecom", command="link", args="NOPE1234") == ["link.invalid"]
    await bot.say("police", "/link")
    late = bot.last.replies[0].text.params["code"]
    bot.clock.advance(timedelta(minutes=11))
    assert await bot.send("other", channel="wecom", command="link", args=late) == ["link.invalid"]
