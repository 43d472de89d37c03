"""The time bank's rules (公益时间银行): what earns points, awards by hand and their corrections,
redemptions that wait for police approval, monthly honours, and the CSV exports.

Every permission is checked here, not only by which buttons are shown. Every
movement of points goes through the ledger with a source key naming the event,
so a retry, a double click or two officers at once can never count it twice.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from handlers import choices, notify
from handlers.community import Community, Reward
from handlers.errors import DomainError, PermissionDenied
from handlers.messages import Choice, Document, Lines, Localized, Reply, Text, Verbatim
from handlers.services.accounts import COMMANDERS
from storage import report_states as rs
from storage.ledger import InsufficientPoints, redemption_ref
from storage.models import AwardEntry, Honour, Redemption, Report, User
from storage.repositories import Repos
from storage.rewards import APPROVED, PENDING, REJECTED

# Reasons stored with ledger entries; /points renders them with their parameters.
REASON_REPORT_USEFUL = "points.reason.report_useful"
REASON_AWARD = "points.reason.award"
REASON_AWARD_REVOKED = "points.reason.award_revoked"
REASON_REDEMPTION_REQUESTED = "points.reason.redemption_requested"
REASON_REDEMPTION_RETURNED = "points.reason.redemption_returned"
REASON_REDEMPTION_NO_STOCK = "points.reason.redemption_no_stock"

AWARD_SOURCE_PREFIX = "award:"
REASON_MAX_CHARS = 200
# Pickup codes are read aloud and typed from a phone screen: no 0/O, 1/I/L.
PICKUP_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PICKUP_CODE_LENGTH = 6

HONOURS = "honours"
GUARDIAN = "guardian"
OUTSTANDING_VOLUNTEER = "outstanding_volunteer"

EXPORT_LEDGER = "ledger"
EXPORT_PATROL_HOURS = "patrol"
EXPORT_KINDS = (EXPORT_LEDGER, EXPORT_PATROL_HOURS)
EXPORT_MAX_DAYS = 366

_STATE_KEYS = {
    PENDING: "reward.state_pending",
    APPROVED: "reward.state_approved",
    REJECTED: "reward.state_rejected",
}


def require_commander(user: User) -> None:
    if user.role not in COMMANDERS:
        raise PermissionDenied()


def _role(user: User) -> Text:
    return Text(f"role.{user.role}")


def person_label(community: Community, user: User) -> Text:
    """A person as an officer picks them: name, building and grid."""
    grid = community.grid(user.grid_key) if user.grid_key else None
    grid_name: Text | Verbatim = Verbatim(grid.name) if grid else Text("report.no_grid")
    if user.building:
        return Text(
            "timebank.person_building",
            {"name": Verbatim(user.display_name), "building": Verbatim(user.building), "grid": grid_name},
        )
    return Text("timebank.person", {"name": Verbatim(user.display_name), "grid": grid_name})


def _clean_reason(text: str) -> str:
    reason = text.strip()
    if not reason:
        raise DomainError("timebank.need_reason")
    if len(reason) > REASON_MAX_CHARS:
        raise DomainError("review.text_too_long", max=REASON_MAX_CHARS, length=len(reason))
    return reason


# --- the ledger's stored reasons ------------------------------------------------------


def _stored_name(reward: Reward) -> dict[str, Any]:
    # Entry parameters are plain JSON; "$l" marks a name per language (as the outbox stores Localized).
    return {"$l": dict(reward.names)}


def _shown(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$l"}:
        return Localized(dict(value["$l"]))
    return value


def ledger_reason(key: str, params: dict[str, Any]) -> Text:
    """The readable reason of a ledger entry, in the reader's language."""
    return Text(key, {name: _shown(value) for name, value in params.items()})


# --- earning -----------------------------------------------------------------------------


async def credit_useful_report(
    repos: Repos, community: Community, report: Report, now: datetime
) -> int | None:
    """A resolved report its reporter rated 4 or 5 was a useful tip: points, once per report."""
    points = community.timebank.report_useful_points
    if not points or report.state != rs.RESOLVED or report.rating is None or report.rating < 4:
        return None
    return await repos.ledger.credit_user(
        report.reporter_id,
        points,
        f"report:useful:{report.id}",
        REASON_REPORT_USEFUL,
        {"ticket": f"#{report.ticket}"},
        None,
        now,
    )


