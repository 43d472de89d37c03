"""/roles (admins): who holds a staff role, and taking one back; everyone concerned is told."""

from __future__ import annotations

from datetime import datetime

from handlers import notify
from handlers.accounts import rules as accounts
from handlers.accounts import views
from handlers.community import Community
from handlers.context import Ctx
from handlers.errors import StaleAction
from handlers.messages import Text
from storage.repositories import Repos


async def announce(repos: Repos, community: Community, change: accounts.RoleChange, now: datetime) -> None:
    """The person and the police hear of every grant and revocation, each in their own language."""
    granted = change.person.role != accounts.RESIDENT
    to_person = views.role_granted_to_you(change) if granted else views.role_revoked_from_you(change)
    await notify.to_user(repos, community, change.person, to_person, now)
    note = views.role_granted_note(change) if granted else views.role_revoked_note(change)
    await notify.to_police(repos, community, note, now)


async def list_staff(ctx: Ctx) -> None:
    members = await accounts.staff(ctx.repos, ctx.user)
    if not members:
        ctx.say("roles.none")
        return
    ctx.response.replies.append(views.staff_list(members))


async def on_roles(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`rol:ask|do|drop:<user id>`: Revoke asks to confirm; the confirmation takes the role back."""
    if len(parts) != 3 or not parts[2].isdigit():
        raise StaleAction()
    verb, person_id, now = parts[1], int(parts[2]), ctx.clock.now()
    if verb == "ask":
        person = await accounts.revocable(ctx.repos, ctx.user, person_id)
        ctx.response.replies.append(views.confirm_revoke(person))
    elif verb == "do":
        change = await accounts.revoke_role(ctx.repos, ctx.user, ctx.channel, person_id, now)
        ctx.say("roles.revoked", name=views.name(change.person), previous=Text(f"role.{change.previous}"))
        await announce(ctx.repos, ctx.community, change, now)
    elif verb == "drop":
        ctx.say("roles.kept")
    else:
        raise StaleAction()
