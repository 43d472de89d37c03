"""/mydata, /deleteme and /erase: what a person can see and remove, and what police do on request."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.errors import PermissionDenied, StaleAction
from handlers.privacy import rules, views
from storage.roles import COMMANDERS

EXPORT = "data.export"
ERASE = "person.erase"


async def my_data(ctx: Ctx) -> None:
    """/mydata: two files, one to read and one for programs, of everything held about the speaker."""
    now = ctx.clock.now()
    export = await rules.export(ctx.repos, ctx.personal_data, ctx.user.id, now)
    await ctx.repos.audit.record(
        now,
        EXPORT,
        via=ctx.channel,
        actor_id=ctx.user.id,
        subject_id=ctx.user.id,
        detail={"rows": export.row_count, "sections": len(export.sections)},
    )
    ctx.response.replies.extend(views.export_replies(export, ctx.community))


async def delete_me(ctx: Ctx) -> None:
    """/deleteme: says what erasure does, and waits for a press."""
    ctx.response.replies.append(views.confirm_self_erase(ctx.user))


async def erase_person(ctx: Ctx) -> None:
    """/erase <channel> <platform user id> (police, admins): a person's request made in person."""
    if ctx.user.role not in COMMANDERS:
        raise PermissionDenied()
    parts = ctx.inp.args.split()
    if len(parts) != 2:
        ctx.say("erase.usage")
        return
    channel, external_id = parts
    target = await rules.find_person(ctx.repos, channel, external_id)
    rules.check_may_erase(ctx.user, target)
    ctx.response.replies.append(views.confirm_erase(target, channel, external_id))


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    match parts[1:]:
        case ("me", user_id) if user_id == str(ctx.user.id):
            await _erase(ctx, ctx.user.id, "deleteme.done")
        case ("who", user_id) if user_id.isdigit():
            await _erase(ctx, int(user_id), "erase.done")
        case ("keep",):
            ctx.say("erase.kept")
        case _:
            raise StaleAction()


async def _erase(ctx: Ctx, user_id: int, done_key: str) -> None:
    target = await ctx.repos.users.get(user_id)
    if target is None:
        raise StaleAction()
    # Checked again at the press: the role may have changed since the question.
    rules.check_may_erase(ctx.user, target)
    now = ctx.clock.now()
    erased = await rules.erase(ctx.repos, ctx.community, ctx.personal_data, target, now)
    await ctx.repos.audit.record(
        now,
        ERASE,
        via=ctx.channel,
        actor_id=ctx.user.id,
        subject_id=target.id,
        detail={"identities": erased.identities, "messages_dropped": erased.messages_dropped},
    )
    ctx.say(done_key)
