"""Police broadcasts (警情通报): publishing, listing recipients, delivery reports, acknowledgements.

A broadcast is stored first; its recipients are listed exactly once (now, or
when its schedule falls due), each with an outbox row in the same transaction,
so a crash either lists everyone or no one and the delivery worker sends each
copy once. Copies are rendered from the broadcast when sent, so a cancelled
broadcast sends nothing more.

Who receives what:
- community: every onboarded person with a private chat with the bot, plus the
  resident groups and every grid's groups;
- grids: people whose grid is listed, plus those grids' groups;
- volunteers: volunteers and grid workers (who organise them), no groups;
- groups: the resident groups and every grid's groups, nobody privately.
The police groups are never recipients, nor is the author (they get the report).
People who blocked the bot are skipped; people who muted the kind are skipped
unless the broadcast is urgent; information notices to people in their quiet
hours wait until the quiet hours end.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from handlers import notify
from handlers.accounts import rules as accounts
from handlers.clock import Clock
from handlers.community import Community
from handlers.errors import DomainError, PermissionDenied
from handlers.registry import Lane
from handlers.registry import priority as outbox_priority
from storage.models import (
    AckShare,
    Broadcast,
    BroadcastCandidate,
    BroadcastFigures,
    OutboxMessage,
    Schedule,
    User,
)
from storage.repositories import Repos
from storage.schema import BROADCAST_KINDS, PRIORITIES

KINDS = BROADCAST_KINDS
INFO, IMPORTANT, URGENT = PRIORITIES
AUDIENCES = ("community", "grids", "volunteers", "groups")
VOLUNTEER_ROLES = (accounts.VOLUNTEER, accounts.GRID_WORKER)
MAX_TEXT_CHARS = 1000
# How far ahead a broadcast may be scheduled: further is more likely a mistyped year than a plan.
MAX_AHEAD = timedelta(days=90)
# /alerts lists what was sent or planned this recently.
RECENT = timedelta(days=7)

# Schedule kinds: a scheduled broadcast falling due; the one reminder to acknowledge an urgent alert;
# refreshing the author's delivery report (at most once per scheduler tick, however many copies settle).
SCHEDULE_SEND = "broadcast"
SCHEDULE_ACK = "broadcast_ack"
SCHEDULE_REPORT = "broadcast_report"
# How often the author's report is refreshed while copies are on their way.
REPORT_EVERY = timedelta(seconds=15)

# Outbox kinds of this feature (rendered when sent, by copies.py and report.py).
COPY = "broadcast"
SUMMARY = "summary"
SUMMARY_EDIT = "summary_edit"

QUIET_PRESETS = {"2200-0700": ("22:00", "07:00"), "2300-0600": ("23:00", "06:00")}
_QUIET_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*(?:-|~|to|至|到)\s*(\d{1,2}):(\d{2})\s*$")
_DATE_TIME_RE = re.compile(r"^(?:(?:(\d{4})[-/.])?(\d{1,2})[-/.](\d{1,2})\s+)?(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Reach:
    """Who a broadcast would reach now: people and group chats, and people it skips."""

    people: int
    groups: int
    # In the audience but opted out of this kind (reached anyway when urgent).
    muted: int
    # Would receive an information notice only when their quiet hours end.
    held: int


# --- publishing ----------------------------------------------------------------------


def check_author(author: User) -> None:
    if author.role not in accounts.COMMANDERS:
        raise PermissionDenied()


def check_audience(community: Community, audience: dict[str, Any]) -> dict[str, Any]:
    """The audience in its stored form; DomainError if it names no one we know."""
    kind = audience.get("type")
    if kind not in AUDIENCES:
        raise DomainError("broadcast.bad_audience")
    if kind != "grids":
        return {"type": kind, "grids": []}
    grids = [str(key) for key in audience.get("grids") or []]
    if not grids:
        raise DomainError("broadcast.no_grids_chosen")
    unknown = [key for key in grids if community.grid(key) is None]
    if unknown:
        raise DomainError("broadcast.unknown_grid", grid=unknown[0][:64])
    # Keep the community file's order, so previews and reports list grids the same way every time.
    return {"type": kind, "grids": [g.key for g in community.grids if g.key in grids]}


async def publish(
    repos: Repos,
    community: Community,
    author: User,
    *,
    kind: str,
    priority: str,
    text: str,
    audience: dict[str, Any],
    now: datetime,
    photo_id: int | None = None,
    at: datetime | None = None,
    notice_id: int | None = None,
) -> int:
    """Store a broadcast and send it now, or at `at` when that is still ahead; returns its id.

    Sending means listing the recipients and writing their outbox rows in this
    transaction; a scheduled one does that when its schedule fires.
    """
    check_author(author)
    if kind not in KINDS:
        raise DomainError("broadcast.bad_kind")
    if priority not in PRIORITIES:
        raise DomainError("broadcast.bad_priority")
    text = text.strip()
    if not text:
        raise DomainError("broadcast.text_empty")
    if len(text) > MAX_TEXT_CHARS:
        raise DomainError("broadcast.text_too_long", max=MAX_TEXT_CHARS, length=len(text))
    audience = check_audience(community, audience)
    later = at is not None and at > now
    broadcast_id = await repos.broadcasts.create(
        author_id=author.id,
        kind=kind,
        priority=priority,
        text=text,
        photo_id=photo_id,
        audience=audience,
        state="scheduled" if later else "sending",
        scheduled_at=at if later else None,
        notice_id=notice_id,
        now=now,
    )
    if later:
        assert at is not None
        await repos.schedules.arm(SCHEDULE_SEND, str(broadcast_id), at)
    else:
        await send(repos, community, broadcast_id, now)
    return broadcast_id


def _wants(candidate: BroadcastCandidate, kind: str, priority: str) -> bool:
    return priority == URGENT or kind not in candidate.muted_kinds


async def _people(
    repos: Repos, audience: dict[str, Any], exclude_user_id: int | None
) -> list[BroadcastCandidate]:
    if audience["type"] == "groups":
        return []
    roles = VOLUNTEER_ROLES if audience["type"] == "volunteers" else None
    found = await repos.broadcasts.candidates(audience["type"], audience.get("grids") or [], roles)
    return [c for c in found if c.user_id != exclude_user_id]


def group_chats(community: Community, audience: dict[str, Any]) -> list[tuple[str, str]]:
    """(channel, chat id) of the group chats an audience includes, each once."""
    if audience["type"] == "volunteers":
        return []
    if audience["type"] == "grids":
        grids = [g for g in community.grids if g.key in audience["grids"]]
        chats = [chat for grid in grids for chat in notify.group_chats(grid.groups)]
    else:
        chats = notify.resident_chats(community)
        chats += [chat for grid in community.grids for chat in notify.group_chats(grid.groups)]
    police = set(notify.police_chats(community))
    return [chat for chat in dict.fromkeys(chats) if chat not in police]


async def reach(
    repos: Repos,
    community: Community,
    audience: dict[str, Any],
    kind: str,
    priority: str,
    now: datetime,
    exclude_user_id: int | None = None,
) -> Reach:
    """What a broadcast would do if sent now (the /alert preview)."""
    audience = check_audience(community, audience)
    people = await _people(repos, audience, exclude_user_id)
    reached = [c for c in people if _wants(c, kind, priority)]
    held = sum(1 for c in reached if priority == INFO and quiet_until(c, community.tz, now) is not None)
    return Reach(
        people=len(reached),
        groups=len(group_chats(community, audience)),
        muted=sum(1 for c in people if kind in c.muted_kinds),
        held=held,
    )


async def audience_size(
    repos: Repos,
    community: Community,
    audience: dict[str, Any],
    kind: str,
    priority: str,
    exclude_user_id: int | None = None,
) -> tuple[int, int]:
    """(people, group chats) a broadcast of this kind and priority would reach now."""
    audience = check_audience(community, audience)
    people = await _people(repos, audience, exclude_user_id)
    return (
        sum(1 for c in people if _wants(c, kind, priority)),
        len(group_chats(community, audience)),
    )


def _local_time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(candidate: BroadcastCandidate, tz: tzinfo, now: datetime) -> datetime | None:
    """When the person's quiet hours end, if they are in them now (local wall-clock times)."""
    if not candidate.quiet_from or not candidate.quiet_until:
        return None
    start, end = _local_time(candidate.quiet_from), _local_time(candidate.quiet_until)
    local = now.astimezone(tz)
    clock = local.time().replace(second=0, microsecond=0)
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    until = datetime.combine(local.date(), end, tzinfo=tz)
    if until <= local:
        until += timedelta(days=1)
    return until.astimezone(now.tzinfo)


