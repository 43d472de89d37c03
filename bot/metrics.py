"""What /metrics reports (Prometheus's text format), and what the channels saw of their platforms.

One `Metrics` per runtime, each with a registry of its own (not prometheus_client's global one), so
two runtimes in one process (the tests) never count into each other. The adapters, the engine's
schedule hook and the web app are handed what they record into; handlers/ knows nothing of it.

The outbox backlog is not kept up to date by the delivery worker: the /metrics handler counts it
with one read-only query just before the text is generated (`set_backlog`). It is then exact at
every scrape whatever the worker is doing (stopped, stuck, or in another process), the query runs
in the reader's connection (aiosqlite's thread, or asyncpg) so the loop is never held, and it reads
only pending rows through the (state, next_attempt_at) index, so it stays cheap as history grows.
prometheus_client's collectors are synchronous and could not await that query themselves.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Backlog", "Metrics", "PlatformMonitor"]

# Seconds from an update's hand-over to the engine to its answer being ready.
UPDATE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Schedules are looked for every `scheduler_tick_seconds` (15 s by default): lateness up to a tick
# is normal; much more means the scheduler is stuck or the bot was down.
LAG_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)


@dataclass(frozen=True)
class Backlog:
    """Pending outbox rows of one channel and kind in one state (due, retrying, scheduled)."""

    channel: str
    kind: str
    state: str
    count: int


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        # The process's own figures (memory, CPU, open files) and the Python version.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        self.updates = Counter(
            "shouwang_updates",
            "Updates (messages, commands, button presses) handled, by channel and outcome "
            "(ok, or error: the engine failed and answered with its apology).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.update_seconds = Histogram(
            "shouwang_update_seconds",
            "Time the engine took to handle one update, its transaction included.",
            ["channel"],
            buckets=UPDATE_BUCKETS,
            registry=registry,
        )
        self.backlog = Gauge(
            "shouwang_outbox_backlog",
            "Outbox rows not delivered yet, by channel, kind and state: due (to go now), "
            "retrying (failed at least once), scheduled (held for later, e.g. quiet hours).",
            ["channel", "kind", "state"],
            registry=registry,
        )
        self.database_up = Gauge(
            "shouwang_database_up",
            "1 if the database answered this scrape's outbox query, else 0 (the backlog is then absent).",
            registry=registry,
        )
        self.rate_limited = Counter(
            "shouwang_platform_rate_limited",
            "Calls a platform refused for its rate limits (Telegram 429, WeChat Work 45009).",
            ["channel"],
            registry=registry,
        )
        self.platform_errors = Counter(
            "shouwang_platform_errors",
            "Other failed platform calls, by channel and status: the HTTP status, 'timeout', "
            "'network', or WeChat Work's 'errcode:N'.",
            ["channel", "status"],
            registry=registry,
        )
        self.schedule_lag = Histogram(
            "shouwang_schedule_lag_seconds",
            "How late a schedule (reminder, escalation, notice, digest) fired after its due time.",
            ["kind"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self._monitors: dict[str, PlatformMonitor] = {}

    def handled(self, channel: str, ok: bool, seconds: float) -> None:
        self.updates.labels(channel, "ok" if ok else "error").inc()
        self.update_seconds.labels(channel).observe(seconds)

    def schedule_fired(self, kind: str, late: timedelta) -> None:
        self.schedule_lag.labels(kind).observe(max(0.0, late.total_seconds()))

    def platform(self, channel: str) -> PlatformMonitor:
        """The monitor a channel's adapter reports its platform's answers to (one per channel)."""
        if channel not in self._monitors:
            self._monitors[channel] = PlatformMonitor(channel, self)
        return self._monitors[channel]

    def monitor_of(self, channel: str) -> PlatformMonitor | None:
        return self._monitors.get(channel)

    def set_backlog(self, rows: Iterable[Backlog] | None) -> None:
        """This scrape's backlog; None when the database did not answer."""
        self.backlog.clear()
        if rows is None:
            self.database_up.set(0)
            return
        self.database_up.set(1)
        for row in rows:
            self.backlog.labels(row.channel, row.kind, row.state).set(row.count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class PlatformMonitor:
    """What one channel's platform answered at each call: counted for /metrics, and whether it
    was reachable at the last contact, for /readyz."""

    def __init__(self, channel: str, metrics: Metrics) -> None:
        self.channel = channel
        self._metrics = metrics
        # None until the first contact; then whether the platform served that call.
        self.reachable: bool | None = None
        self.problem = "no contact yet"
        self.last_contact: float | None = None

    def answered(self, status: int) -> None:
        """An HTTP answer. 5xx (the platform is down) and 401 (the token no longer works) leave it
        unusable; any other answer, a refusal included, shows it serves us."""
        if status == 429:
            self._metrics.rate_limited.labels(self.channel).inc()
        elif status >= 400:
            self._metrics.platform_errors.labels(self.channel, str(status)).inc()
        if status >= 500 or status == 401:
            self._contact(False, f"HTTP {status}")
        else:
            self._contact(True)

    def refused(self, errcode: int, *, rate_limited: bool = False, usable: bool = True) -> None:
        """An API-level error in an HTTP 200 answer (WeChat Work's errcode)."""
        if rate_limited:
            self._metrics.rate_limited.labels(self.channel).inc()
        else:
            self._metrics.platform_errors.labels(self.channel, f"errcode:{errcode}").inc()
        self._contact(usable, f"refused with errcode {errcode}")

    def unreachable(self, status: str) -> None:
        """No answer: 'timeout' or 'network'."""
        self._metrics.platform_errors.labels(self.channel, status).inc()
        self._contact(False, status)

    def _contact(self, ok: bool, problem: str = "") -> None:
        self.reachable = ok
        self.problem = "" if ok else problem
        self.last_contact = time.monotonic()

    def state(self) -> str:
        """'ok', or what is wrong, for /readyz."""
        if self.reachable:
            return "ok"
        if self.last_contact is None:
            return self.problem
        ago = time.monotonic() - self.last_contact
        return f"{self.problem} at the last contact, {ago:.0f} s ago"
