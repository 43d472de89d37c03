"""Data rights: everything held about a person (export), erasing a person, and retention.

What is held, and what erasure does with it, comes from the features' `PersonalData`
declarations (handlers/registry.py); nothing here names a feature's table.

Erasure keeps the person's users row, nameless: reports, shifts and ledger entries keep naming
a valid account, so every record and every points sum stays as it was, while nothing says who
the account was. Their chat accounts go, so the next message from one of them is a stranger's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from handlers.clock import Clock
from handlers.community import Community
from handlers.errors import DomainError, PermissionDenied
from handlers.registry import CLEAR, DELETE, Erasure, PersonalData
from storage.models import Schedule, User
from storage.personal import PersonalDataRepo
from storage.repositories import Repos
from storage.roles import ADMIN, COMMANDERS, RESIDENT

# The name an erased account (or one that declined the privacy notice) is shown by. Stored, so it
# is in the community's usual language rather than the reader's; it says nothing about anyone.
ERASED_NAME = "已注销用户"
EXPORT_FORMAT = "shouwang-personal-data/1"
RETENTION = "privacy_retention"
# The daily sweep runs at this local hour, when the community sleeps.
RETENTION_HOUR = 3


@dataclass(frozen=True)
class Section:
    declaration: PersonalData
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class PersonalExport:
    user_id: int
    exported_at: datetime
    sections: list[Section]

    @property
    def row_count(self) -> int:
        return sum(len(section.rows) for section in self.sections)

    def to_json(self) -> bytes:
        document = {
            "format": EXPORT_FORMAT,
            "person_id": self.user_id,
            "exported_at": self.exported_at.isoformat(),
            "data": [
                {
                    "table": section.declaration.table,
                    "column": section.declaration.person_column,
                    "what": section.declaration.what,
                    "rows": section.rows,
                }
                for section in self.sections
            ],
        }
        return json.dumps(document, ensure_ascii=False, indent=2, default=_json_value).encode("utf-8")


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot export {type(value).__name__}")


def _distinct(declarations: tuple[PersonalData, ...]) -> list[PersonalData]:
    """One declaration per (table, column): two features may declare the same rows (patrols and
    attendance both read patrol_signups.user_id); the first one, in feature order, speaks."""
    seen: set[tuple[str, str]] = set()
    distinct = []
    for declared in declarations:
        place = (declared.table, declared.person_column)
        if place not in seen:
            seen.add(place)
            distinct.append(declared)
    return distinct


async def export(
    repos: Repos, declarations: tuple[PersonalData, ...], user_id: int, now: datetime
) -> PersonalExport:
    personal = repos.of(PersonalDataRepo)
    sections = []
    for declared in _distinct(declarations):
        if declared.export is not None:
            rows = await declared.export(repos, user_id)
        else:
            rows = await personal.rows(declared.table, declared.person_column, user_id, declared.columns)
        sections.append(Section(declared, rows))
    return PersonalExport(user_id, now, sections)


@dataclass(frozen=True)
class Erased:
    user_id: int
    identities: int
    messages_dropped: int


def check_may_erase(actor: User, target: User) -> None:
    """Anyone may erase themselves; police erase others on request, but not an administrator."""
    if actor.id == target.id:
        return
    if actor.role not in COMMANDERS or (target.role == ADMIN and actor.role != ADMIN):
        raise PermissionDenied()


async def erase(
    repos: Repos,
    community: Community,
    declarations: tuple[PersonalData, ...],
    user: User,
    now: datetime,
) -> Erased:
    """Erase one person: every declaration's rows are kept, deleted or cleared as it says."""
    if user.erased_at is not None:
        raise DomainError("erase.already_erased")
    if user.role == ADMIN and len(await repos.users.with_roles([ADMIN])) <= 1:
        # Nobody could grant roles any more but the operator's command line.
        raise DomainError("erase.last_admin")
    personal = repos.of(PersonalDataRepo)
    identities = await repos.users.identities(user.id)
    dropped = 0
    for identity in identities:
        if identity.chat_id is not None:
            dropped += await personal.drop_messages_to(identity.channel, [identity.chat_id], now)
    erasure = Erasure(repos, community, user.id, now)
    for declared in declarations:
        if declared.eraser is not None:
            await declared.eraser(erasure)
    for declared in _distinct(declarations):
        if declared.erase == DELETE:
            await personal.delete(declared.table, declared.person_column, user.id)
        elif declared.erase == CLEAR:
            await personal.clear(declared.table, declared.person_column, user.id, declared.clear)
    await repos.users.update(
        user.id,
        display_name=ERASED_NAME,
        role=RESIDENT,
        leaderboard_opt_out=True,
        erased_at=now,
        declined_at=None,
    )
    return Erased(user.id, len(identities), dropped)


async def find_person(repos: Repos, channel: str, external_id: str) -> User:
    found = await repos.users.by_identity(channel, external_id)
    if found is None:
        raise DomainError("erase.unknown_person", channel=channel[:16], user=external_id[:64])
    return found[0]


# --- Retention ------------------------------------------------------------------------------


def next_sweep(community: Community, after: datetime) -> datetime:
    local = after.astimezone(community.tz)
    due = local.replace(hour=RETENTION_HOUR, minute=0, second=0, microsecond=0)
    if due <= local:
        due = (local + timedelta(days=1)).replace(hour=RETENTION_HOUR, minute=0, second=0, microsecond=0)
    return due.astimezone(after.tzinfo)


async def arm_sweep(repos: Repos, community: Community, after: datetime) -> None:
    if community.privacy.retention_days is None:
        return
    due = next_sweep(community, after)
    ref = due.astimezone(community.tz).date().isoformat()
    armed = await repos.schedules.get(RETENTION, ref)
    if armed is None or armed.state == "cancelled":
        await repos.schedules.arm(RETENTION, ref, due)


async def on_start(repos: Repos, community: Community, now: datetime) -> None:
    """Arm the next sweep when a retention is set; one left from a retention since turned off is
    cancelled."""
    if community.privacy.retention_days is None:
        for armed in await repos.schedules.pending_of(RETENTION):
            await repos.schedules.cancel(RETENTION, armed.ref)
        return
    await arm_sweep(repos, community, now)


async def sweep(repos: Repos, community: Community, now: datetime) -> int:
    """Forget the place (coordinates, building, unit) and photos of closed reports older than the
    retention. Idempotent: a report already swept holds nothing to forget and is not found again."""
    days = community.privacy.retention_days
    if days is None:
        return 0
    personal = repos.of(PersonalDataRepo)
    swept = 0
    while ids := await personal.reports_past_retention(now - timedelta(days=days)):
        await personal.forget_report_places(ids)
        repos.forgotten_media.extend(await personal.remove_report_photos(ids, ("before", "after")))
        swept += len(ids)
    return swept


async def fire_sweep(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    now = clock.now()
    await sweep(repos, community, now)
    await arm_sweep(repos, community, now)
