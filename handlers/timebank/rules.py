"""The time bank's rules (公益时间银行): what earns points, awards by hand and their corrections,
redemptions that wait for police approval, tiers, monthly honours, leaderboard figures and the
rows of the CSV exports.

Every permission is checked here, not only by which buttons are shown. Every
movement of points goes through the ledger with a source key naming the event,
so a retry, a double click or two officers at once can never count it twice.
Nothing here tells anyone anything: the flows tell people with what views.py
builds from these results.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from handlers.accounts.rules import COMMANDERS
from handlers.community import Community, Grid, Reward
from handlers.errors import DomainError, PermissionDenied
from storage import report_states as rs
from storage.ledger import ALL_TIME, InsufficientPoints, redemption_ref
from storage.models import (
    AwardEntry,
    Honour,
    LedgerExportRow,
    PatrolHoursRow,
    PointsStatement,
    Redemption,
    Report,
    Standing,
    User,
)
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


def require_commander(user: User) -> None:
    if user.role not in COMMANDERS:
        raise PermissionDenied()


def _clean_reason(text: str) -> str:
    reason = text.strip()
    if not reason:
        raise DomainError("timebank.need_reason")
    if len(reason) > REASON_MAX_CHARS:
        raise DomainError("review.text_too_long", max=REASON_MAX_CHARS, length=len(reason))
    return reason


def stored_name(reward: Reward) -> dict[str, Any]:
    """A reward's names as ledger entry parameters store them (plain JSON; "$l" marks a name per language)."""
    return {"$l": dict(reward.names)}


# --- /points -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Points:
    statement: PointsStatement
    # "bronze", "silver" or "gold", from the points earned all-time.
    tier: str


async def points(repos: Repos, community: Community, user: User, recent: int = 10) -> Points:
    statement = await repos.ledger.statement(user.id, limit=recent)
    return Points(statement, community.timebank.tier(statement.lifetime))


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
    """Give points by hand; None if this award (its nonce) was given already."""
    require_commander(officer)
    check_award_points(community, points)
    reason = _clean_reason(reason)
    person = await awardable_person(repos, officer, person_id)
    entry_id = await repos.ledger.credit_user(
        person.id, points, f"{AWARD_SOURCE_PREFIX}{nonce}", REASON_AWARD, {"reason": reason}, officer.id, now
    )
    if entry_id is None:
        return None
    return Award(entry_id, person, points, reason)


async def revocable_award(repos: Repos, officer: User, entry_id: int) -> AwardEntry:
    require_commander(officer)
    entry = await repos.rewards.award_entry(entry_id)
    if entry is None or not entry.source_key.startswith(AWARD_SOURCE_PREFIX):
        raise DomainError("award.not_found")
    if entry.reversed:
        raise DomainError("award.already_revoked", points=entry.amount)
    return entry


@dataclass(frozen=True)
class Revoked:
    entry: AwardEntry
    # The person the award was given to; None if they are gone.
    person: User | None
    reason: str


async def revoke_award(
    repos: Repos, community: Community, officer: User, entry_id: int, reason: str, now: datetime
) -> Revoked:
    """Correct an award with a reversing entry (never an edit)."""
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
    return Revoked(entry, await repos.users.get(entry.user_id), reason)


# --- rewards -----------------------------------------------------------------------------


# Refusals about rewards carry the reward's key as `reward` and a redemption's state as
# `state`: views.explained names them in the reader's language.


class OutOfStock(DomainError):
    """Approval found none of the reward left; the redemption stays pending."""

    def __init__(self, redemption_id: int, reward_key: str) -> None:
        super().__init__("reward.no_stock_left", id=redemption_id, reward=reward_key)
        self.redemption_id = redemption_id


@dataclass(frozen=True)
class CatalogueItem:
    reward: Reward
    # None: no limit.
    left: int | None

    @property
    def available(self) -> bool:
        return self.left is None or self.left > 0


async def catalogue(repos: Repos, community: Community) -> list[CatalogueItem]:
    issued = await repos.rewards.issued()
    return [
        CatalogueItem(
            reward, None if reward.stock is None else max(0, reward.stock - issued.get(reward.key, 0))
        )
        for reward in community.timebank.rewards
    ]


@dataclass(frozen=True)
class Catalogue:
    """What /rewards shows a person."""

    items: list[CatalogueItem]
    balance: int
    # Their latest pending and approved redemptions.
    mine: list[Redemption]


async def catalogue_for(repos: Repos, community: Community, user: User, mine_shown: int) -> Catalogue:
    items = await catalogue(repos, community)
    balance = await repos.ledger.balance(user.id)
    mine = await repos.rewards.of_user(user.id, (PENDING, APPROVED), mine_shown) if items else []
    return Catalogue(items, balance, mine)


