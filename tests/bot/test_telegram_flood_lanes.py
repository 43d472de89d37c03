"""Telegram's flood control (bot/channels/telegram_flood.py) and the outbox lanes: senders waiting
for the bot's turn are let through most urgent first, and paid broadcasts have a rate of their own."""

from __future__ import annotations

import asyncio

from bot.channels.telegram_flood import FloodControl, Turn, Window


async def test_waiting_senders_get_the_bots_turn_by_priority_then_in_arrival_order() -> None:
    window = Window(1, 0.02)
    await window.acquire()  # the one place is taken: everyone below waits
    order: list[str] = []

    async def sender(name: str, priority: int) -> None:
        await window.acquire(priority)
        order.append(name)
        window.release()

    senders = [asyncio.create_task(sender(f"bulk{n}", 4)) for n in range(3)]
    senders.append(asyncio.create_task(sender("urgent", 2)))
    senders.append(asyncio.create_task(sender("card", 0)))
    senders.append(asyncio.create_task(sender("reply", -1)))
    await asyncio.sleep(0)  # each task runs up to its wait for a turn
    window.release()
    await asyncio.wait_for(asyncio.gather(*senders), timeout=10)
    assert order == ["reply", "card", "urgent", "bulk0", "bulk1", "bulk2"]


async def test_a_paid_broadcast_is_paced_by_the_paid_rate_and_the_rest_by_the_free_one() -> None:
    flood = FloodControl(30, 20, 1.0, paid_per_second=1000)
    assert flood.paid is not None
    paid = Turn("5000001", group=False, reply=False, calls_left=1, priority=2, paid=True)
    free = Turn("5000002", group=False, reply=False, calls_left=1, priority=2)
    paid_windows = await flood.enter(paid)
    free_windows = await flood.enter(free)
    assert paid_windows[-1] is flood.paid and free_windows[-1] is flood.bot
    assert (flood.paid.open, flood.bot.open) == (1, 1)
    flood.leave(paid_windows)
    flood.leave(free_windows)
    # Without paid broadcasts a turn marked paid is paced like any other.
    off = FloodControl(30, 20, 1.0)
    windows = await off.enter(Turn("5000003", group=False, reply=False, calls_left=1, paid=True))
    assert off.paid is None and windows[-1] is off.bot
