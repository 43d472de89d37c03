"""How fast the WeChat Work callback answers: accepted callbacks/s, and p50/p99 at 500/s.

    python bench/wecom_callback.py [--max-count N] [--rate R] [--seconds S] [--senders C]
                                   [--client httpx|raw] [--drain] [--profile FILE]

The bot runs as deployed, in a process of its own (so on one core): uvicorn on
127.0.0.1 serving the bot's web app, the real WeComChannel, a fresh SQLite file
in a temporary directory. By default the inbox worker is NOT running during the
measurement: the figures are the callback path alone (read, verify, decrypt,
parse, commit the inbox row, answer 200). With --drain the worker runs
alongside and feeds every stored message to the engine, as in production
(its replies stay in the outbox: no delivery worker, no API).

This process is the load generator: every callback is pre-built and encrypted
with tests/fakes/wecom_crypto.py (distinct MsgIds) and turned into a request
up front, then sent by C concurrent senders, each an httpx.AsyncClient with
one keep-alive connection (one client with a pool of C connections spends its
time in the pool's bookkeeping and tops out first). httpx still costs about
1 ms of CPU per request here, a core's half at 500/s; `--client raw` writes
the same requests by hand on the same C connections, to leave the bot more of
the machine.

(a) max rate: all of the first batch as fast as the senders go;
(b) latency: an open-loop schedule of R callbacks/s for S seconds. Callback i
    is due at start + i/R; a free sender sends it at that moment (or late, if
    all are busy). "answer" is measured from the moment it was due, so a
    backlog counts against the bot; "from send" is the time on the wire.

Every answer must be 200 and the inbox must hold exactly one row per distinct
callback at the end. The machine has 2 cores: the bot and this generator share
them (and anything else running meanwhile), so the bot's own CPU time per
callback is reported too, read from /proc: it does not depend on who else ran.
The last line reads `p99_ms=<answer p99 at R/s> rate=<max callbacks/s>`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

# httpcore 1.0 runs `import sniffio` for every request; anyio 4.16 no longer installs
# sniffio, and a failed import is not cached, so without it each request searches
# sys.path (~1 ms of CPU here). None in sys.modules makes that import fail at once.
try:
    import sniffio  # noqa: F401
except ImportError:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fakes when run as a script

from tests.fakes import wecom_crypto as wc  # noqa: E402

TOKEN = "BenchCallbackToken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP_ID = "wwbench000000000001"
AGENT_ID = 1000002
WARMUP = 300
USERS = 500


# --- the bot (child process) -------------------------------------------------------


def _quiet_server(config: Any) -> Any:
    """A uvicorn.Server that leaves SIGTERM to us: it would re-raise it after shutting down."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config)


async def serve(port: int, database: Path, drain: bool, window_ms: float | None) -> None:
    import uvicorn

    from bot.app import build_runtime, web_app, wecom_channel
    from bot.channels.wecom import callback as callback_module
    from bot.channels.wecom.api import WeComConfig
    from bot.community_file import load_community
    from bot.settings import EXAMPLE_COMMUNITY_FILE, Settings

    settings = Settings(database_url=f"sqlite:///{database}", media_dir=database.parent / "media")
    runtime = await build_runtime(settings, community=load_community(EXAMPLE_COMMUNITY_FILE))
    config = WeComConfig(CORP_ID, AGENT_ID, "secret", TOKEN, AES_KEY, api_url="http://127.0.0.1:9")
    if window_ms is not None:
        callback_module.GROUP_COMMIT_WINDOW_SECONDS = window_ms / 1000
    async with httpx.AsyncClient(timeout=1) as client:
        wecom = wecom_channel(runtime, config, client)
        runtime.add_channel(wecom)
        server = _quiet_server(
            uvicorn.Config(
                web_app(runtime, wecom),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                access_log=False,
                lifespan="off",
                backlog=4096,
            )
        )
        worker = asyncio.create_task(wecom.run()) if drain else None
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGTERM, lambda: setattr(server, "should_exit", True)
        )
        await server.serve()
        if worker is not None:
            wecom.stop()
            await worker
    await runtime.close()


def serve_main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR)
    if args.profile:
        profiler = cProfile.Profile()
        # uvicorn turns SIGTERM into a clean exit, so the profile gets written.
        profiler.runcall(asyncio.run, serve(args.port, Path(args.database), args.drain, args.commit_window))
        profiler.dump_stats(args.profile)
    else:
        asyncio.run(serve(args.port, Path(args.database), args.drain, args.commit_window))


