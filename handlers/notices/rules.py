"""Recurring notices (定期通知): when they go out, and sending them as broadcasts.

A notice is stored with a rule in the community's wall-clock time:
"daily:07:30", "weekly:1:19:00" (ISO weekday, 1 = Monday) or "monthly:1:09:00"
(day 1-28, so every month has it). One schedule row per notice (kind "notice",
ref its id) always points at the next occurrence. When it fires, the notice is
published as a broadcast if the bot is no more than the community's grace
period late (it was down, say); later than that the occurrence is skipped and
logged, so residents never get yesterday's reminder. Either way the schedule
moves on to the next occurrence after now.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from handlers.accounts.rules import COMMANDERS
from handlers.broadcasts import rules as broadcasts
from handlers.clock import Clock
from handlers.community import Community
from handlers.errors import DomainError, PermissionDenied, StaleAction
from storage.models import Notice, Schedule, User
from storage.repositories import Repos

log = logging.getLogger(__name__)

NOTICE = "notice"
DAILY = "daily"
WEEKLY = "weekly"
MONTHLY = "monthly"
FREQUENCIES = (DAILY, WEEKLY, MONTHLY)
# Every month has these days; the 29th-31st would skip months.
MONTH_DAYS = tuple(range(1, 29))
# A recurring notice is routine: information or important, never an urgent alert to acknowledge.
NOTICE_PRIORITIES = (broadcasts.INFO, broadcasts.IMPORTANT)
PREVIEW_OCCURRENCES = 3

_TIME_RE = re.compile(r"^(\d{1,2})(?:\s*[:.点點時时]\s*(\d{1,2})?\s*分?|(\d{2}))?$")


@dataclass(frozen=True)
class Rule:
    frequency: str
    # ISO weekday for weekly rules, day of the month for monthly ones, None for daily.
    day: int | None
    at: time

    def __str__(self) -> str:
        hhmm = f"{self.at.hour:02d}:{self.at.minute:02d}"
        return f"{self.frequency}:{hhmm}" if self.day is None else f"{self.frequency}:{self.day}:{hhmm}"


def parse_rule(value: str) -> Rule:
    """The stored rule; ValueError if it is not one this module writes."""
    parts = value.split(":")
    if parts[0] == DAILY and len(parts) == 3:
        day = None
    elif parts[0] in (WEEKLY, MONTHLY) and len(parts) == 4:
        day = int(parts[1])
        valid = range(1, 8) if parts[0] == WEEKLY else MONTH_DAYS
        if day not in valid:
            raise ValueError(f"bad day in rule {value!r}")
    else:
        raise ValueError(f"unknown rule {value!r}")
    return Rule(parts[0], day, time(int(parts[-2]), int(parts[-1])))


def rule_of(frequency: str, day: int | None, hhmm: str) -> Rule:
    """The rule of what was chosen in the dialogue; the day is ignored for daily notices."""
    value = f"{frequency}:{hhmm}" if frequency == DAILY else f"{frequency}:{day}:{hhmm}"
    return parse_rule(value)


def parse_time(text: str) -> time:
    """A local time typed as 19:00, 7:30, 1900, 19点, 19点30 or 19：00."""
    value = unicodedata.normalize("NFKC", text).strip().casefold()
    match = _TIME_RE.match(value)
    if match is None:
        raise DomainError("notice.bad_time")
    hour = int(match[1])
    minute = int(match[2] or match[3] or 0)
    if hour > 23 or minute > 59:
        raise DomainError("notice.bad_time")
    return time(hour, minute)


def _matches(rule: Rule, day: Any) -> bool:
    if rule.frequency == WEEKLY:
        return bool(day.isoweekday() == rule.day)
    if rule.frequency == MONTHLY:
        return bool(day.day == rule.day)
    return True


def next_after(rule: Rule, after: datetime, tz: tzinfo) -> datetime:
    """The first occurrence of `rule` (local wall-clock time in `tz`) strictly after `after`."""
    start = after.astimezone(tz).date()
    # A monthly day recurs within 31 days; two months leave room for the rest of the current day.
    for offset in range(63):
        day = start + timedelta(days=offset)
        if _matches(rule, day):
            candidate = datetime.combine(day, rule.at, tzinfo=tz).astimezone(UTC)
            if candidate > after:
                return candidate
    raise AssertionError(f"rule {rule} has no occurrence")


def occurrences(rule: Rule, after: datetime, tz: tzinfo, count: int) -> list[datetime]:
    found: list[datetime] = []
    moment = after
    for _ in range(count):
        moment = next_after(rule, moment, tz)
        found.append(moment)
    return found


# --- creating and stopping ---------------------------------------------------------------


def require_commander(user: User) -> None:
    if user.role not in COMMANDERS:
        raise PermissionDenied()


async def create(
    repos: Repos,
    community: Community,
    author: User,
    *,
    text: str,
    kind: str,
    priority: str,
    audience: dict[str, Any],
    rule: Rule,
    now: datetime,
) -> tuple[Notice, datetime]:
    """Store the notice and arm its first occurrence; (the notice, when it first goes out)."""
    require_commander(author)
    if kind not in broadcasts.KINDS or priority not in NOTICE_PRIORITIES:
        raise StaleAction()
    text = text.strip()
    if not text:
        raise DomainError("notice.text_empty")
    if len(text) > broadcasts.MAX_TEXT_CHARS:
        raise DomainError("review.text_too_long", max=broadcasts.MAX_TEXT_CHARS, length=len(text))
    audience = broadcasts.check_audience(community, audience)
    notice = await repos.notices.add_notice(author.id, kind, priority, text, audience, str(rule), now)
    first = next_after(rule, now, community.tz)
    await repos.schedules.arm(NOTICE, str(notice.id), first)
    return notice, first


async def stop(repos: Repos, user: User, notice_id: int) -> Notice:
    require_commander(user)
    notice = await repos.notices.notice(notice_id)
    if notice is None:
        raise StaleAction()
    if not await repos.notices.deactivate_notice(notice_id):
        raise DomainError("notice.already_stopped")
    await repos.schedules.cancel(NOTICE, str(notice_id))
    return notice


@dataclass(frozen=True)
class Active:
    notice: Notice
    rule: Rule
    next_at: datetime


async def active(repos: Repos, community: Community, user: User, now: datetime) -> list[Active]:
    """Running notices with when each goes out next, soonest first."""
    require_commander(user)
    found: list[Active] = []
    for notice in await repos.notices.active_notices():
        rule = parse_rule(notice.rule)
        schedule = await repos.schedules.get(NOTICE, str(notice.id))
        pending = schedule is not None and schedule.state == "pending"
        next_at = schedule.due_at if pending and schedule is not None else next_after(rule, now, community.tz)
        found.append(Active(notice, rule, next_at))
    return sorted(found, key=lambda item: (item.next_at, item.notice.id))


# --- firing ---------------------------------------------------------------------------------


async def fire(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    """Send the notice if not too late, then arm its next occurrence."""
    now = clock.now()
    notice = await repos.notices.notice(int(schedule.ref))
    if notice is None or not notice.active:
        return
    rule = parse_rule(notice.rule)
    await repos.schedules.arm(NOTICE, schedule.ref, next_after(rule, now, community.tz))
    late = now - schedule.due_at
    if late > timedelta(minutes=community.broadcasts.notice_grace_minutes):
        log.warning(
            "notice skipped",
            extra={
                "notice_id": notice.id,
                "due_at": schedule.due_at.isoformat(),
                "late_minutes": int(late.total_seconds() // 60),
            },
        )
        return
    author = await repos.users.get(notice.author_id)
    if author is None:
        log.warning("notice not sent", extra={"notice_id": notice.id, "reason": "author gone"})
        return
    try:
        # A savepoint: a refused notice leaves nothing half-written, and the re-arming above stands.
        async with repos.connection.begin_nested():
            broadcast_id = await broadcasts.publish(
                repos,
                community,
                author,
                kind=notice.kind,
                priority=notice.priority,
                text=notice.text,
                audience=notice.audience,
                now=now,
                notice_id=notice.id,
            )
    except DomainError as refused:
        # E.g. the author is no longer police, or a grid left the community file: police see it in /notices.
        log.warning("notice not sent", extra={"notice_id": notice.id, "reason": refused.key})
        return
    await repos.notices.notice_sent(notice.id, now)
    log.info("notice sent", extra={"notice_id": notice.id, "broadcast_id": broadcast_id})
