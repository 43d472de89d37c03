"""Updates per second: a bare python-telegram-bot echo bot vs. Shouwang, on one fake Bot API.

    python bench/throughput.py [--users N | --updates N] [--rounds N] [--latency-ms MS]
                               [--in-process] [--profile FILE]

Both bots poll the same FakeBotApi (tests/fakes/telegram_api.py) over loopback
HTTP and are driven the same way: every simulated user takes one step per wave,
a wave is pushed at once, and the next wave starts when the bot has answered
the previous one (it needs the message ids of the buttons it presses).
Shouwang runs as deployed: real runtime and SQLite file in a temporary
directory, the Telegram adapter, and the outbox worker, whose notifications to
grid workers and the police group are counted in its time.

Each Shouwang user: /start, language button, privacy button, building text,
/report, category, urgency, description text, photos "done", location,
anonymous, confirm, /myreports, /help, free text.

The fake server runs in a process of its own, as Telegram's servers are not on
the bot's machine: the bots' figures are then theirs, not the fake's. It still
answers every call at once, over loopback, so a bot's own CPU and how it waits
for its calls are what is compared. --in-process puts the fake on the bots'
event loop instead (as the tests do): every call then also costs the fake's
CPU on the same core, which weighs on the bot that makes more calls per update.

The machine's speed drifts by tens of per cent over a few seconds (a shared
host), so the bots take turns for --rounds rounds and the medians are compared:
a slow spell then falls on all of them.

(c) hands the same steps straight to Shouwang's engine and renders the replies:
its own work (database, conversations, translations) without any Bot API call.
With --in-process, from (b) and (c) the benchmark prints what (b) would reach if
that work were free, so the part of the gap that is Bot API traffic is measured,
not guessed.

--latency-ms puts a network round trip in front of every Bot API call
(getUpdates aside), as a real Telegram has; then round trips, not CPU, bound a
bot that handles one update at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fakes when run as a script

from telegram import Update  # noqa: E402
from telegram.ext import (  # noqa: E402
    Application,
    ApplicationBuilder,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.app import Runtime, build_runtime, telegram_channel  # noqa: E402
from bot.community_file import load_community  # noqa: E402
from bot.settings import EXAMPLE_COMMUNITY_FILE, Settings  # noqa: E402
from handlers.accounts import rules as accounts  # noqa: E402
from handlers.clock import FakeClock  # noqa: E402
from handlers.community import PoliceGroups  # noqa: E402
from handlers.messages import Incoming, Location  # noqa: E402
from storage.db import normalise_url  # noqa: E402
from storage.repositories import Repos  # noqa: E402
from tests.fakes.telegram_api import FakeBotApi  # noqa: E402

TOKEN = "123:abc"
GROUP = -1001234567890
ECHO_USERS = 500_000
SHOUWANG_USERS = 100_000
WORKERS = {"g1": 9001, "g2": 9002}
POLICE = 9100
CATEGORIES = ("road", "fire", "suspicious", "dispute", "fraud", "sanitation", "other")
# Points inside the example community (radius 1.5 km around 31.2304, 121.4737).
POINTS = ((31.2292, 121.4721), (31.2326, 121.4720), (31.2304, 121.4737))


@dataclass(frozen=True)
class Step:
    """One thing a user does: say `text`, press the button carrying `data`, or send a location."""

    text: str | None = None
    data: str | None = None
    location: tuple[float, float] | None = None


def shouwang_script(n: int) -> list[Step]:
    building = str(n % 12 + 1)
    return [
        Step(text="/start"),
        Step(data="v1:lang:zh_CN"),
        Step(data="v1:onb:accept"),
        Step(text=building),
        Step(text="/report"),
        Step(data=f"v1:rpt:cat:{CATEGORIES[n % len(CATEGORIES)]}"),
        Step(data=f"v1:rpt:urg:{'urgent' if n % 5 == 0 else 'normal'}"),
        Step(text=f"{building}号楼楼道里堆满了纸箱，堵住了消防通道（第{n}户反映）"),
        Step(data="v1:rpt:ph:done"),
        Step(location=POINTS[n % len(POINTS)]),
        Step(data=f"v1:rpt:anon:{'yes' if n % 3 == 0 else 'no'}"),
        Step(data="v1:rpt:ok:1"),
        Step(text="/myreports"),
        Step(text="/help"),
        Step(text="谢谢你们"),
    ]


STEPS_PER_USER = len(shouwang_script(0))
# --postgres-url: Shouwang on this PostgreSQL database (its public schema emptied for every run)
# instead of a new SQLite file.
POSTGRES_URL: str | None = None
# Called after each wave is pushed, with whether it was the last; returns once it is answered.
Settled = Callable[[bool], Awaitable[None]]
Wave = list[tuple[int, Step]]


def push(api: FakeBotApi, user_id: int, step: Step) -> None:
    if step.text is not None:
        api.push_text(user_id, step.text)
    elif step.location is not None:
        api.push_location(user_id, *step.location)
    else:
        assert step.data is not None
        message = button_message(api, user_id, step.data)
        assert message is not None, f"user {user_id} has no button {step.data}"
        api.push_callback(user_id, user_id, message, step.data)


def button_message(api: FakeBotApi, user_id: int, data: str) -> int | None:
    """The id of the newest message in the user's chat that offers a button with `data`."""
    for message in reversed(api.sent_messages(user_id)):
        if data in message.callback_data:
            return message.message_id
    return None