async def send(repos: Repos, community: Community, broadcast_id: int, now: datetime) -> bool:
    """List the recipients and queue their copies and the author's report; once per broadcast."""
    if not await repos.broadcasts.start_sending(broadcast_id, now):
        return False
    broadcast = await repos.broadcasts.get(broadcast_id)
    assert broadcast is not None
    author = await repos.users.get(broadcast.author_id)
    # The report first, so the author's chat shows it before any copy the author might also get.
    if author is not None:
        await _to_author(repos, community, author, SUMMARY, broadcast_id, now)
    copies: list[dict[str, Any]] = []
    for person in await _people(repos, broadcast.audience, broadcast.author_id):
        if not _wants(person, broadcast.kind, broadcast.priority):
            continue
        held = quiet_until(person, community.tz, now) if broadcast.priority == INFO else None
        copies.append(
            {
                "user_id": person.user_id,
                "channel": person.channel,
                "chat_id": person.chat_id,
                "language": person.language or community.default_language,
                "grid_key": person.grid_key,
                "building": person.building,
                "next_attempt_at": held or now,
                "priority": copy_priority(broadcast, group=False),
            }
        )
    taken = {(c["channel"], c["chat_id"]) for c in copies}
    for channel, chat_id in group_chats(community, broadcast.audience):
        if (channel, chat_id) in taken:
            continue
        copies.append(
            {
                "user_id": None,
                "channel": channel,
                "chat_id": chat_id,
                "language": community.default_language,
                "grid_key": None,
                "building": None,
                "next_attempt_at": now,
                "priority": copy_priority(broadcast, group=True),
            }
        )
    written = await repos.broadcasts.add_recipients(broadcast_id, copies, now)
    repos.outbox.enqueued += written
    if written == 0:
        await repos.broadcasts.finish(broadcast_id, now)
    else:
        await repos.schedules.arm(SCHEDULE_REPORT, str(broadcast_id), now + REPORT_EVERY)
    if broadcast.priority == URGENT and any(c["user_id"] is not None for c in copies):
        due = now + timedelta(minutes=community.broadcasts.ack_reminder_minutes)
        await repos.schedules.arm(SCHEDULE_ACK, str(broadcast_id), due)
    return True


