"""Who people are: roles, invites, linked accounts, onboarding facts.

Finding the person behind a platform identity on every input is the engine's (handlers/router.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers.community import LANGUAGES, Community
from handlers.errors import DomainError, PermissionDenied, StaleAction
from storage import audit
from storage.audit import VIA_CLI, AuditEntry
from storage.models import Invite, User
from storage.people import AccountLink
from storage.repositories import Repos

# Re-exported: every feature's permission rules read the role names as accounts.X.
from storage.roles import ADMIN as ADMIN
from storage.roles import COMMANDERS as COMMANDERS
from storage.roles import GRID_WORKER as GRID_WORKER
from storage.roles import POLICE as POLICE
from storage.roles import RESIDENT as RESIDENT
from storage.roles import ROLES as ROLES
from storage.roles import STAFF as STAFF
from storage.roles import VOLUNTEER as VOLUNTEER

# Who may invite whom: police cannot mint admins.
INVITABLE_BY: dict[str, frozenset[str]] = {
    ADMIN: frozenset(ROLES),
    POLICE: frozenset({RESIDENT, VOLUNTEER, GRID_WORKER, POLICE}),
}


@dataclass(frozen=True)
class InviteCreated:
    code: str
    role: str
    expires_at: datetime


async def grant_role(
    repos: Repos,
    channel: str,
    external_id: str,
    role: str,
    grid_keys: list[str],
    now: datetime,
    display_name: str | None = None,
) -> User:
    """Set a role from the command line; the person need not have talked to the bot yet.

    Someone who has talked to the bot keeps everything (profile, reports, points); `display_name`
    only names a person who has no name of their own yet.
    """
    if role not in ROLES:
        raise DomainError("error.unknown_role", role=role)
    found = await repos.users.by_identity(channel, external_id)
    if found is None:
        user = await repos.users.create(display_name or external_id, now, role=role)
        await repos.users.add_identity(channel, external_id, user.id, None, now)
    else:
        user = found[0]
        await repos.users.update(user.id, role=role)
        if display_name and user.display_name == external_id:
            await repos.users.update(user.id, display_name=display_name)
    for grid_key in grid_keys:
        await repos.users.assign_grid(user.id, grid_key)
    refreshed = await repos.users.get(user.id)
    assert refreshed is not None
    return refreshed


@dataclass(frozen=True)
class RoleChange:
    person: User
    previous: str
    # The grids the person serves now (a grant) or served until now (a revocation).
    grids: list[str]


async def grant_from_command_line(
    repos: Repos,
    channel: str,
    external_id: str,
    role: str,
    grid_keys: list[str],
    now: datetime,
    display_name: str | None = None,
) -> RoleChange:
    """`shouwang role grant`: set the role and record who got what (the operator acts, not a user)."""
    found = await repos.users.by_identity(channel, external_id)
    previous = found[0].role if found is not None else RESIDENT
    person = await grant_role(repos, channel, external_id, role, grid_keys, now, display_name)
    grids = await repos.users.grids_of(person.id)
    await repos.audit.record(
        now,
        audit.ROLE_GRANT,
        via=VIA_CLI,
        subject_id=person.id,
        detail={"role": role, "previous": previous, "grids": grids},
    )
    return RoleChange(person, previous, grids)


def require_admin(user: User) -> None:
    if user.role != ADMIN:
        raise PermissionDenied()


@dataclass(frozen=True)
class StaffMember:
    person: User
    grids: list[str]


async def staff(repos: Repos, viewer: User) -> list[StaffMember]:
    """Everyone holding a staff role, with their grids, for an admin."""
    require_admin(viewer)
    people = await repos.users.with_roles(STAFF)
    order = {role: rank for rank, role in enumerate(reversed(ROLES))}
    people.sort(key=lambda person: (order[person.role], person.id))
    return [StaffMember(person, await repos.users.grids_of(person.id)) for person in people]


async def revocable(repos: Repos, actor: User | None, person_id: int) -> User:
    """The person whose role an admin (or, with `actor` None, the operator) may take back."""
    if actor is not None:
        require_admin(actor)
        if actor.id == person_id:
            # An admin who locked themselves out could not undo it from the chat.
            raise DomainError("roles.not_yourself")
    person = await repos.users.get(person_id)
    if person is None:
        raise StaleAction()
    if person.role == RESIDENT:
        raise DomainError("roles.nothing_to_revoke")
    return person


async def revoke_role(
    repos: Repos, actor: User | None, via: str, person_id: int, now: datetime
) -> RoleChange:
    """Make the person a resident again (their grids go too); recorded in the audit log."""
    person = await revocable(repos, actor, person_id)
    grids = await repos.users.drop_grids(person.id)
    await repos.users.update(person.id, role=RESIDENT)
    await repos.audit.record(
        now,
        audit.ROLE_REVOKE,
        via=via,
        actor_id=actor.id if actor is not None else None,
        subject_id=person.id,
        detail={"role": RESIDENT, "previous": person.role, "grids": grids},
    )
    revoked = await repos.users.get(person.id)
    assert revoked is not None
    return RoleChange(revoked, person.role, grids)


async def person_on(repos: Repos, channel: str, external_id: str) -> User:
    found = await repos.users.by_identity(channel, external_id)
    if found is None:
        raise DomainError("error.no_such_person")
    return found[0]


async def create_invite(
    repos: Repos,
    community: Community,
    actor: User,
    via: str,
    role: str,
    grid_key: str | None,
    now: datetime,
) -> InviteCreated:
    allowed = INVITABLE_BY.get(actor.role)
    if allowed is None:
        raise PermissionDenied()
    if role not in ROLES:
        raise DomainError("invite.unknown_role", role=role)
    if role not in allowed:
        raise PermissionDenied()
    if role == GRID_WORKER:
        if grid_key is None:
            raise DomainError("invite.grid_needed")
        if community.grid(grid_key) is None:
            raise DomainError("error.unknown_grid", grid=grid_key)
    code = secrets.token_urlsafe(12)
    expires_at = now + timedelta(hours=community.limits.invite_valid_hours)
    await repos.invites.create(code, role, grid_key, actor.id, now, expires_at)
    await repos.audit.record(
        now,
        audit.INVITE_CREATE,
        via=via,
        actor_id=actor.id,
        target=invite_target(code),
        detail={"role": role, "grid": grid_key},
    )
    return InviteCreated(code, role, expires_at)


def invite_target(code: str) -> str:
    # Enough of the code to tell invites apart, not enough to use one found in the log.
    return f"invite:{code[:6]}"


async def redeem_invite(repos: Repos, user: User, via: str, code: str, now: datetime) -> RoleChange:
    invite = await repos.invites.get(code)
    if invite is None:
        raise DomainError("invite.invalid")
    if invite.used_by is not None:
        raise DomainError("invite.used")
    if invite.withdrawn_at is not None:
        raise DomainError("invite.withdrawn")
    if invite.expires_at <= now:
        raise DomainError("invite.expired")
    if not await repos.invites.redeem(code, user.id, now):
        raise DomainError("invite.used")
    await repos.users.update(user.id, role=invite.role)
    if invite.grid_key:
        await repos.users.assign_grid(user.id, invite.grid_key)
    grids = await repos.users.grids_of(user.id)
    await repos.audit.record(
        now,
        audit.INVITE_REDEEM,
        via=via,
        actor_id=user.id,
        subject_id=user.id,
        target=invite_target(code),
        detail={"role": invite.role, "previous": user.role, "invited_by": invite.created_by, "grids": grids},
    )
    granted = await repos.users.get(user.id)
    assert granted is not None
    return RoleChange(granted, user.role, grids)


async def outstanding_invites(repos: Repos, actor: User, now: datetime) -> list[Invite]:
    """Invites not yet used: an admin sees everyone's, police their own."""
    if actor.role not in INVITABLE_BY:
        raise PermissionDenied()
    return await repos.invites.outstanding(now, None if actor.role == ADMIN else actor.id)