class LocalServer:
    """The fake Bot API on the running event loop, and what the bench asks of it."""

    def __init__(self, latency: float) -> None:
        self.api = FakeBotApi(latency=latency)

    async def start(self) -> tuple[str, str]:
        await self.api.start()
        return self.api.base_url, self.api.base_file_url

    async def stop(self) -> None:
        await self.api.stop()

    async def push(self, wave: Wave) -> None:
        for user_id, step in wave:
            push(self.api, user_id, step)

    async def until_idle(self) -> None:
        """Every pushed update fetched, and no call for a few ms (a handler's own calls included)."""
        await self.api.until_idle(timeout=120, quiet=0.005)

    async def sent_to(self, chat_ids: list[int]) -> int:
        return sum(len(self.api.sent_messages(chat_id)) for chat_id in chat_ids)

    async def api_calls(self) -> int:
        return sum(call.method.lower() != "getupdates" for call in self.api.calls)

    async def clear(self) -> None:
        self.api.clear_records()


class ChildServer:
    """A LocalServer in a process of its own, asked over a pipe.

    Each request blocks a worker thread of the bots' process, not its event loop.
    """

    def __init__(self, latency: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(target=_serve_child, args=(child_end, latency), daemon=True)
        self._lock = threading.Lock()

    async def start(self) -> tuple[str, str]:
        self._process.start()
        urls: tuple[str, str] = await asyncio.to_thread(self._pipe.recv)
        return urls

    async def stop(self) -> None:
        await self._ask("stop")
        await asyncio.to_thread(self._process.join)

    async def push(self, wave: Wave) -> None:
        await self._ask("push", wave)

    async def until_idle(self) -> None:
        await self._ask("until_idle")

    async def sent_to(self, chat_ids: list[int]) -> int:
        sent: int = await self._ask("sent_to", chat_ids)
        return sent

    async def api_calls(self) -> int:
        calls: int = await self._ask("api_calls")
        return calls

    async def clear(self) -> None:
        await self._ask("clear")

    async def _ask(self, method: str, *args: Any) -> Any:
        def roundtrip() -> Any:
            with self._lock:
                self._pipe.send((method, args))
                ok, answer = self._pipe.recv()
            if not ok:
                raise RuntimeError(f"fake Bot API process: {answer}")
            return answer

        return await asyncio.to_thread(roundtrip)


def _serve_child(pipe: Connection, latency: float) -> None:
    async def serve() -> None:
        server = LocalServer(latency)
        pipe.send(await server.start())
        loop = asyncio.get_running_loop()
        while True:
            method, args = await loop.run_in_executor(None, pipe.recv)
            if method == "stop":
                await server.stop()
                pipe.send((True, None))
                return
            try:
                pipe.send((True, await getattr(server, method)(*args)))
            except Exception as error:  # reported to the bench, which raises it
                pipe.send((False, repr(error)))

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(serve())


Server = LocalServer | ChildServer


async def drive(server: Server, scripts: dict[int, list[Step]], settled: Settled) -> tuple[float, float]:
    """Run every script wave by wave; returns the seconds from the first push until all is answered,
    and the CPU seconds this process spent meanwhile (all its threads: aiosqlite's too; with the
    fake Bot API in a process of its own, none of the fake's)."""
    waves = max(len(script) for script in scripts.values())
    started, cpu_started = time.perf_counter(), time.process_time()
    for wave in range(waves):
        await server.push([(user, script[wave]) for user, script in scripts.items() if wave < len(script)])
        await settled(wave + 1 == waves)
    return time.perf_counter() - started, time.process_time() - cpu_started


async def handled(server: Server, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Every pushed update fetched and handled (its handler's own requests included)."""
    while True:
        await server.until_idle()
        if app.update_queue.empty() and app.update_processor.current_concurrent_updates == 0:
            return
        await asyncio.sleep(0.002)


# --- (a) the bare echo bot ----------------------------------------------------------------


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None and update.effective_message.text is not None
    await update.effective_message.reply_text(update.effective_message.text)


async def echo_rate(server: Server, urls: tuple[str, str], users: int) -> tuple[float, float, int]:
    app = ApplicationBuilder().token(TOKEN).base_url(urls[0]).base_file_url(urls[1]).build()
    app.add_handler(MessageHandler(filters.TEXT, _echo))
    scripts = {
        ECHO_USERS + n: [Step(text=f"第{wave}条消息，来自第{n}位用户") for wave in range(STEPS_PER_USER)]
        for n in range(users)
    }
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=1)

        async def settled(last: bool) -> None:
            await handled(server, app)

        seconds, cpu = await drive(server, scripts, settled)
        await app.updater.stop()
        await app.stop()
    updates = users * STEPS_PER_USER
    replies = await server.sent_to(list(scripts))
    assert replies == updates, f"echo answered {replies} of {updates}"
    return seconds, cpu, updates


# --- (b) Shouwang ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def shouwang_runtime() -> AsyncIterator[tuple[Runtime, FakeClock]]:
    """Shouwang as deployed, on a new SQLite file, with staff who already pressed Start
    (so every report notifies someone privately as well)."""
    with tempfile.TemporaryDirectory(prefix="shouwang-bench-") as tmp:
        community = load_community(EXAMPLE_COMMUNITY_FILE).model_copy(
            update={"police_groups": PoliceGroups(telegram=[str(GROUP)])}
        )
        # The fake server imposes no flood limits here, and neither may the bot: like the echo bot,
        # it sends as fast as it can (its own flood control is measured by bench/broadcast.py).
        if POSTGRES_URL:
            await _empty_postgres(POSTGRES_URL)
        settings = Settings(
            database_url=POSTGRES_URL or f"sqlite:///{tmp}/db.sqlite",
            media_dir=Path(tmp) / "media",
            telegram_rate_per_second=1_000_000,
            telegram_group_per_minute=1_000_000,
            telegram_chat_per_second=1_000_000,
        )
        clock = FakeClock()
        runtime = await build_runtime(settings, community=community, clock=clock)
        async with runtime.database.transaction() as connection:
            repos = Repos(connection)
            now = clock.now()
            staff = [(uid, accounts.GRID_WORKER, [g]) for g, uid in WORKERS.items()]
            for uid, role, grids in [*staff, (POLICE, accounts.POLICE, [])]:
                user = await accounts.grant_role(repos, "telegram", str(uid), role, grids, now, f"staff{uid}")
                await repos.users.touch_identity("telegram", str(uid), str(uid), now)
                await repos.users.update(user.id, language="zh_CN", privacy_accepted_at=now, onboarded_at=now)
        try:
            yield runtime, clock
        finally:
            await runtime.close()


async def _empty_postgres(url: str) -> None:
    engine = create_async_engine(normalise_url(url))
    async with engine.begin() as connection:
        await connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        await connection.execute(sa.text("CREATE SCHEMA public"))
    await engine.dispose()


async def reports_filed(runtime: Runtime, users: int) -> int:
    async with runtime.database.transaction() as connection:
        return len(await Repos(connection).reports.open_reports(None, limit=users + 1))


async def shouwang_rate(
    server: Server, urls: tuple[str, str], users: int, profile: Path | None
) -> tuple[float, float, int, int]:
    async with shouwang_runtime() as (runtime, clock):
        channel = telegram_channel(runtime, TOKEN, api_url=urls[0], file_url=urls[1])
        runtime.add_channel(channel)

        async def settled(last: bool) -> None:
            await handled(server, channel.application)
            while last:  # ...and every notification delivered.
                async with runtime.database.transaction() as connection:
                    if not await Repos(connection).outbox.due(clock.now(), limit=1):
                        return
                await asyncio.sleep(0.005)
                await handled(server, channel.application)

        scripts = {SHOUWANG_USERS + n: shouwang_script(n) for n in range(users)}
        profiler = cProfile.Profile() if profile else None
        async with channel.application:
            await channel.start(poll_timeout=1)
            delivery = asyncio.create_task(runtime.delivery.run())
            if profiler:
                profiler.enable()
            seconds, cpu = await drive(server, scripts, settled)
            if profiler:
                profiler.disable()
                profiler.dump_stats(profile)
            runtime.delivery.stop()
            await delivery
            await channel.stop()
        async with runtime.database.transaction() as connection:
            repos = Repos(connection)
            counts = await repos.outbox.counts()
            errors = {row.last_error for row in await repos.outbox.all() if row.state != "sent"}
        filed = await reports_filed(runtime, users)
    assert filed == users, f"{filed} reports filed by {users} users"
    assert set(counts) == {"sent"}, f"outbox not drained: {counts} {errors}"
    replies = await server.sent_to(list(scripts))
    return seconds, cpu, users * STEPS_PER_USER, replies


# --- (c) Shouwang's own work, without the Bot API ---------------------------------------------


def incoming(user_id: int, step: Step) -> Incoming:
    """The neutral input the Telegram adapter makes of `step`."""
    base = Incoming("telegram", str(user_id), str(user_id), f"居民{user_id}")
    if step.location is not None:
        return replace(base, location=Location(*step.location))
    if step.data is not None:
        return replace(base, action=step.data)
    assert step.text is not None
    if step.text.startswith("/"):
        return replace(base, command=step.text[1:])
    return replace(base, text=step.text)


async def engine_rate(users: int) -> tuple[float, int]:
    """The same steps handed straight to the engine and their replies rendered: the database,
    the conversations and the translations, without any Bot API call or update parsing."""
    async with shouwang_runtime() as (runtime, _clock):
        scripts = [[incoming(SHOUWANG_USERS + n, step) for step in shouwang_script(n)] for n in range(users)]
        translator = runtime.translator
        started = time.perf_counter()
        for wave in range(STEPS_PER_USER):
            for script in scripts:
                response = await runtime.engine.handle(script[wave])
                for reply in response.replies:
                    translator.render(response.language, reply, lambda payload: payload)
        seconds = time.perf_counter() - started
        filed = await reports_filed(runtime, users)
    assert filed == users, f"{filed} reports filed by {users} users"
    return seconds, users * STEPS_PER_USER


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--users", type=int, help=f"simulated users, {STEPS_PER_USER} updates each")
    size.add_argument("--updates", type=int, help="total updates per bot (rounded to whole users)")
    parser.add_argument("--rounds", type=int, default=3, help="turns each bot takes, alternating")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="add this delay to every API call")
    parser.add_argument(
        "--in-process", action="store_true", help="run the fake Bot API on the bots' own event loop"
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of the Shouwang run here")
    parser.add_argument("--postgres-url", help="run Shouwang on this PostgreSQL database (emptied first)")
    args = parser.parse_args()
    global POSTGRES_URL
    POSTGRES_URL = args.postgres_url
    users = args.users or (max(1, round(args.updates / STEPS_PER_USER)) if args.updates else 120)
    logging.basicConfig(level=logging.ERROR)

    latency = args.latency_ms / 1000
    server: Server = LocalServer(latency) if args.in_process else ChildServer(latency)
    where = "on the bots' own event loop" if args.in_process else "in a process of its own"
    print(f"fake Bot API: {where}")
    echo_rates: list[float] = []
    full_rates: list[float] = []
    engine_rates: list[float] = []
    calls_per_update: list[float] = []
    echo_cpu_ms: list[float] = []
    full_cpu_ms: list[float] = []
    urls = await server.start()
    try:
        for turn in range(1, args.rounds + 1):
            echo_seconds, echo_cpu, updates = await echo_rate(server, urls, users)
            echo_rates.append(updates / echo_seconds)
            echo_cpu_ms.append(1000 * echo_cpu / updates)
            print(
                f"round {turn} (a) echo bot: {updates} updates in {echo_seconds:.2f} s "
                f"= {echo_rates[-1]:.1f} updates/s"
            )
            await server.clear()
            profile = args.profile if turn == 1 else None
            full_seconds, full_cpu, updates, replies = await shouwang_rate(server, urls, users, profile)
            full_rates.append(updates / full_seconds)
            full_cpu_ms.append(1000 * full_cpu / updates)
            calls_per_update.append(await server.api_calls() / updates)
            print(
                f"round {turn} (b) Shouwang: {updates} updates in {full_seconds:.2f} s "
                f"= {full_rates[-1]:.1f} updates/s ({replies} replies; outbox: "
                f"{await server.sent_to([GROUP])} police-group cards, "
                f"{await server.sent_to(list(WORKERS.values()))} grid-worker notices)"
            )
            await server.clear()
            engine_seconds, updates = await engine_rate(users)
            engine_rates.append(updates / engine_seconds)
            print(f"round {turn} (c) Shouwang's engine alone: {engine_rates[-1]:.1f} updates/s")
    finally:
        await server.stop()
    echo_ups, full_ups = statistics.median(echo_rates), statistics.median(full_rates)
    engine_ms = 1000 / statistics.median(engine_rates)
    calls = statistics.median(calls_per_update)
    print(f"Shouwang's own work: {engine_ms:.2f} ms per update; Bot API calls per update: {calls:.2f}")
    echo_cpu, full_cpu = statistics.median(echo_cpu_ms), statistics.median(full_cpu_ms)
    # The next target is on this figure: CPU per update at most twice the echo bot's.
    print(
        f"CPU per update: Shouwang {full_cpu:.2f} ms, echo bot {echo_cpu:.2f} ms "
        f"(cpu_ratio={full_cpu / echo_cpu:.2f})"
    )
    # Only when the bots and the fake share one core, with no latency, does the time of (b) add up
    # like this; with the fake apart, Shouwang's work overlaps the fake's answering.
    if args.in_process and not args.latency_ms:
        # Each round's (a), (b) and (c) ran within seconds of each other: pair them before the median.
        floors = [
            1 / (1 / full - 1 / engine) / echo
            for echo, full, engine in zip(echo_rates, full_rates, engine_rates, strict=True)
        ]
        print(
            f"with its own work free, (b) would reach a ratio of {statistics.median(floors):.2f} "
            f"(rounds: {', '.join(f'{floor:.2f}' for floor in floors)}); the rest of the gap is "
            "Bot API traffic"
        )
    print(f"ratio={full_ups / echo_ups:.2f} full_ups={full_ups:.1f} echo_ups={echo_ups:.1f}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