# --- awards by hand ----------------------------------------------------------------------


def check_award_points(community: Community, points: int) -> int:
    maximum = community.timebank.award_max_points
    if not 1 <= points <= maximum:
        raise DomainError("award.points_out_of_range", max=maximum)
    return points


async def awardable_person(repos: Repos, officer: User, person_id: int) -> User:
    person = await repos.users.get(person_id)
    if person is None or person.onboarded_at is None:
        raise DomainError("award.no_such_person")
    if person.id == officer.id:
        raise DomainError("award.not_yourself")
    return person


async def find_people(repos: Repos, officer: User, fragment: str, limit: int) -> tuple[list[User], bool]:
    """Up to `limit` onboarded people named like `fragment` but the officer, and whether more matched."""
    require_commander(officer)
    found = await repos.rewards.find_people(fragment.strip(), limit + 2)
    others = [person for person in found if person.id != officer.id]
    return others[:limit], len(others) > limit


@dataclass(frozen=True)
class Award:
    entry_id: int
    person: User
    points: int
    reason: str


async def award(
    repos: Repos,
    community: Community,
    officer: User,
    person_id: int,
    points: int,
    reason: str,
    nonce: str,
    now: datetime,
) -> Award | None:
    """Give points by hand; None if this award (its nonce) was given already. The person is told."""
    require_commander(officer)
    check_award_points(community, points)
    reason = _clean_reason(reason)
    person = await awardable_person(repos, officer, person_id)
    entry_id = await repos.ledger.credit_user(
        person.id, points, f"{AWARD_SOURCE_PREFIX}{nonce}", REASON_AWARD, {"reason": reason}, officer.id, now
    )
    if entry_id is None:
        return None
    told = Text("award.received", {"points": points, "reason": Verbatim(reason), "role": _role(officer)})
    await notify.to_user(repos, community, person, Reply(told), now)
    return Award(entry_id, person, points, reason)


async def revocable_award(repos: Repos, officer: User, entry_id: int) -> AwardEntry:
    require_commander(officer)
    entry = await repos.rewards.award_entry(entry_id)
    if entry is None or not entry.source_key.startswith(AWARD_SOURCE_PREFIX):
        raise DomainError("award.not_found")
    if entry.reversed:
        raise DomainError("award.already_revoked", points=entry.amount)
    return entry


async def revoke_award(
    repos: Repos, community: Community, officer: User, entry_id: int, reason: str, now: datetime
) -> AwardEntry:
    """Correct an award with a reversing entry (never an edit); the person is told."""
    entry = await revocable_award(repos, officer, entry_id)
    reason = _clean_reason(reason)
    try:
        reversal = await repos.ledger.reverse(
            entry.id, REASON_AWARD_REVOKED, {"reason": reason}, officer.id, now
        )
    except InsufficientPoints:
        # The person has spent (or holds for a redemption) what the award gave.
        balance = await repos.ledger.balance(entry.user_id)
        raise DomainError("award.revoke_spent", points=entry.amount, balance=balance) from None
    if reversal is None:
        raise DomainError("award.already_revoked", points=entry.amount)
    person = await repos.users.get(entry.user_id)
    if person is not None:
        told = Text(
            "award.revoked", {"points": entry.amount, "reason": Verbatim(reason), "role": _role(officer)}
        )
        await notify.to_user(repos, community, person, Reply(told), now)
    return entry


# --- rewards -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueItem:
    reward: Reward
    # None: no limit.
    left: int | None

    @property
    def available(self) -> bool:
        return self.left is None or self.left > 0


def reward_name(community: Community, key: str) -> Localized | Verbatim:
    reward = community.timebank.reward(key)
    # A reward taken out of the catalogue since is still named by its key.
    return Localized(dict(reward.names)) if reward is not None else Verbatim(key)


async def catalogue(repos: Repos, community: Community) -> list[CatalogueItem]:
    issued = await repos.rewards.issued()
    return [
        CatalogueItem(
            reward, None if reward.stock is None else max(0, reward.stock - issued.get(reward.key, 0))
        )
        for reward in community.timebank.rewards
    ]


