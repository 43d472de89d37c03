"""One alert to a whole district: how close delivery comes to the platform's limit, and nothing lost or twice.

    python bench/broadcast.py [--recipients N] [--rate R] [--channel telegram|wecom]
                              [--latency-ms MS] [--profile FILE]

The bot runs as deployed, minus the inbound side: a real runtime on a fresh
SQLite file in a temporary directory, the alert published through the
broadcast service (one outbox row per recipient, written in one transaction),
the outbox worker, and the channel adapter with its flood control. The fake
platform (tests/fakes) runs in a process of its own and is reached over HTTP
on loopback, so that, as with the real one, its work is not the bot's.

--channel telegram (the default): N residents with a private chat; the fake Bot
API enforces R messages a second overall (answering 429 with retry_after beyond
that), one a second per chat and 20 a minute per group; the adapter is
configured with the same R (SHOUWANG_TELEGRAM_RATE_PER_SECOND). The clock starts
with the outbox worker and stops when the last copy is out and every row is
recorded. ratio = achieved messages per second / R (a sliding one-second window
of R lets at most R through in any second; target >= 0.95). lost = residents
with no copy, dup = residents with more than one; 429s are counted too.

--channel wecom: N members of the app; the fake WeChat Work API enforces 30
messages a minute per member. An urgent alert is a text (with its numbered
menu) and a button card, and message/send takes up to 1,000 members per call,
so the least number of calls is 2 * ceil(N / 1000). WeChat Work limits calls,
not messages, so here ratio = that least number / the calls made (1.0: every
call carried as many members as it could).

The bot's CPU time per message is reported as well: unlike the rate, it does
not depend on what else the machine is doing. Each run prints its figures and
ends with one line `ratio=<x> lost=<n> dup=<n>`; run it once per channel.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import math
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fakes when run as a script

from bot.app import Runtime, build_runtime, telegram_channel, wecom_channel  # noqa: E402
from bot.channels.wecom.api import WeComConfig  # noqa: E402
from bot.community_file import load_community  # noqa: E402
from bot.settings import EXAMPLE_COMMUNITY_FILE, Settings  # noqa: E402
from handlers.accounts import rules as accounts  # noqa: E402
from handlers.broadcasts import rules as broadcasts  # noqa: E402
from handlers.community import Community, PoliceGroups  # noqa: E402
from storage import schema  # noqa: E402
from storage.repositories import Repos  # noqa: E402
from tests.fakes.telegram_api import FakeBotApi  # noqa: E402
from tests.fakes.wecom_api import MAX_RECIPIENTS, FakeWeComApi  # noqa: E402

TOKEN = "123:abc"
POLICE = "9000000"
FIRST_RESIDENT = 10_000_000
ALERT = "今晚20:00至22:00幸福里小区停水检修，请提前储水。如遇可疑人员冒充维修工上门，请拨打110。"
WECOM_TOKEN = "BenchCallbackToken"
WECOM_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


# --- the fake platform (child process) -------------------------------------------------------


def serve_fake(channel: str, options: dict[str, Any], latency: float, pipe: Connection) -> None:
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve_fake(channel, options, latency, pipe))


async def _serve_fake(channel: str, options: dict[str, Any], latency: float, pipe: Connection) -> None:
    fake: FakeBotApi | FakeWeComApi = (
        FakeBotApi(**options) if channel == "telegram" else FakeWeComApi(**options)
    )
    if latency:
        fake.app = _delayed(fake.app, latency)
    loop = asyncio.get_running_loop()
    async with fake:
        if isinstance(fake, FakeBotApi):
            pipe.send({"base_url": fake.base_url, "file_url": fake.base_file_url})
        else:
            pipe.send({"base_url": fake.base_url, "corp_id": fake.corp_id, "agent_id": fake.agent_id})
        while (command := await loop.run_in_executor(None, pipe.recv)) != "stop":
            if command == "count":
                pipe.send(len(fake.sent_messages()) if isinstance(fake, FakeBotApi) else len(fake.sent))
            elif command == "report":
                pipe.send(_telegram_report(fake) if isinstance(fake, FakeBotApi) else _wecom_report(fake))


def _telegram_report(api: FakeBotApi) -> dict[str, Any]:
    sends = [c for c in api.calls if c.method.lower() in ("sendmessage", "sendphoto")]
    return {
        "accepted": sum(1 for c in sends if not c.rejected),
        "refused": Counter(c.status for c in sends if c.rejected),
        "copies": Counter(str(m.chat_id) for m in api.sent_messages()),
    }


def _wecom_report(fake: FakeWeComApi) -> dict[str, Any]:
    calls = [c for c in fake.calls_to("message/send") if POLICE not in (c.json or {}).get("touser", "")]
    return {
        "calls": len(calls),
        "refused": Counter(c.errcode for c in calls if c.errcode),
        "copies": Counter(m.target for m in fake.sent if m.body["msgtype"] == "text"),
    }


def _delayed(app: Any, seconds: float) -> Any:
    """The fake's ASGI app behind a network round trip."""

    async def delayed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(seconds)
        await app(scope, receive, send)

    return delayed