async def withdraw_invite(repos: Repos, actor: User, via: str, code: str, now: datetime) -> Invite:
    if actor.role not in INVITABLE_BY:
        raise PermissionDenied()
    invite = await repos.invites.get(code)
    if invite is None:
        raise StaleAction()
    if invite.created_by != actor.id and actor.role != ADMIN:
        raise PermissionDenied()
    if not await repos.invites.withdraw(code, now):
        raise DomainError("invite.withdraw_too_late")
    await repos.audit.record(
        now,
        audit.INVITE_WITHDRAW,
        via=via,
        actor_id=actor.id,
        target=invite_target(code),
        detail={"role": invite.role, "grid": invite.grid_key, "invited_by": invite.created_by},
    )
    return invite


async def set_language(repos: Repos, user: User, language: str) -> None:
    if language not in LANGUAGES:
        raise DomainError("error.unknown_language")
    await repos.users.update(user.id, language=language)


async def grids_for(repos: Repos, user: User) -> list[str] | None:
    """Grids whose reports this user handles; None means all of them."""
    if user.role in COMMANDERS:
        return None
    if user.role == GRID_WORKER:
        return await repos.users.grids_of(user.id)
    return []


LINK_CODE_MINUTES = 10
_LINK_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread


async def create_link_code(repos: Repos, user: User, now: datetime) -> tuple[str, datetime]:
    code = "".join(secrets.choice(_LINK_ALPHABET) for _ in range(8))
    expires_at = now + timedelta(minutes=LINK_CODE_MINUTES)
    await repos.links.create(code, user.id, now, expires_at)
    return code, expires_at