async def redeemable(repos: Repos, community: Community, user: User, reward_key: str) -> tuple[Reward, int]:
    """The reward and the person's balance, if they can ask for it now; otherwise why not."""
    reward = community.timebank.reward(reward_key)
    if reward is None:
        raise DomainError("reward.unknown")
    item = next(i for i in await catalogue(repos, community) if i.reward.key == reward.key)
    name = Localized(dict(reward.names))
    if not item.available:
        raise DomainError("reward.out_of_stock", reward=name)
    balance = await repos.ledger.balance(user.id)
    if balance < reward.cost:
        raise DomainError("reward.not_enough_points", reward=name, cost=reward.cost, balance=balance)
    return reward, balance


async def request_redemption(
    repos: Repos, community: Community, user: User, reward_key: str, now: datetime
) -> Redemption:
    """Hold the points and ask the police; nothing is held when the request is refused."""
    reward, _ = await redeemable(repos, community, user, reward_key)
    name = Localized(dict(reward.names))
    # A savepoint: a refusal below undoes the request row too, and the rest of the input's work stays.
    async with repos.connection.begin_nested():
        redemption = await repos.rewards.request(user.id, reward.key, reward.cost, now)
        if redemption is None:
            raise DomainError("reward.already_requested", reward=name)
        try:
            await repos.ledger.reserve(
                user.id,
                reward.cost,
                redemption_ref(redemption.id),
                REASON_REDEMPTION_REQUESTED,
                {"reward": _stored_name(reward)},
                user.id,
                now,
            )
        except InsufficientPoints:
            balance = await repos.ledger.balance(user.id)
            raise DomainError(
                "reward.not_enough_points", reward=name, cost=reward.cost, balance=balance
            ) from None
    card = Text(
        "reward.request_card",
        {"id": redemption.id, "person": person_label(community, user), "reward": name, "cost": reward.cost},
    )
    await notify.to_police(repos, community, Reply(card, decision_buttons(redemption.id)), now)
    return redemption


def decision_buttons(redemption_id: int) -> tuple[tuple[Choice, ...], ...]:
    return (
        (
            Choice(Text("reward.button_approve"), action=choices.encode("rdm", "ok", redemption_id)),
            Choice(Text("reward.button_reject"), action=choices.encode("rdm", "no", redemption_id)),
        ),
    )


class OutOfStock(DomainError):
    """Approval found none of the reward left; the redemption stays pending."""

    def __init__(self, redemption_id: int, reward: Localized | Verbatim) -> None:
        super().__init__("reward.no_stock_left", id=redemption_id, reward=reward)
        self.redemption_id = redemption_id


async def pending_redemption(repos: Repos, officer: User, redemption_id: int) -> Redemption:
    """The redemption an officer is about to decide, if it still waits for a decision."""
    require_commander(officer)
    redemption = await repos.rewards.get(redemption_id)
    if redemption is None:
        raise DomainError("reward.no_such_redemption")
    if redemption.state != PENDING:
        raise DomainError(
            "reward.already_decided", id=redemption.id, state=Text(_STATE_KEYS[redemption.state])
        )
    return redemption


async def _already_decided(repos: Repos, redemption_id: int) -> DomainError:
    current = await repos.rewards.get(redemption_id)
    state = current.state if current is not None else APPROVED
    return DomainError("reward.already_decided", id=redemption_id, state=Text(_STATE_KEYS[state]))


async def _new_pickup_code(repos: Repos) -> str:
    while True:
        code = "".join(secrets.choice(PICKUP_ALPHABET) for _ in range(PICKUP_CODE_LENGTH))
        # The unique column is the guarantee; this only avoids a collision we could foresee.
        if not await repos.rewards.pickup_code_taken(code):
            return code


async def approve_redemption(
    repos: Repos, community: Community, officer: User, redemption_id: int, now: datetime
) -> Redemption:
    """Approve once: stock taken, points spent, a pickup code to the volunteer."""
    redemption = await pending_redemption(repos, officer, redemption_id)
    reward = community.timebank.reward(redemption.reward_key)
    name = reward_name(community, redemption.reward_key)
    code = await _new_pickup_code(repos)
    async with repos.connection.begin_nested():
        # Deciding first locks the row: a second officer waits here and then finds it decided.
        if not await repos.rewards.decide(redemption.id, APPROVED, officer.id, now, pickup_code=code):
            raise await _already_decided(repos, redemption.id)
        if reward is None or not await repos.rewards.take_stock(reward.key, reward.stock):
            raise OutOfStock(redemption.id, name)
        if await repos.ledger.spend(redemption_ref(redemption.id), officer.id, now) is None:
            raise await _already_decided(repos, redemption.id)
    approved = await repos.rewards.get(redemption.id)
    assert approved is not None
    person = await repos.users.get(redemption.user_id)
    if person is not None:
        told = Text("reward.approved", {"reward": name, "code": code, "id": redemption.id})
        await notify.to_user(repos, community, person, Reply(told), now)
    await _tell_police_decided(repos, community, officer, approved, now)
    return approved


