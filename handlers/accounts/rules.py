"""Who people are: roles, invites, linked accounts, onboarding facts.

Finding the person behind a platform identity on every input is the engine's (handlers/router.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers.community import LANGUAGES, Community
from handlers.errors import DomainError, PermissionDenied
from handlers.text import clean_name
from storage.models import Invite, User
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
    """Set a role from the command line; the person need not have talked to the bot yet."""
    if role not in ROLES:
        raise DomainError("error.unknown_role", role=role)
    display_name = clean_name(display_name) if display_name else None
    found = await repos.users.by_identity(channel, external_id)
    if found is None:
        user = await repos.users.create(display_name or external_id, now, role=role)
        await repos.users.add_identity(channel, external_id, user.id, None, now)
    else:
        user = found[0]
        await repos.users.update(user.id, role=role)
        if display_name:
            await repos.users.update(user.id, display_name=display_name)
    for grid_key in grid_keys:
        await repos.users.assign_grid(user.id, grid_key)
    refreshed = await repos.users.get(user.id)
    assert refreshed is not None
    return refreshed


async def create_invite(
    repos: Repos, community: Community, actor: User, role: str, grid_key: str | None, now: datetime
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
    return InviteCreated(code, role, expires_at)


async def redeem_invite(repos: Repos, user: User, code: str, now: datetime) -> Invite:
    invite = await repos.invites.get(code)
    if invite is None:
        raise DomainError("invite.invalid")
    if invite.used_by is not None:
        raise DomainError("invite.used")
    if invite.expires_at <= now:
        raise DomainError("invite.expired")
    if not await repos.invites.redeem(code, user.id, now):
        raise DomainError("invite.used")
    await repos.users.update(user.id, role=invite.role)
    if invite.grid_key:
        await repos.users.assign_grid(user.id, invite.grid_key)
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


async def link_accounts(repos: Repos, user: User, code: str, now: datetime) -> User:
    """Join the account the code was made on with this one: one person, one role, one history."""
    owner_id = await repos.links.redeem(code.strip().upper(), now)
    if owner_id is None:
        raise DomainError("link.invalid")
    if owner_id == user.id:
        raise DomainError("link.same_account")
    owner = await repos.users.get(owner_id)
    assert owner is not None
    # The person keeps the more trusted of their two roles and whatever profile they completed.
    role = max(owner.role, user.role, key=ROLES.index)
    profile: dict[str, object] = {"role": role}
    for name in ("language", "grid_key", "building", "unit", "privacy_accepted_at", "onboarded_at"):
        if getattr(owner, name) is None and getattr(user, name) is not None:
            profile[name] = getattr(user, name)
    await repos.links.merge_users(keep=owner.id, drop=user.id, now=now)
    await repos.users.update(owner.id, **profile)
    merged = await repos.users.get(owner.id)
    assert merged is not None
    return merged