def merged_role(first: User, second: User) -> str:
    """The role of the person two accounts become. A role never travels over a link: two accounts
    of different roles are refused if either holds a staff role (the other account, which may
    belong to someone else, would gain it); otherwise a volunteer stays a volunteer."""
    if first.role == second.role:
        return first.role
    if first.role in STAFF or second.role in STAFF:
        raise DomainError("link.roles_differ")
    return VOLUNTEER if VOLUNTEER in (first.role, second.role) else RESIDENT


@dataclass(frozen=True)
class LinkRequest:
    code: str
    # The account the code was made on (it stays) and the one that typed it (merged into it).
    owner: User
    claimer: User
    owner_channels: tuple[str, ...]
    claimer_channels: tuple[str, ...]


async def _link_request(repos: Repos, owner_id: int, claimer: User, code: str) -> LinkRequest:
    if owner_id == claimer.id:
        raise DomainError("link.same_account")
    owner = await repos.users.get(owner_id)
    if owner is None:
        raise DomainError("link.invalid")
    # The app used last first: the one the person will recognise.
    owner_channels = tuple(dict.fromkeys(i.channel for i in await repos.users.identities(owner.id)))
    claimer_channels = tuple(dict.fromkeys(i.channel for i in await repos.users.identities(claimer.id)))
    if set(owner_channels) & set(claimer_channels):
        # One person has one account per app: two on the same app are two people.
        raise DomainError("link.same_channel")
    merged_role(owner, claimer)
    # Two grid workers' accounts: neither may bring the other a grid it did not serve.
    if owner.role == GRID_WORKER and (
        await repos.users.grids_of(owner.id) != await repos.users.grids_of(claimer.id)
    ):
        raise DomainError("link.roles_differ")
    return LinkRequest(code, owner, claimer, owner_channels, claimer_channels)


def _clean_code(code: str) -> str:
    return code.strip().upper()[:16]


async def link_request(repos: Repos, claimer: User, code: str, now: datetime) -> LinkRequest:
    """What typing a code would join, for the typing side to confirm; nothing is stored yet."""
    code = _clean_code(code)
    found = await repos.links.valid(code, now)
    if found is None:
        raise DomainError("link.invalid")
    if found.claimed_by is not None and found.claimed_by != claimer.id:
        raise DomainError("link.invalid")
    return await _link_request(repos, found.user_id, claimer, code)


async def claim_link(repos: Repos, claimer: User, code: str, now: datetime) -> LinkRequest:
    """The typing side confirmed: the code's maker is asked next."""
    request = await link_request(repos, claimer, code, now)
    if not await repos.links.claim(request.code, claimer.id, now):
        raise DomainError("link.invalid")
    return request


async def refuse_link(repos: Repos, owner: User, code: str, now: datetime) -> User | None:
    """The code's maker said no: the code is spent; the account that typed it, to tell them."""
    window = now - timedelta(minutes=LINK_CODE_MINUTES)
    claimer_id = await repos.links.use(_clean_code(code), owner.id, window, now)
    if claimer_id is None:
        raise StaleAction()
    return await repos.users.get(claimer_id)


@dataclass(frozen=True)
class Linked:
    person: User
    link_id: int
    # (channel, external id) of the accounts the merged-away account brought.
    brought: list[tuple[str, str]]