async def reject_redemption(
    repos: Repos,
    community: Community,
    officer: User,
    redemption_id: int,
    reason: str | None,
    now: datetime,
) -> Redemption:
    """Reject once and give the points back; `reason` None means the reward ran out."""
    redemption = await pending_redemption(repos, officer, redemption_id)
    reward = community.timebank.reward(redemption.reward_key)
    name = reward_name(community, redemption.reward_key)
    stored_name: Any = _stored_name(reward) if reward is not None else redemption.reward_key
    if reason is not None:
        reason = _clean_reason(reason)
    elif reward is not None and reward.stock is not None:
        # "Out of stock" is told to the volunteer as the reason: only when it is true.
        if reward.stock - (await repos.rewards.issued()).get(reward.key, 0) > 0:
            raise DomainError("reward.still_in_stock", reward=name)
    elif reward is not None:
        raise DomainError("reward.still_in_stock", reward=name)
    async with repos.connection.begin_nested():
        if not await repos.rewards.decide(redemption.id, REJECTED, officer.id, now, reason=reason):
            raise await _already_decided(repos, redemption.id)
        if reason is None:
            key, params = REASON_REDEMPTION_NO_STOCK, {"reward": stored_name}
        else:
            key, params = REASON_REDEMPTION_RETURNED, {"reward": stored_name, "reason": reason}
        if await repos.ledger.release(redemption_ref(redemption.id), officer.id, now, key, params) is None:
            raise await _already_decided(repos, redemption.id)
    rejected = await repos.rewards.get(redemption.id)
    assert rejected is not None
    person = await repos.users.get(redemption.user_id)
    if person is not None:
        if reason is None:
            told = Text("reward.rejected_no_stock", {"reward": name, "cost": redemption.cost})
        else:
            told = Text(
                "reward.rejected", {"reward": name, "cost": redemption.cost, "reason": Verbatim(reason)}
            )
        await notify.to_user(repos, community, person, Reply(told), now)
    await _tell_police_decided(repos, community, officer, rejected, now)
    return rejected


async def _tell_police_decided(
    repos: Repos, community: Community, officer: User, redemption: Redemption, now: datetime
) -> None:
    # Group cards of redemptions are not edited in place: a short note tells the other officers.
    key = "reward.decided_approved" if redemption.state == APPROVED else "reward.decided_rejected"
    note = Text(
        key,
        {
            "id": redemption.id,
            "reward": reward_name(community, redemption.reward_key),
            "officer": Verbatim(officer.display_name),
        },
    )
    await notify.to_police(repos, community, Reply(note), now)


# --- monthly honours ---------------------------------------------------------------------


def _month_start(year: int, month: int, tz: tzinfo) -> datetime:
    return datetime(year, month, 1, tzinfo=tz)


def _split(period: str) -> tuple[int, int]:
    year, month = period.split("-")
    return int(year), int(month)


def next_period(period: str) -> str:
    year, month = _split(period)
    return f"{year + 1}-01" if month == 12 else f"{year}-{month + 1:02d}"


