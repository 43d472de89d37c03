"""/rewards and /redemptions: points held on request, spent on approval, returned on rejection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers.accounts import rules as accounts
from handlers.community import Reward
from handlers.timebank.rules import PICKUP_ALPHABET, PICKUP_CODE_LENGTH
from storage.models import Redemption
from storage.repositories import Repos
from tests import harness as driver
from tests.handlers.timebank.timebank_support import at_once, give_points, verified
from tests.harness import POLICE_GROUP, Harness


async def start(database_url: str, tmp_path: Path, rice_stock: int | None = 20) -> Harness:
    community = driver.test_community()
    rewards = [
        Reward(key="rice", names={"zh_CN": "大米 5 斤", "en": "Rice"}, cost=100, stock=rice_stock),
        Reward(key="haircut", names={"zh_CN": "理发券"}, cost=50),
    ]
    community = community.model_copy(
        update={"timebank": community.timebank.model_copy(update={"rewards": rewards})}
    )
    harness = await Harness(database_url, tmp_path).start(community)
    await harness.person("police", accounts.POLICE, building=None)
    await harness.person("admin", accounts.ADMIN, building=None)
    await harness.person("wang", building="3")
    await harness.person("chen", building="8")
    return harness


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await start(database_url, tmp_path)
    yield harness
    await harness.close()


async def points(bot: Harness, who: str) -> tuple[int, int]:
    """(available, held for redemptions)."""
    user_id = await bot.user_id(who)
    return (
        await bot.repos_do(lambda r: r.ledger.balance(user_id)),
        await bot.repos_do(lambda r: r.ledger.reserved(user_id)),
    )


async def redemptions(bot: Harness) -> list[Redemption]:
    async def all_of(repos: Repos) -> list[Redemption]:
        return [r for r in [await repos.rewards.get(i) for i in range(1, 20)] if r is not None]

    return await bot.repos_do(all_of)


async def issued(bot: Harness) -> dict[str, int]:
    return await bot.repos_do(lambda r: r.rewards.issued())


async def request_rice(bot: Harness, who: str) -> int:
    assert await bot.press(who, "v1:rwd:ask:rice") == ["reward.confirm"]
    assert await bot.press(who, "v1:rwd:ok:rice") == ["reward.requested"]
    return int(bot.last.replies[0].text.params["id"])


async def test_a_redemption_approved_from_the_police_group(bot: Harness) -> None:
    await give_points(bot, "wang", 150, "award:seed")
    assert await bot.say("wang", "/rewards") == [
        "reward.catalogue\nreward.item\nreward.item",
    ]
    assert bot.actions() == ["v1:rwd:ask:rice", "v1:rwd:ask:haircut"]
    item = bot.last.replies[0].text.items[1]
    assert item.params["cost"] == 100
    assert item.params["left"].key == "reward.left" and item.params["left"].params == {"count": 20}
    assert bot.last.replies[0].text.items[2].params["left"].key == "reward.unlimited"

    assert await bot.press("wang", "v1:rwd:ask:rice") == ["reward.confirm"]
    assert bot.last.replies[0].text.params["after"] == 50
    assert await points(bot, "wang") == (150, 0)  # asking is not yet redeeming
    assert await bot.press("wang", "v1:rwd:ok:rice") == ["reward.requested"]
    assert await points(bot, "wang") == (50, 100)
    [redemption] = await redemptions(bot)
    assert (redemption.state, redemption.cost, redemption.pickup_code) == ("pending", 100, None)

    card = bot.channel.to(POLICE_GROUP)[-1]
    assert card.text == "reward.request_card"
    approve, reject = f"v1:rdm:ok:{redemption.id}", f"v1:rdm:no:{redemption.id}"
    assert [action for _, action in card.buttons] == [approve, reject]
    assert await bot.say("wang", "/rewards") == [
        "reward.catalogue\nreward.item\nreward.item\nreward.mine_header\nreward.mine_pending"
    ]

    await bot.press("police", approve, group=True)
    assert bot.notice() == "reward.approved_short"
    assert bot.channel.to("police")[-1].text == "reward.approved_by_you"
    assert bot.channel.to("wang")[-1].text == "reward.approved"
    assert bot.channel.to(POLICE_GROUP)[-1].text == "reward.decided_approved"
    [redemption] = await redemptions(bot)
    assert redemption.state == "approved" and redemption.decided_by == await bot.user_id("police")
    code = redemption.pickup_code
    assert code is not None and len(code) == PICKUP_CODE_LENGTH and set(code) <= set(PICKUP_ALPHABET)
    assert await points(bot, "wang") == (50, 0)
    assert await issued(bot) == {"rice": 1}

    # The volunteer sees the pickup code in /rewards; the stock left went down.
    await bot.say("wang", "/rewards")
    mine = bot.last.replies[0].text.items[-1]
    assert mine.key == "reward.mine_approved" and mine.params["code"] == code
    assert bot.last.replies[0].text.items[1].params["left"].params == {"count": 19}

    # Whatever is pressed later, it was settled once.
    await bot.press("admin", approve, group=True)
    assert bot.notice() == "reward.already_decided"
    assert await bot.press("police", reject) == ["reward.already_decided"]
    assert await points(bot, "wang") == (50, 0)
    assert await issued(bot) == {"rice": 1}
    assert await verified(bot)


async def test_a_rejected_redemption_returns_the_points_with_the_reason(bot: Harness) -> None:
    await give_points(bot, "wang", 120, "award:seed")
    redemption_id = await request_rice(bot, "wang")
    assert await bot.press("police", f"v1:rdm:no:{redemption_id}") == ["reward.ask_reject_reason"]
    assert await bot.say("police", "") == ["timebank.need_reason"]
    assert await bot.say("police", "本月大米已发放完毕，请下月再来") == ["reward.rejected_by_you"]
    told = bot.channel.to("wang")[-1]
    assert told.text == "reward.rejected"
    assert await points(bot, "wang") == (120, 0)
    [redemption] = await redemptions(bot)
    assert (redemption.state, redemption.reason) == ("rejected", "本月大米已发放完毕，请下月再来")
    assert await issued(bot) == {}

    await bot.say("wang", "/points")
    lines = bot.last.replies[0].text.params["lines"].items
    assert [(line.params["amount"], line.params["reason"].key) for line in lines[:2]] == [
        ("+100", "points.reason.redemption_returned"),
        ("-100", "points.reason.redemption_requested"),
    ]
    assert lines[0].params["reason"].params["reason"] == "本月大米已发放完毕，请下月再来"
    assert bot.render(lines[1].params["reason"].params["reward"]) == "大米 5 斤"

    # Rejected, the reward can be asked for again.
    assert await request_rice(bot, "wang") == redemption_id + 1
    assert await verified(bot)


async def test_double_clicked_redeem_asks_once(bot: Harness) -> None:
    await give_points(bot, "wang", 300, "award:seed")
    await request_rice(bot, "wang")
    assert await bot.press("wang", "v1:rwd:ok:rice") == ["reward.already_requested"]
    answers = await at_once(bot, ("wang", "v1:rwd:ok:haircut"), ("wang", "v1:rwd:ok:haircut"))
    assert sorted(answers) == [["reward.already_requested"], ["reward.requested"]]
    assert await points(bot, "wang") == (150, 150)
    assert len(await redemptions(bot)) == 2
    assert [s.text for s in bot.channel.to(POLICE_GROUP)].count("reward.request_card") == 2
    assert await verified(bot)


async def test_not_enough_points_holds_nothing(bot: Harness) -> None:
    await give_points(bot, "wang", 60, "award:seed")
    assert await bot.press("wang", "v1:rwd:ask:rice") == ["reward.not_enough_points"]
    assert bot.last.replies[0].text.params["balance"] == 60
    # A confirmation pressed anyway (an old message) is refused the same way.
    assert await bot.press("wang", "v1:rwd:ok:rice") == ["reward.not_enough_points"]
    assert await bot.press("wang", "v1:rwd:ok:no-such-thing") == ["reward.unknown"]
    assert await points(bot, "wang") == (60, 0)
    assert await redemptions(bot) == []
    assert await bot.press("wang", "v1:rwd:no:haircut") == ["reward.not_redeemed"]


async def test_two_officers_approving_at_once_settle_once(bot: Harness) -> None:
    await give_points(bot, "wang", 100, "award:seed")
    redemption_id = await request_rice(bot, "wang")
    answers = await at_once(
        bot, ("police", f"v1:rdm:ok:{redemption_id}"), ("admin", f"v1:rdm:ok:{redemption_id}")
    )
    assert sorted(answers) == [["reward.already_decided"], ["reward.approved_by_you"]]
    answers = await at_once(
        bot, ("police", f"v1:rdm:ok:{redemption_id}"), ("admin", f"v1:rdm:oos:{redemption_id}")
    )
    assert answers == [["reward.already_decided"], ["reward.already_decided"]]
    assert await points(bot, "wang") == (0, 0)
    assert await issued(bot) == {"rice": 1}
    assert [s.text for s in bot.channel.to("wang")].count("reward.approved") == 1
    assert await verified(bot)


async def test_residents_cannot_decide_redemptions(bot: Harness) -> None:
    await give_points(bot, "wang", 100, "award:seed")
    redemption_id = await request_rice(bot, "wang")
    # Rejecting as out of stock is for when it is true.
    assert await bot.press("police", f"v1:rdm:oos:{redemption_id}") == ["reward.still_in_stock"]
    for verb in ("ok", "no", "oos"):
        assert await bot.press("chen", f"v1:rdm:{verb}:{redemption_id}") == ["error.not_allowed"]
        assert await bot.press("wang", f"v1:rdm:{verb}:{redemption_id}") == ["error.not_allowed"]
    assert await bot.say("wang", "/redemptions") == ["error.not_allowed"]
    assert (await redemptions(bot))[0].state == "pending"


async def test_police_list_pending_redemptions_with_buttons(bot: Harness) -> None:
    assert await bot.say("police", "/redemptions") == ["reward.none_pending"]
    await give_points(bot, "wang", 100, "award:w")
    await give_points(bot, "chen", 100, "award:c")
    first = await request_rice(bot, "wang")
    second = await request_rice(bot, "chen")
    assert await bot.say("police", "/redemptions") == [
        "reward.pending_header\nreward.pending_line\nreward.pending_line"
    ]
    assert bot.actions() == [
        f"v1:rdm:ok:{first}",
        f"v1:rdm:no:{first}",
        f"v1:rdm:ok:{second}",
        f"v1:rdm:no:{second}",
    ]


async def test_the_last_item_goes_to_the_first_approved(database_url: str, tmp_path: Path) -> None:
    bot = await start(database_url, tmp_path, rice_stock=1)
    try:
        await give_points(bot, "wang", 100, "award:w")
        await give_points(bot, "chen", 100, "award:c")
        first = await request_rice(bot, "wang")
        second = await request_rice(bot, "chen")
        assert await bot.press("police", f"v1:rdm:ok:{first}") == ["reward.approved_by_you"]

        # None left: the officer is told, the request stays pending, and can be rejected as out of stock.
        assert await bot.press("police", f"v1:rdm:ok:{second}") == ["reward.no_stock_left"]
        assert bot.actions() == [f"v1:rdm:oos:{second}"]
        assert [r.state for r in await redemptions(bot)] == ["approved", "pending"]
        assert await points(bot, "chen") == (0, 100)
        assert await bot.press("police", f"v1:rdm:oos:{second}") == ["reward.rejected_by_you"]
        assert bot.channel.to("chen")[-1].text == "reward.rejected_no_stock"
        assert await points(bot, "chen") == (100, 0)
        assert await issued(bot) == {"rice": 1}

        # Sold out: no Redeem button, and an old one is answered clearly.
        await bot.say("chen", "/rewards")
        assert bot.last.replies[0].text.items[1].params["left"].key == "reward.sold_out"
        assert bot.actions() == ["v1:rwd:ask:haircut"]
        assert await bot.press("chen", "v1:rwd:ask:rice") == ["reward.out_of_stock"]
        assert await bot.press("chen", "v1:rwd:ok:rice") == ["reward.out_of_stock"]
        assert await points(bot, "chen") == (100, 0)
        assert await verified(bot)
    finally:
        await bot.close()