async def redeemable(repos: Repos, community: Community, user: User, reward_key: str) -> tuple[Reward, int]:
    """The reward and the person's balance, if they can ask for it now; otherwise why not."""
    reward = community.timebank.reward(reward_key)
    if reward is None:
        raise DomainError("reward.unknown")
    item = next(i for i in await catalogue(repos, community) if i.reward.key == reward.key)
    if not item.available:
        raise DomainError("reward.out_of_stock", reward=reward.key)
    balance = await repos.ledger.balance(user.id)
    if balance < reward.cost:
        raise DomainError("reward.not_enough_points", reward=reward.key, cost=reward.cost, balance=balance)
    return reward, balance


async def request_redemption(
    repos: Repos, community: Community, user: User, reward_key: str, now: datetime
) -> Redemption:
    """Hold the points for the police to decide; nothing is held when the request is refused."""
    reward, _ = await redeemable(repos, community, user, reward_key)
    # A savepoint: a refusal below undoes the request row too, and the rest of the input's work stays.
    async with repos.connection.begin_nested():
        redemption = await repos.rewards.request(user.id, reward.key, reward.cost, now)
        if redemption is None:
            raise DomainError("reward.already_requested", reward=reward.key)
        try:
            await repos.ledger.reserve(
                user.id,
                reward.cost,
                redemption_ref(redemption.id),
                REASON_REDEMPTION_REQUESTED,
                {"reward": stored_name(reward)},
                user.id,
                now,
            )
        except InsufficientPoints:
            balance = await repos.ledger.balance(user.id)
            raise DomainError(
                "reward.not_enough_points", reward=reward.key, cost=reward.cost, balance=balance
            ) from None
    return redemption


async def pending_redemption(repos: Repos, officer: User, redemption_id: int) -> Redemption:
    """The redemption an officer is about to decide, if it still waits for a decision."""
    require_commander(officer)
    redemption = await repos.rewards.get(redemption_id)
    if redemption is None:
        raise DomainError("reward.no_such_redemption")
    if redemption.state != PENDING:
        raise DomainError("reward.already_decided", id=redemption.id, state=redemption.state)
    return redemption


async def pending_redemptions(
    repos: Repos, officer: User, shown: int
) -> tuple[list[Redemption], int, dict[int, User]]:
    """The oldest `shown` pending redemptions, how many are pending in all, and who asked for them."""
    require_commander(officer)
    pending = await repos.rewards.pending(shown)
    if not pending:
        return [], 0, {}
    total = await repos.rewards.count_pending()
    people = await repos.users.many([r.user_id for r in pending])
    return pending, total, people


async def _already_decided(repos: Repos, redemption_id: int) -> DomainError:
    current = await repos.rewards.get(redemption_id)
    state = current.state if current is not None else APPROVED
    return DomainError("reward.already_decided", id=redemption_id, state=state)


async def _new_pickup_code(repos: Repos) -> str:
    while True:
        code = "".join(secrets.choice(PICKUP_ALPHABET) for _ in range(PICKUP_CODE_LENGTH))
        # The unique column is the guarantee; this only avoids a collision we could foresee.
        if not await repos.rewards.pickup_code_taken(code):
            return code


@dataclass(frozen=True)
class Decided:
    """A redemption just approved or rejected, and the person who asked for it (None if gone)."""

    redemption: Redemption
    person: User | None


async def approve_redemption(
    repos: Repos, community: Community, officer: User, redemption_id: int, now: datetime
) -> Decided:
    """Approve once: stock taken, points spent, a pickup code for the volunteer."""
    redemption = await pending_redemption(repos, officer, redemption_id)
    reward = community.timebank.reward(redemption.reward_key)
    code = await _new_pickup_code(repos)
    async with repos.connection.begin_nested():
        # Deciding first locks the row: a second officer waits here and then finds it decided.
        if not await repos.rewards.decide(redemption.id, APPROVED, officer.id, now, pickup_code=code):
            raise await _already_decided(repos, redemption.id)
        if reward is None or not await repos.rewards.take_stock(reward.key, reward.stock):
            raise OutOfStock(redemption.id, redemption.reward_key)
        if await repos.ledger.spend(redemption_ref(redemption.id), officer.id, now) is None:
            raise await _already_decided(repos, redemption.id)
    approved = await repos.rewards.get(redemption.id)
    assert approved is not None
    return Decided(approved, await repos.users.get(redemption.user_id))


async def reject_redemption(
    repos: Repos,
    community: Community,
    officer: User,
    redemption_id: int,
    reason: str | None,
    now: datetime,
) -> Decided:
    """Reject once and give the points back; `reason` None means the reward ran out."""
    redemption = await pending_redemption(repos, officer, redemption_id)
    reward = community.timebank.reward(redemption.reward_key)
    name: Any = stored_name(reward) if reward is not None else redemption.reward_key
    if reason is not None:
        reason = _clean_reason(reason)
    elif reward is not None and reward.stock is not None:
        # "Out of stock" is told to the volunteer as the reason: only when it is true.
        if reward.stock - (await repos.rewards.issued()).get(reward.key, 0) > 0:
            raise DomainError("reward.still_in_stock", reward=reward.key)
    elif reward is not None:
        raise DomainError("reward.still_in_stock", reward=reward.key)
    async with repos.connection.begin_nested():
        if not await repos.rewards.decide(redemption.id, REJECTED, officer.id, now, reason=reason):
            raise await _already_decided(repos, redemption.id)
        if reason is None:
            key, params = REASON_REDEMPTION_NO_STOCK, {"reward": name}
        else:
            key, params = REASON_REDEMPTION_RETURNED, {"reward": name, "reason": reason}
        if await repos.ledger.release(redemption_ref(redemption.id), officer.id, now, key, params) is None:
            raise await _already_decided(repos, redemption.id)
    rejected = await repos.rewards.get(redemption.id)
    assert rejected is not None
    return Decided(rejected, await repos.users.get(redemption.user_id))