def copy_priority(broadcast: Broadcast, *, group: bool) -> int:
    """Urgent alerts' copies go in the urgent lane, the rest in bulk; group chats first in each."""
    lane = Lane.URGENT if broadcast.priority == URGENT else Lane.BULK
    return outbox_priority(lane, group=group)


async def _to_author(
    repos: Repos, community: Community, author: User, kind: str, broadcast_id: int, now: datetime
) -> bool:
    for identity in await repos.users.identities(author.id):
        if identity.chat_id:
            await repos.outbox.enqueue(
                identity.channel,
                identity.chat_id,
                author.language or community.default_language,
                kind,
                {"broadcast_id": broadcast_id},
                now,
            )
            return True
    return False


# --- what happens later ----------------------------------------------------------------


async def fire_send(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    """A scheduled broadcast is due (also when the bot was down at the time: it goes out now)."""
    await send(repos, community, int(schedule.ref), clock.now())


async def fire_ack_reminder(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    """Remind, once, everyone who received an urgent alert and has not pressed 收到."""
    broadcast = await repos.broadcasts.get(int(schedule.ref))
    if broadcast is None or broadcast.state == "cancelled":
        return
    now = clock.now()
    reminded = await repos.broadcasts.claim_reminders(broadcast.id, now)
    for _user_id, channel, chat_id, language in reminded:
        await repos.outbox.enqueue(
            channel,
            chat_id,
            language or community.default_language,
            COPY,
            {"broadcast_id": broadcast.id, "reminder": True},
            now,
            priority=copy_priority(broadcast, group=False),
        )


async def fire_report(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    """Refresh the author's delivery report; the first refresh after the last copy settled is final.

    While copies are still on their way the refresh comes back every REPORT_EVERY, or when the
    next waiting copy is due (copies held over quiet hours, retries after a platform error):
    the report stays live without one edit per copy, and a copy settling while this runs is
    counted by the next refresh.
    """
    broadcast = await repos.broadcasts.get(int(schedule.ref))
    if broadcast is None:
        return
    now = clock.now()
    if broadcast.state == "sending":
        next_due = await repos.broadcasts.next_pending_at(broadcast.id)
        if next_due is None:
            await repos.broadcasts.finish(broadcast.id, now)
        else:
            await repos.schedules.arm(SCHEDULE_REPORT, schedule.ref, max(next_due, now) + REPORT_EVERY)
    author = await repos.users.get(broadcast.author_id)
    if author is not None:
        await _to_author(repos, community, author, SUMMARY_EDIT, broadcast.id, now)


async def refresh_report_soon(repos: Repos, broadcast_id: int, now: datetime) -> None:
    """Refresh the author's report at the next tick (an acknowledgement, a cancellation)."""
    existing = await repos.schedules.get(SCHEDULE_REPORT, str(broadcast_id))
    if existing is None or existing.state != "pending" or existing.due_at > now + REPORT_EVERY:
        await repos.schedules.arm(SCHEDULE_REPORT, str(broadcast_id), now)


async def summary_settled(
    repos: Repos, community: Community, row: OutboxMessage, state: str, ref: str | None, now: datetime
) -> None:
    # A report that could not be edited is posted afresh; later edits change the newest one.
    if state == "sent" and ref is not None:
        await repos.broadcasts.set_summary(int(row.payload["broadcast_id"]), row.channel, row.chat_id, ref)


# --- acting on broadcasts ----------------------------------------------------------------


class NotCancellable(Exception):
    """The broadcast was sent or cancelled already (the flow explains it in words, with its state)."""

    def __init__(self, broadcast: Broadcast) -> None:
        super().__init__(f"broadcast {broadcast.id} is {broadcast.state}")
        self.broadcast = broadcast


@dataclass(frozen=True)
class Listed:
    broadcast: Broadcast
    figures: BroadcastFigures


@dataclass(frozen=True)
class Recent:
    """What /alerts shows: this week's broadcasts, newest first, and how many opted out of each kind."""

    broadcasts: list[Listed]
    opt_outs: dict[str, int]


async def recent(repos: Repos, user: User, now: datetime) -> Recent:
    check_author(user)
    found = await repos.broadcasts.recent(None, now - RECENT)
    opt_outs = await repos.broadcasts.opt_outs()
    return Recent([Listed(b, await repos.broadcasts.figures(b.id)) for b in found], opt_outs)


async def visible(repos: Repos, user: User, broadcast_id: int) -> Broadcast:
    """A broadcast police may look at or cancel; police and admins see every broadcast."""
    check_author(user)
    broadcast = await repos.broadcasts.get(broadcast_id)
    if broadcast is None:
        raise DomainError("broadcast.not_found")
    return broadcast


async def cancel(repos: Repos, user: User, broadcast_id: int, now: datetime) -> tuple[Broadcast, int]:
    """Stop a scheduled broadcast, or what is still unsent of one being sent; (it, copies stopped)."""
    broadcast = await visible(repos, user, broadcast_id)
    stopped = await repos.broadcasts.cancel(broadcast.id, now)
    if stopped is None:
        raise NotCancellable(broadcast)
    await repos.schedules.cancel(SCHEDULE_SEND, str(broadcast.id))
    await repos.schedules.cancel(SCHEDULE_ACK, str(broadcast.id))
    if broadcast.state == "sending":
        await refresh_report_soon(repos, broadcast.id, now)
    return broadcast, stopped


async def acknowledge(repos: Repos, user: User, broadcast_id: int, now: datetime) -> bool:
    """The person pressed 收到: recorded once; False if it was recorded before."""
    broadcast = await repos.broadcasts.get(broadcast_id)
    if broadcast is None or not await repos.broadcasts.is_recipient(broadcast_id, user.id):
        raise DomainError("broadcast.not_yours")
    if not await repos.broadcasts.acknowledge(broadcast_id, user.id, now):
        return False
    await refresh_report_soon(repos, broadcast_id, now)
    return True


# --- subscriptions ------------------------------------------------------------------------


def parse_quiet_hours(text: str) -> tuple[str, str] | None:
    """("22:30", "06:30") from "22:30-06:30" (also ~, 至, full-width digits); None if unreadable."""
    match = _QUIET_RE.match(unicodedata.normalize("NFKC", text).replace("–", "-").replace("—", "-"))
    if match is None:
        return None
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
        return None
    return f"{h1:02d}:{m1:02d}", f"{h2:02d}:{m2:02d}"


async def set_muted(repos: Repos, user: User, kind: str, muted: bool, now: datetime) -> list[str]:
    if kind not in KINDS:
        raise DomainError("broadcast.bad_kind")
    current = await repos.broadcasts.subscription(user.id)
    kinds = set(current.muted_kinds if current else [])
    if muted:
        kinds.add(kind)
    else:
        kinds.discard(kind)
    await repos.broadcasts.save_subscription(
        user.id,
        sorted(kinds),
        current.quiet_from if current else None,
        current.quiet_until if current else None,
        now,
    )
    return sorted(kinds)


async def set_quiet_hours(
    repos: Repos, user: User, quiet_from: str | None, quiet_until: str | None, now: datetime
) -> None:
    current = await repos.broadcasts.subscription(user.id)
    await repos.broadcasts.save_subscription(
        user.id, current.muted_kinds if current else [], quiet_from, quiet_until, now
    )


# --- what the dialogue reads --------------------------------------------------------------


def parse_when(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    """A typed local date-time: "2026-11-28 19:00", "11-28 19:00" (this year) or "19:00" (today)."""
    cleaned = unicodedata.normalize("NFKC", text).strip().replace("：", ":")
    cleaned = re.sub(r"\s+", " ", cleaned)
    match = _DATE_TIME_RE.match(cleaned)
    if match is None:
        return None
    year, month, day, hour, minute = match.groups()
    local_now = now.astimezone(tz)
    try:
        return datetime(
            int(year) if year else local_now.year,
            int(month) if month else local_now.month,
            int(day) if day else local_now.day,
            int(hour),
            int(minute),
            tzinfo=tz,
        )
    except ValueError:
        return None


# --- what is sent -------------------------------------------------------------------------


async def copy_to_send(repos: Repos, row: OutboxMessage) -> Broadcast:
    """The broadcast a queued copy carries; LookupError if it is gone or cancelled."""
    broadcast = await repos.broadcasts.get_for_copies(int(row.payload["broadcast_id"]))
    if broadcast is None:
        raise LookupError(f"no broadcast {row.payload['broadcast_id']}")
    # Cancelling gives up the copies still queued; one already in hand is not sent either.
    if broadcast.state == "cancelled":
        raise LookupError("broadcast cancelled")
    return broadcast


async def reminder_to_send(repos: Repos, row: OutboxMessage) -> Broadcast:
    """The urgent alert a queued reminder is about; LookupError if there is nothing to remind of."""
    broadcast = await repos.broadcasts.get(int(row.payload["broadcast_id"]))
    if broadcast is None or broadcast.state == "cancelled":
        raise LookupError("broadcast cancelled")
    recipient = await repos.broadcasts.recipient_of_chat(broadcast.id, row.channel, row.chat_id)
    if recipient is not None and recipient[2] is not None:
        raise LookupError("acknowledged before the reminder went out")
    return broadcast


@dataclass(frozen=True)
class DeliveryReport:
    """Where a broadcast's delivery stands, with acknowledgements of an urgent alert by grid and building."""

    broadcast: Broadcast
    figures: BroadcastFigures
    grids: list[AckShare] = field(default_factory=list)
    buildings: list[AckShare] = field(default_factory=list)


async def delivery_report(repos: Repos, broadcast: Broadcast, *, buildings: bool) -> DeliveryReport:
    figures = await repos.broadcasts.figures(broadcast.id)
    if broadcast.priority != URGENT or broadcast.state == "scheduled":
        return DeliveryReport(broadcast, figures)
    return DeliveryReport(
        broadcast,
        figures,
        await repos.broadcasts.acks_by(broadcast.id, "grid_key"),
        await repos.broadcasts.acks_by(broadcast.id, "building") if buildings else [],
    )


@dataclass(frozen=True)
class Summary:
    report: DeliveryReport
    # The author's earlier report to edit, when this row is an edit and that report is in this chat.
    edit_ref: str | None


async def summary_to_send(repos: Repos, row: OutboxMessage) -> Summary:
    """The author's delivery report a queued row carries; LookupError if the broadcast is gone."""
    broadcast = await repos.broadcasts.get(int(row.payload["broadcast_id"]))
    if broadcast is None:
        raise LookupError("broadcast gone")
    report = await delivery_report(repos, broadcast, buildings=False)
    edit_ref = None
    if (
        row.kind == SUMMARY_EDIT
        and broadcast.summary_channel == row.channel
        and broadcast.summary_chat_id == row.chat_id
    ):
        edit_ref = broadcast.summary_ref
    return Summary(report, edit_ref)