# --- the load generator ----------------------------------------------------------------


Prepared = tuple[dict[str, str], bytes]


def build_callbacks(first_id: int, count: int) -> list[Prepared]:
    out = []
    for n in range(first_id, first_id + count):
        user = f"resident{n % USERS:04d}"
        xml = wc.text_message(CORP_ID, user, f"3号楼楼道堆满杂物，第{n}条", 6_000_000_000 + n)
        query, body = wc.build_callback(TOKEN, AES_KEY, CORP_ID, xml)
        out.append((query, body.encode()))
    return out


class HttpxSender:
    """One httpx.AsyncClient with one keep-alive connection; requests built before the clock starts."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url + "/wecom/callback"
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.client = httpx.AsyncClient(limits=limits, timeout=30)

    def prepare(self, prepared: list[Prepared]) -> list[Any]:
        return [httpx.Request("POST", self.url, params=query, content=body) for query, body in prepared]

    async def send(self, request: Any) -> int:
        return (await self.client.send(request)).status_code

    async def close(self) -> None:
        await self.client.aclose()


class RawSender:
    """HTTP/1.1 written by hand on one keep-alive connection: about a tenth of httpx's CPU per request."""

    def __init__(self, base_url: str) -> None:
        self.host, port = base_url.removeprefix("http://").split(":")
        self.port = int(port)
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def prepare(self, prepared: list[Prepared]) -> list[Any]:
        return [
            f"POST /wecom/callback?{urlencode(query)} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
            for query, body in prepared
        ]

    async def send(self, request: Any) -> int:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
        return int(lines[0].split(b" ", 2)[1])

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            await self.streams[1].wait_closed()


Sender = HttpxSender | RawSender


async def max_rate(senders: list[Sender], requests: list[Any]) -> float:
    statuses: list[int] = []
    queue = iter(requests)

    async def run(sender: Sender) -> None:
        for request in queue:
            statuses.append(await sender.send(request))

    started = time.perf_counter()
    await asyncio.gather(*(run(sender) for sender in senders))
    elapsed = time.perf_counter() - started
    bad = [s for s in statuses if s != 200]
    assert not bad and len(statuses) == len(requests), f"{len(bad)} answers were not 200: {set(bad)}"
    return len(requests) / elapsed