# --- the leaderboard ---------------------------------------------------------------------

LEADERBOARD_TOP = 10
MONTH, EVER = "m", "a"
COMMUNITY, GRID = "c", "g"


@dataclass(frozen=True)
class Board:
    """A leaderboard as one person sees it."""

    # MONTH or EVER, COMMUNITY or GRID: what was asked for.
    period_code: str
    scope: str
    # The grid whose board it is; None for the whole community.
    grid: Grid | None
    standings: list[Standing]
    people: dict[int, User]
    # (rank, points) of the viewer when they are on the board but not in the top; None otherwise.
    mine: tuple[int, int] | None
    # Whether the viewer has a grid of this community to switch to.
    has_grid: bool


async def leaderboard(
    repos: Repos, community: Community, viewer: User, period_code: str, scope: str, now: datetime
) -> Board:
    ledger = repos.ledger
    period = ledger.month(now) if period_code == MONTH else ALL_TIME
    own_grid = community.grid(viewer.grid_key) if viewer.grid_key else None
    grid = own_grid if scope == GRID else None
    grid_key = grid.key if grid is not None else None
    standings = await ledger.leaderboard(period, grid_key, limit=LEADERBOARD_TOP)
    people = await repos.users.many([s.user_id for s in standings])
    mine = None
    if not viewer.leaderboard_opt_out and all(s.user_id != viewer.id for s in standings):
        mine = await repos.rewards.standing(viewer.id, period, grid_key)
    return Board(period_code, scope, grid, standings, people, mine, own_grid is not None)


# --- monthly honours ---------------------------------------------------------------------


def _month_start(year: int, month: int, tz: tzinfo) -> datetime:
    return datetime(year, month, 1, tzinfo=tz)


def split_period(period: str) -> tuple[int, int]:
    """(year, month) of "2026-05"."""
    year, month = period.split("-")
    return int(year), int(month)


def next_period(period: str) -> str:
    year, month = split_period(period)
    return f"{year + 1}-01" if month == 12 else f"{year}-{month + 1:02d}"


def previous_period(period: str) -> str:
    year, month = split_period(period)
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def month_bounds(period: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of a month of the community's calendar, in UTC."""
    start = _month_start(*split_period(period), tz)
    end = _month_start(*split_period(next_period(period)), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def honours_due(community: Community, period: str) -> datetime:
    """The 1st of the month after `period`, at the community's honours time (local)."""
    hour, minute = (int(part) for part in community.timebank.honours_time.split(":"))
    year, month = split_period(next_period(period))
    return datetime(year, month, 1, hour, minute, tzinfo=community.tz).astimezone(UTC)


async def arm_honours(repos: Repos, community: Community, period: str) -> None:
    """Arm the honours of `period` unless they are armed or done already (arming again would re-fire)."""
    if await repos.schedules.get(HONOURS, period) is None:
        await repos.schedules.arm(HONOURS, period, honours_due(community, period))


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


async def honoured_people(repos: Repos, honours: Sequence[Honour]) -> dict[int, User]:
    return await repos.users.many(sorted({h.user_id for h in honours}))


# --- exports -----------------------------------------------------------------------------

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
    year, month = split_period(period)
    following_year, following_month = split_period(next_period(period))
    return date(year, month, 1), date(following_year, following_month, 1) - timedelta(days=1)


def check_export_kind(kind: str) -> str:
    if kind not in EXPORT_KINDS:
        raise DomainError("export.unknown_kind")
    return kind


def is_whole_month(first: date, last: date) -> bool:
    return first.day == 1 and month_range(first.strftime("%Y-%m"))[1] == last


def _bounds(first: date, last: date, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(first, time(0), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


async def ledger_rows(
    repos: Repos, community: Community, officer: User, first: date, last: date
) -> list[LedgerExportRow]:
    """The ledger entries of [first, last] (local dates), for an officer's export."""
    require_commander(officer)
    return await repos.rewards.ledger_between(*_bounds(first, last, community.tz))


async def patrol_hours_rows(
    repos: Repos, community: Community, officer: User, first: date, last: date
) -> list[PatrolHoursRow]:
    """Who patrolled when during [first, last] (local dates), for an officer's export."""
    require_commander(officer)
    return await repos.rewards.patrol_hours_between(*_bounds(first, last, community.tz))


def available_change(debit_kind: str, credit_kind: str, amount: int) -> int:
    """What an entry did to the person's spendable balance, the number /points shows."""
    return (amount if credit_kind == "user" else 0) - (amount if debit_kind == "user" else 0)
