"""Numbered menus on channels without buttons: numbers never repeat among a chat's open ones, and a
number whose menu is gone is known as such."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.inbox import MenuChoice
from storage.repositories import Repos

NOW = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
TTL = timedelta(days=2)
CARD_A = ["v1:rep:ack:1", "v1:rep:asg:1", "v1:rep:rej:1", "v1:rep:dup:1"]
CARD_B = ["v1:rep:ack:2", "v1:rep:asg:2", "v1:rep:rej:2", "v1:rep:dup:2"]


async def test_menus_number_on_spend_and_replace(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        menus = Repos(connection).menus
        assert await menus.first_free("wecom", ["x", "y"]) == {"x": 1, "y": 1}
        await menus.remember("wecom", ["x", "y"], 1, CARD_A, "a", NOW)
        assert await menus.first_free("wecom", ["x", "y", "z"]) == {"x": 5, "y": 5, "z": 1}
        await menus.remember("wecom", ["x"], 5, CARD_B, "b", NOW)
        assert await menus.choice("wecom", "x", 1, NOW, TTL) == MenuChoice(CARD_A[0], is_open=True)
        assert await menus.choice("wecom", "x", 8, NOW, TTL) == MenuChoice(CARD_B[3], is_open=True)
        assert await menus.choice("wecom", "x", 9, NOW, TTL) is None
        # Past its time a choice no longer acts.
        assert await menus.choice("wecom", "x", 1, NOW + TTL, TTL) == MenuChoice(CARD_A[0], is_open=False)

        # Card A posted again (as it is now): the old copy is replaced, its numbers not reused.
        await menus.remember("wecom", ["x"], 9, CARD_A[1:], "a2", NOW)
        assert await menus.choice("wecom", "x", 2, NOW, TTL) == MenuChoice(CARD_A[1], is_open=False)
        assert await menus.choice("wecom", "x", 10, NOW, TTL) == MenuChoice(CARD_A[2], is_open=True)
        assert (await menus.choice("wecom", "x", 5, NOW, TTL) or MenuChoice(None, False)).is_open
        assert await menus.first_free("wecom", ["x"]) == {"x": 12}

        # Picking from card B answers card B only.
        await menus.spend_menu_of("wecom", "x", 6, None)
        assert await menus.choice("wecom", "x", 8, NOW, TTL) == MenuChoice(CARD_B[3], is_open=False)
        assert await menus.choice("wecom", "x", 9, NOW, TTL) == MenuChoice(CARD_A[1], is_open=True)
        # Pressing a card's button answers that card.
        await menus.spend_menu_of("wecom", "x", None, CARD_A[3])
        assert await menus.choice("wecom", "x", 9, NOW, TTL) == MenuChoice(CARD_A[1], is_open=False)

        # The other chat is untouched; writing anything spends every number, which may be reused.
        assert await menus.choice("wecom", "y", 1, NOW, TTL) == MenuChoice(CARD_A[0], is_open=True)
        await menus.spend_all("wecom", "y")
        assert await menus.first_free("wecom", ["y"]) == {"y": 1}
        assert await menus.choice("wecom", "y", 1, NOW, TTL) == MenuChoice(CARD_A[0], is_open=False)
        await menus.remember("wecom", ["y"], 1, ["v1:lang:en"], "c", NOW)
        assert await menus.entries("wecom", "y") == {
            1: ("v1:lang:en", "open"),
            **{n: (CARD_A[n - 1], "spent") for n in (2, 3, 4)},
        }
        await menus.forget_chat("wecom", "y")
        assert await menus.entries("wecom", "y") == {}
        assert await menus.entries("wecom", "x") != {}