async def fixed_rate(
    senders: list[Sender], requests: list[Any], rate: float
) -> tuple[list[float], list[float], float]:
    """Open loop: request i is due at start + i/rate. Returns answer and wire times in ms, achieved rate."""
    answer_ms: list[float] = []
    wire_ms: list[float] = []
    late_ms: list[float] = []
    statuses: list[int] = []
    queue = iter(enumerate(requests))
    start = time.perf_counter() + 0.05

    async def run(sender: Sender) -> None:
        for index, request in queue:
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.perf_counter()
            statuses.append(await sender.send(request))
            done = time.perf_counter()
            answer_ms.append((done - due) * 1000)
            wire_ms.append((done - sent) * 1000)
            late_ms.append(max(0.0, sent - due) * 1000)

    await asyncio.gather(*(run(sender) for sender in senders))
    achieved = len(requests) / (time.perf_counter() - start)
    bad = [s for s in statuses if s != 200]
    assert not bad and len(statuses) == len(requests), f"{len(bad)} answers were not 200: {set(bad)}"
    print(f"    offered {rate:.0f}/s, achieved {achieved:.0f}/s, sender lateness max {max(late_ms):.1f} ms")
    return answer_ms, wire_ms, achieved


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cpu:
    """CPU seconds used by the bot process and by this one since construction."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = (self._bot(), time.process_time())

    def _bot(self) -> float:
        # utime and stime, fields 14 and 15 of /proc/<pid>/stat, in clock ticks.
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def per(self, count: int) -> tuple[float, float]:
        """Milliseconds per item: (bot, load generator)."""
        bot = self._bot() - self.start[0]
        own = time.process_time() - self.start[1]
        return bot * 1000 / count, own * 1000 / count


async def wait_until_up(client: httpx.AsyncClient, base_url: str, child: subprocess.Popen[bytes]) -> None:
    for _ in range(400):
        assert child.poll() is None, "the bot exited during start-up"
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(base_url + "/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError("the bot did not come up")


def inbox_rows(database: Path) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(database)) as db:
        total, distinct = db.execute("SELECT count(*), count(DISTINCT dedupe_key) FROM inbox").fetchone()
    return int(total), int(distinct)


async def measure(
    args: argparse.Namespace, child: subprocess.Popen[bytes], port: int, batches: list[list[Prepared]]
) -> tuple[float, float]:
    warmup, burst, paced = batches
    base_url = f"http://127.0.0.1:{port}"
    kind = RawSender if args.client == "raw" else HttpxSender
    senders: list[Sender] = [kind(base_url) for _ in range(args.senders)]
    try:
        async with httpx.AsyncClient(timeout=5) as probe:
            await wait_until_up(probe, base_url, child)
        await max_rate(senders, senders[0].prepare(warmup))

        print(f"(a) max rate: {len(burst)} callbacks, {args.senders} concurrent senders", flush=True)
        requests = senders[0].prepare(burst)
        cpu = Cpu(child.pid)
        rate = await max_rate(senders, requests)
        bot_ms, own_ms = cpu.per(len(requests))
        print(f"    {rate:.0f} callbacks/s accepted", flush=True)
        print(f"    CPU per callback: bot {bot_ms:.2f} ms, load generator {own_ms:.2f} ms", flush=True)

        await asyncio.sleep(1)
        print(
            f"(b) latency: {args.rate:.0f}/s for {args.seconds:.0f} s, {args.senders} senders, open loop",
            flush=True,
        )
        requests = senders[0].prepare(paced)
        cpu = Cpu(child.pid)
        answer, wire, _ = await fixed_rate(senders, requests, args.rate)
        bot_ms, own_ms = cpu.per(len(requests))
        p50, p99 = percentile(answer, 50), percentile(answer, 99)
        print(
            f"    answer p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(answer):.1f} ms"
            f" (from send: p50 {percentile(wire, 50):.1f}, p99 {percentile(wire, 99):.1f};"
            f" mean {statistics.fmean(answer):.1f})",
            flush=True,
        )
        print(f"    CPU per callback: bot {bot_ms:.2f} ms, load generator {own_ms:.2f} ms", flush=True)
    finally:
        for sender in senders:
            await sender.close()
    return p99, rate


def run(args: argparse.Namespace, database: Path) -> tuple[float, float]:
    fixed_count = int(args.rate * args.seconds)
    print(f"building {WARMUP + args.max_count + fixed_count} encrypted callbacks ...", flush=True)
    started = time.perf_counter()
    batches = [
        build_callbacks(0, WARMUP),
        build_callbacks(WARMUP, args.max_count),
        build_callbacks(WARMUP + args.max_count, fixed_count),
    ]
    print(f"    {time.perf_counter() - started:.1f} s", flush=True)

    port = free_port()
    command = [sys.executable, __file__, "--serve", "--port", str(port), "--database", str(database)]
    if args.drain:
        command.append("--drain")
    if args.profile:
        command += ["--profile", args.profile]
    if args.commit_window is not None:
        command += ["--commit-window", str(args.commit_window)]
    child = subprocess.Popen(command, cwd=ROOT)
    try:
        p99, rate = asyncio.run(measure(args, child, port, batches))
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)

    expected = sum(len(batch) for batch in batches)
    total, distinct = inbox_rows(database)
    print(f"inbox: {total} rows, {distinct} distinct (expected {expected})")
    assert total == distinct == expected
    return p99, rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-count", type=int, default=10_000, help="callbacks for the max-rate run")
    parser.add_argument("--rate", type=float, default=500.0, help="offered callbacks/s in the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="httpx",
        help="httpx clients (default), or hand-written HTTP/1.1 to leave the bot more of the 2 cores",
    )
    parser.add_argument("--drain", action="store_true", help="run the inbox worker in the bot meanwhile")
    parser.add_argument("--profile", help="write a cProfile of the bot process to this file")
    parser.add_argument(
        "--commit-window",
        type=float,
        metavar="MS",
        help="experiment: override the inbox group-commit window (default: the adapter's own)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_main(args)
        return
    print(f"cores: {os.cpu_count()} (shared by the bot process and this load generator)")
    print(f"inbox worker: {'running (draining)' if args.drain else 'not running (not draining)'}")
    print(f"load generator: {args.senders} {args.client} senders, one keep-alive connection each")
    with tempfile.TemporaryDirectory(prefix="shouwang-bench-") as tmp:
        p99, rate = run(args, Path(tmp) / "shouwang.db")
    print(f"p99_ms={p99:.1f} rate={rate:.0f}")


if __name__ == "__main__":
    main()