def previous_period(period: str) -> str:
    year, month = _split(period)
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def month_bounds(period: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of a month of the community's calendar, in UTC."""
    start = _month_start(*_split(period), tz)
    end = _month_start(*_split(next_period(period)), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def honours_due(community: Community, period: str) -> datetime:
    """The 1st of the month after `period`, at the community's honours time (local)."""
    hour, minute = (int(part) for part in community.timebank.honours_time.split(":"))
    year, month = _split(next_period(period))
    return datetime(year, month, 1, hour, minute, tzinfo=community.tz).astimezone(UTC)


async def arm_honours(repos: Repos, community: Community, period: str) -> None:
    """Arm the honours of `period` unless they are armed or done already (arming again would re-fire)."""
    if await repos.schedules.get(HONOURS, period) is None:
        await repos.schedules.arm(HONOURS, period, honours_due(community, period))


def _hours(minutes: int) -> str:
    return f"{minutes / 60:.1f}".removesuffix(".0")


def month_label(period: str) -> Text:
    year, month = _split(period)
    return Text("honours.month", {"year": year, "month": month})


async def decide_honours(repos: Repos, community: Community, period: str, now: datetime) -> list[Honour]:
    """Record the month's 平安卫士 and 优秀志愿者; empty if decided before or nobody qualified."""
    if await repos.rewards.honours(period):
        return []
    bank = community.timebank
    start, end = month_bounds(period, community.tz)
    guardians = await repos.rewards.patrol_leaders(start, end, bank.guardians_per_month)
    earners = (
        await repos.ledger.leaderboard(period, limit=bank.outstanding_volunteers_per_month)
        if bank.outstanding_volunteers_per_month > 0
        else []
    )
    return [
        *await repos.rewards.add_honours(period, GUARDIAN, guardians, now),
        *await repos.rewards.add_honours(
            period, OUTSTANDING_VOLUNTEER, [(s.user_id, s.points) for s in earners], now
        ),
    ]


def _honour_line(honour: Honour, person: User) -> Text:
    name = Verbatim(person.display_name)
    if honour.kind == GUARDIAN:
        return Text(
            "honours.guardian_line", {"rank": honour.rank, "name": name, "hours": _hours(honour.score)}
        )
    return Text("honours.volunteer_line", {"rank": honour.rank, "name": name, "points": honour.score})


def _section(lines: Sequence[Text]) -> Lines | Text:
    return Lines(tuple(lines)) if lines else Text("honours.nobody")


async def announce_honours(
    repos: Repos, community: Community, period: str, honours: Sequence[Honour], now: datetime
) -> None:
    """Post the honours to the resident and police groups and congratulate each person.

    A month in which nobody qualified gets a short note to the police groups
    only: residents are not told that nobody was honoured.
    """
    month = month_label(period)
    if not honours:
        await notify.to_police(repos, community, Reply(Text("honours.none", {"month": month})), now)
        return
    people = await repos.users.many(sorted({h.user_id for h in honours}))
    guardians = [_honour_line(h, people[h.user_id]) for h in honours if h.kind == GUARDIAN]
    volunteers = [_honour_line(h, people[h.user_id]) for h in honours if h.kind == OUTSTANDING_VOLUNTEER]
    post = Reply(
        Text(
            "honours.post",
            {"month": month, "guardians": _section(guardians), "volunteers": _section(volunteers)},
        )
    )
    await notify.to_resident_groups(repos, community, post, now)
    await notify.to_police(repos, community, post, now)
    for honour in honours:
        if honour.kind == GUARDIAN:
            told = Text("honours.you_guardian", {"month": month, "hours": _hours(honour.score)})
        else:
            told = Text(
                "honours.you_volunteer", {"month": month, "points": honour.score, "rank": honour.rank}
            )
        await notify.to_user(repos, community, people[honour.user_id], Reply(told), now)


# --- CSV exports -------------------------------------------------------------------------

_DATE_RE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})")


def parse_date_range(text: str) -> tuple[date, date]:
    """Two local dates typed as "2026-11-01 2026-11-30" (or 2026/11/01, 2026年11月1日 ...), inclusive."""
    found = _DATE_RE.findall(unicodedata.normalize("NFKC", text))
    if len(found) != 2:
        raise DomainError("export.range_unreadable")
    try:
        first, last = (date(int(y), int(m), int(d)) for y, m, d in found)
    except ValueError:
        raise DomainError("export.range_unreadable") from None
    if last < first:
        raise DomainError("export.range_backwards")
    if (last - first).days + 1 > EXPORT_MAX_DAYS:
        raise DomainError("export.range_too_long", days=EXPORT_MAX_DAYS)
    return first, last


def month_range(period: str) -> tuple[date, date]:
    year, month = _split(period)
    following_year, following_month = _split(next_period(period))
    return date(year, month, 1), date(following_year, following_month, 1) - timedelta(days=1)