async def link_accounts(repos: Repos, owner: User, via: str, code: str, now: datetime) -> Linked:
    """The code's maker confirmed too: join the two accounts into one person, one history."""
    window = now - timedelta(minutes=LINK_CODE_MINUTES)
    claimer_id = await repos.links.use(_clean_code(code), owner.id, window, now)
    if claimer_id is None:
        raise DomainError("link.invalid")
    claimer = await repos.users.get(claimer_id)
    if claimer is None:
        raise DomainError("link.invalid")
    # Checked again: a role granted or an account linked since the code was typed counts.
    request = await _link_request(repos, owner.id, claimer, code)
    role = merged_role(owner, claimer)
    profile: dict[str, object] = {"role": role}
    for name in ("language", "grid_key", "building", "unit", "privacy_accepted_at", "onboarded_at"):
        if getattr(owner, name) is None and getattr(claimer, name) is not None:
            profile[name] = getattr(claimer, name)
    brought = [(i.channel, i.external_id) for i in await repos.users.identities(claimer.id)]
    await repos.links.merge_users(keep=owner.id, drop=claimer.id, now=now)
    await repos.users.update(owner.id, **profile)
    link_id = await repos.links.record(owner.id, claimer, brought, now)
    await repos.audit.record(
        now,
        audit.LINK_CREATE,
        via=via,
        actor_id=owner.id,
        subject_id=owner.id,
        target=f"link:{link_id}",
        detail={
            "merged_user": claimer.id,
            "role": role,
            "roles": [owner.role, claimer.role],
            "channels": [*request.owner_channels, *request.claimer_channels],
        },
    )
    merged = await repos.users.get(owner.id)
    assert merged is not None
    return Linked(merged, link_id, brought)


LINKS_SHOWN = 10


async def recent_links(repos: Repos, viewer: User) -> list[tuple[AccountLink, User | None]]:
    require_admin(viewer)
    links = await repos.links.recent_links(LINKS_SHOWN)
    people = await repos.users.many([link.user_id for link in links])
    return [(link, people.get(link.user_id)) for link in links]


async def undoable_link(repos: Repos, actor: User | None, link_id: int) -> AccountLink:
    if actor is not None:
        require_admin(actor)
    link = await repos.links.get_link(link_id)
    if link is None:
        raise StaleAction()
    if link.undone_at is not None:
        raise DomainError("link.already_undone")
    return link


@dataclass(frozen=True)
class Unlinked:
    link: AccountLink
    # The person the identities were split off into, and the one they left.
    split: User
    kept: User | None
    moved: list[tuple[str, str]]


async def undo_link(repos: Repos, actor: User | None, via: str, link_id: int, now: datetime) -> Unlinked:
    """Split the accounts a link brought back off into a person of their own.

    What was done while linked (reports, points, sign-ups) stays with the person who kept the link:
    it cannot be told apart. The split-off account starts afresh: onboarding again, and the role
    it had only if that was no staff role (a staff role is granted again, never given back).
    """
    link = await undoable_link(repos, actor, link_id)
    role = link.former_role if link.former_role not in STAFF else RESIDENT
    # One savepoint: a link undone meanwhile by someone else leaves no empty person behind.
    async with repos.connection.begin_nested() as savepoint:
        split = await repos.users.create(link.former_name, now, role=role)
        moved = await repos.links.split_off(link, split.id, now)
        if not moved:
            await savepoint.rollback()
    if not moved:
        raise DomainError("link.already_undone")
    await repos.audit.record(
        now,
        audit.LINK_UNDO,
        via=via,
        actor_id=actor.id if actor is not None else None,
        subject_id=link.user_id,
        target=f"link:{link.id}",
        detail={"split_into": split.id, "role": role, "channels": [channel for channel, _ in moved]},
    )
    return Unlinked(link, split, await repos.users.get(link.user_id), moved)


async def undo_link_of(repos: Repos, channel: str, external_id: str, now: datetime) -> Unlinked:
    """`shouwang link undo`: undo the link that brought this account."""
    link = await repos.links.link_bringing(channel, external_id)
    if link is None:
        raise DomainError("link.not_linked")
    return await undo_link(repos, None, VIA_CLI, link.id, now)


# --- the audit log -----------------------------------------------------------------------

AUDIT_PAGE = 15


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    # Everyone named in the entries who still exists.
    people: dict[int, User]
    # The id to page back from, if older entries may exist.
    older_than: int | None


async def audit_page(
    repos: Repos,
    viewer: User | None,
    *,
    before_id: int | None = None,
    since: datetime | None = None,
    action: str | None = None,
    limit: int = AUDIT_PAGE,
) -> AuditPage:
    """The newest entries; only admins (or the operator, `viewer` None) may read the log."""
    if viewer is not None:
        require_admin(viewer)
    entries = await repos.audit.entries(before_id=before_id, since=since, action=action, limit=limit)
    named = {i for e in entries for i in (e.actor_id, e.subject_id) if i is not None}
    people = await repos.users.many(sorted(named))
    older = entries[-1].id if len(entries) == limit else None
    return AuditPage(entries, people, older)