class Platform:
    """The fake platform in its own process, asked over a pipe."""

    def __init__(self, channel: str, options: dict[str, Any], latency_ms: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(
            target=serve_fake, args=(channel, options, latency_ms / 1000, child), daemon=True
        )
        self.process.start()
        self.info: dict[str, Any] = self.pipe.recv()

    async def ask(self, command: str) -> Any:
        def roundtrip() -> Any:
            self.pipe.send(command)
            return self.pipe.recv()

        return await asyncio.get_running_loop().run_in_executor(None, roundtrip)

    def close(self) -> None:
        self.pipe.send("stop")
        self.process.join(10)


# --- the bot ----------------------------------------------------------------------------------


def community() -> Community:
    # No police group: the only messages are the residents' copies and the author's report.
    return load_community(EXAMPLE_COMMUNITY_FILE).model_copy(update={"police_groups": PoliceGroups()})


async def residents(runtime: Runtime, channel: str, chat_ids: list[str]) -> None:
    """People who pressed Start long ago, written in bulk (the onboarding dialogue is not measured)."""
    now = runtime.clock.now()
    async with runtime.database.transaction() as connection:
        for start in range(0, len(chat_ids), 500):
            chunk = chat_ids[start : start + 500]
            inserted = await connection.execute(
                schema.users.insert().returning(schema.users.c.id),
                [
                    {
                        "display_name": f"居民{chat_id}",
                        "role": accounts.RESIDENT,
                        "language": "zh_CN",
                        "grid_key": "g1" if n % 2 else "g2",
                        "building": str(n % 12 + 1),
                        "privacy_accepted_at": now,
                        "onboarded_at": now,
                        "created_at": now,
                    }
                    for n, chat_id in enumerate(chunk)
                ],
            )
            ids = [row.id for row in inserted]
            await connection.execute(
                schema.identities.insert(),
                [
                    {"channel": channel, "external_id": chat_id, "user_id": user_id, "chat_id": chat_id}
                    | {"last_seen_at": now}
                    for chat_id, user_id in zip(chunk, ids, strict=True)
                ],
            )


async def publish(runtime: Runtime, channel: str) -> None:
    now = runtime.clock.now()
    async with runtime.database.transaction() as connection:
        repos = Repos(connection)
        author = await accounts.grant_role(repos, channel, POLICE, accounts.POLICE, [], now, "张警官")
        await repos.users.touch_identity(channel, POLICE, POLICE, now)
        await repos.users.update(author.id, language="zh_CN", privacy_accepted_at=now, onboarded_at=now)
        await broadcasts.publish(
            repos,
            runtime.community,
            author,
            kind="police",
            priority=broadcasts.URGENT,
            text=ALERT,
            audience={"type": "community"},
            now=now,
        )


async def deliver(
    runtime: Runtime, platform: Platform, expected: int, profile: Path | None
) -> tuple[float, float]:
    """Run the outbox worker until `expected` messages are out and every row is recorded.

    Returns the seconds it took and the CPU seconds this process spent meanwhile. Progress
    is asked of the fake, not the database, which would compete with the worker for SQLite's
    one writer.
    """
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    worker = asyncio.create_task(runtime.delivery.run())
    while await platform.ask("count") < expected or await pending(runtime):  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler:
        profiler.disable()
        assert profile is not None
        profiler.dump_stats(profile)
    runtime.delivery.stop()
    await worker
    return seconds, cpu


async def pending(runtime: Runtime) -> bool:
    async with runtime.database.transaction() as connection:
        return "pending" in await Repos(connection).outbox.counts()


async def outbox_states(runtime: Runtime) -> dict[str, int]:
    async with runtime.database.transaction() as connection:
        return await Repos(connection).outbox.counts()


def missing_and_twice(copies: Counter[str], expected: list[str]) -> tuple[int, int]:
    return sum(1 for c in expected if copies[c] == 0), sum(1 for c in expected if copies[c] > 1)


async def telegram(args: argparse.Namespace, tmp: Path) -> tuple[float, int, int]:
    limits = {"rate_limit_per_second": args.rate, "per_chat_per_second": 1, "per_group_per_minute": 20}
    platform = Platform("telegram", limits, args.latency_ms)
    settings = Settings(
        database_url=f"sqlite:///{tmp}/db.sqlite", media_dir=tmp / "media", telegram_rate_per_second=args.rate
    )
    chats = [str(FIRST_RESIDENT + n) for n in range(args.recipients)]
    try:
        runtime = await build_runtime(settings, community=community())
        api_url, file_url = platform.info["base_url"], platform.info["file_url"]
        channel = telegram_channel(runtime, TOKEN, api_url=api_url, file_url=file_url)
        runtime.add_channel(channel)
        async with channel.application:
            await residents(runtime, "telegram", chats)
            await publish(runtime, "telegram")
            print(f"telegram: one urgent alert to {args.recipients} residents, Bot API at {args.rate:g}/s")
            # Every resident's copy and the author's report.
            seconds, cpu = await deliver(runtime, platform, len(chats) + 1, args.profile)
        states = await outbox_states(runtime)
        await runtime.close()
        found = await platform.ask("report")
    finally:
        platform.close()
    accepted = found["accepted"]
    achieved = accepted / seconds
    lost, dup = missing_and_twice(found["copies"], chats)
    print(f"  outbox: {states}")
    print(f"  {accepted} messages accepted in {seconds:.2f} s = {achieved:.1f}/s (allowed {args.rate:g}/s)")
    print(f"  bot CPU: {1000 * cpu / accepted:.2f} ms per message ({cpu:.1f} s in all)")
    print(f"  refused by the fake: {dict(found['refused']) or 'none'} (429 = over the flood limit)")
    print(f"  residents without the alert: {lost}, with it more than once: {dup}")
    return achieved / args.rate, lost, dup


async def wecom(args: argparse.Namespace, tmp: Path) -> tuple[float, int, int]:
    members = [f"resident{n:05d}" for n in range(args.recipients)]
    platform = Platform(
        "wecom", {"known_users": [*members, POLICE], "per_user_per_minute": 30}, args.latency_ms
    )
    settings = Settings(database_url=f"sqlite:///{tmp}/db.sqlite", media_dir=tmp / "media")
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            runtime = await build_runtime(settings, community=community())
            config = WeComConfig(
                corp_id=platform.info["corp_id"],
                agent_id=platform.info["agent_id"],
                secret=FakeWeComApi().corp_secret,
                token=WECOM_TOKEN,
                aes_key=WECOM_AES_KEY,
                api_url=platform.info["base_url"],
            )
            runtime.add_channel(wecom_channel(runtime, config, client))
            await residents(runtime, "wecom", members)
            await publish(runtime, "wecom")
            print(f"wecom: one urgent alert to {args.recipients} members (text + button card each)")
            # Every member's text and card, and the author's report.
            seconds, cpu = await deliver(runtime, platform, 2 * len(members) + 1, args.profile)
            states = await outbox_states(runtime)
            await runtime.close()
        found = await platform.ask("report")
    finally:
        platform.close()
    least = 2 * math.ceil(args.recipients / MAX_RECIPIENTS)
    lost, dup = missing_and_twice(found["copies"], members)
    print(f"  outbox: {states}")
    print(
        f"  {found['calls']} message/send calls for {args.recipients} members (at least {least}) "
        f"in {seconds:.2f} s = {args.recipients / seconds:.0f} members/s"
    )
    print(f"  bot CPU: {1000 * cpu / args.recipients:.2f} ms per member ({cpu:.1f} s in all)")
    print(f"  refused by the fake: {dict(found['refused']) or 'none'} (45009 = over a rate limit)")
    print(f"  members without the alert: {lost}, with it more than once: {dup}")
    return least / found["calls"], lost, dup


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=300.0, help="Telegram messages/s the fake allows")
    parser.add_argument("--channel", choices=("telegram", "wecom"), default="telegram")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="add this delay to every API call")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the delivery here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="shouwang-bench-") as tmp:
        if args.channel == "telegram":
            ratio, lost, dup = await telegram(args, Path(tmp))
        else:
            ratio, lost, dup = await wecom(args, Path(tmp))
    print(f"ratio={ratio:.3f} lost={lost} dup={dup}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