def _bounds(first: date, last: date, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(first, time(0), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _cell(text: str | None) -> str:
    """Free text for a spreadsheet cell: never read by Excel as a formula."""
    if not text:
        return ""
    return "'" + text if text[0] in "=+-@\t\r" else text


def _local(moment: datetime | None, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment is not None else ""


def _flag(value: bool) -> int:
    return 1 if value else 0


LEDGER_COLUMNS = (
    "entry_id",
    "time",
    "user_id",
    "person",
    "amount",
    "movement",
    "reason_key",
    "reason_params",
    "source_key",
    "actor_id",
    "actor",
)
PATROL_COLUMNS = (
    "shift_id",
    "shift_date",
    "starts",
    "ends",
    "area",
    "user_id",
    "person",
    "check_in",
    "check_in_method",
    "check_out",
    "check_out_method",
    "minutes",
    "flagged",
    "no_show",
)


def _available_change(debit_kind: str, credit_kind: str, amount: int) -> int:
    """What the entry did to the person's spendable balance, the number /points shows."""
    return (amount if credit_kind == "user" else 0) - (amount if debit_kind == "user" else 0)


async def _ledger_csv(repos: Repos, tz: tzinfo, start: datetime, end: datetime) -> tuple[list[Any], int]:
    rows = await repos.rewards.ledger_between(start, end)
    table: list[Any] = [LEDGER_COLUMNS]
    for row in rows:
        table.append(
            (
                row.id,
                _local(row.created_at, tz),
                row.person_id or "",
                _cell(row.person_name),
                _available_change(row.debit_kind, row.credit_kind, row.amount),
                f"{row.debit_kind}>{row.credit_kind}",
                row.reason_key,
                _cell(_params_text(row.reason_params)),
                row.source_key,
                row.actor_id or "",
                _cell(row.actor_name),
            )
        )
    return table, len(rows)


def _params_text(params: dict[str, Any]) -> str:
    """Reason parameters as "name=value; ..." with a name per language in its default language."""
    shown = []
    for name, value in params.items():
        if isinstance(value, dict) and set(value) == {"$l"}:
            names = value["$l"]
            value = names.get("zh_CN") or next(iter(names.values()), "")
        shown.append(f"{name}={value}")
    return "; ".join(shown)


async def _patrol_csv(repos: Repos, tz: tzinfo, start: datetime, end: datetime) -> tuple[list[Any], int]:
    rows = await repos.rewards.patrol_hours_between(start, end)
    table: list[Any] = [PATROL_COLUMNS]
    for row in rows:
        table.append(
            (
                row.shift_id,
                row.starts_at.astimezone(tz).strftime("%Y-%m-%d"),
                row.starts_at.astimezone(tz).strftime("%H:%M"),
                row.ends_at.astimezone(tz).strftime("%H:%M"),
                _cell(row.area),
                row.user_id,
                _cell(row.person_name),
                _local(row.checked_in_at, tz),
                row.checkin_method or "",
                _local(row.checked_out_at, tz),
                row.checkout_method or "",
                "" if row.minutes_worked is None else row.minutes_worked,
                _flag(row.flagged),
                _flag(row.no_show),
            )
        )
    return table, len(rows)


@dataclass(frozen=True)
class Export:
    document: Document
    rows: int


async def export_csv(
    repos: Repos, community: Community, officer: User, kind: str, first: date, last: date
) -> Export:
    """The ledger or the patrol hours of [first, last] (local dates) as a CSV Excel opens correctly."""
    require_commander(officer)
    if kind not in EXPORT_KINDS:
        raise DomainError("export.unknown_kind")
    tz = community.tz
    start, end = _bounds(first, last, tz)
    build = _ledger_csv if kind == EXPORT_LEDGER else _patrol_csv
    table, count = await build(repos, tz, start, end)
    out = io.StringIO()
    csv.writer(out).writerows(table)
    whole_month = first.day == 1 and month_range(first.strftime("%Y-%m"))[1] == last
    span = first.strftime("%Y-%m") if whole_month else f"{first.isoformat()}_{last.isoformat()}"
    name = "ledger" if kind == EXPORT_LEDGER else "patrol-hours"
    # The BOM makes Excel read the file as UTF-8, so names in Chinese are not garbled.
    return Export(Document(f"{name}-{span}.csv", "text/csv", out.getvalue().encode("utf-8-sig")), count)
