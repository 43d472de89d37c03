"""/link: one person on Telegram and WeChat Work becomes one account, once both sides confirm.

The account that types the code confirms first (it sees whose account it joins), then the code's
maker is asked in their own chat; nothing is merged until both said yes. /links lets an admin see
recent links and undo one.
"""

from __future__ import annotations

from datetime import datetime

from handlers import notify
from handlers.accounts import rules as accounts
from handlers.accounts import views
from handlers.community import Community
from handlers.context import Ctx
from handlers.errors import StaleAction
from handlers.messages import Reply, Text, When, reply_to_json
from handlers.registry import MESSAGE
from storage.repositories import Repos


async def link(ctx: Ctx) -> None:
    code = ctx.inp.args.strip()
    now = ctx.clock.now()
    if not code:
        new_code, expires_at = await accounts.create_link_code(ctx.repos, ctx.user, now)
        ctx.say("link.code", code=new_code, expires=When(expires_at), minutes=accounts.LINK_CODE_MINUTES)
        return
    request = await accounts.link_request(ctx.repos, ctx.user, code, now)
    ctx.response.replies.append(views.link_confirm_claim(request))


async def on_link(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`lnk:<verb>:<code>`: the typing side confirms or cancels; the maker confirms or refuses."""
    if len(parts) != 3:
        raise StaleAction()
    verb, code, now = parts[1], parts[2], ctx.clock.now()
    if verb == "claim":
        request = await accounts.claim_link(ctx.repos, ctx.user, code, now)
        # The maker made the code in a private chat, so there is one to ask them in.
        await notify.to_user(ctx.repos, ctx.community, request.owner, views.link_confirm_owner(request), now)
        ctx.say("link.waiting_for_owner", name=views.name(request.owner))
    elif verb == "drop":
        ctx.say("link.cancelled")
    elif verb == "ok":
        linked = await accounts.link_accounts(ctx.repos, ctx.user, ctx.channel, code, now)
        ctx.user = linked.person
        done = Reply(Text("link.done", {"role": Text(f"role.{linked.person.role}")}))
        ctx.response.replies.append(done)
        await _to_accounts(ctx, linked.brought, done)
    elif verb == "no":
        claimer = await accounts.refuse_link(ctx.repos, ctx.user, code, now)
        ctx.say("link.refused_by_you")
        if claimer is not None:
            await notify.to_user(ctx.repos, ctx.community, claimer, Reply(Text("link.refused")), now)
    else:
        raise StaleAction()


async def _to_accounts(ctx: Ctx, accounts_: list[tuple[str, str]], reply: Reply) -> None:
    """Tell the person on the accounts the link brought, which notify.to_user would not pick."""
    brought = set(accounts_)
    for identity in await ctx.repos.users.identities(ctx.user.id):
        if (identity.channel, identity.external_id) in brought and identity.chat_id:
            await ctx.repos.outbox.enqueue(
                identity.channel,
                identity.chat_id,
                ctx.language,
                MESSAGE,
                reply_to_json(reply),
                ctx.clock.now(),
            )


async def list_links(ctx: Ctx) -> None:
    """/links (admins): the latest links, each with an Undo button."""
    shown = await accounts.recent_links(ctx.repos, ctx.user)
    if not shown:
        ctx.say("links.none")
        return
    ctx.response.replies.append(views.links(shown))


async def on_undo(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`lku:ask|do:<link id>`: Undo asks to confirm; the confirmation splits the accounts."""
    if len(parts) != 3 or not parts[2].isdigit():
        raise StaleAction()
    verb, link_id, now = parts[1], int(parts[2]), ctx.clock.now()
    if verb == "ask":
        link = await accounts.undoable_link(ctx.repos, ctx.user, link_id)
        person = await ctx.repos.users.get(link.user_id)
        ctx.response.replies.append(views.confirm_undo(link, person))
        return
    if verb != "do":
        raise StaleAction()
    undone = await accounts.undo_link(ctx.repos, ctx.user, ctx.channel, link_id, now)
    ctx.say("links.undone", name=views.name(undone.kept), split=views.name(undone.split))
    await tell_unlinked(ctx.repos, ctx.community, undone, now)


async def tell_unlinked(repos: Repos, community: Community, undone: accounts.Unlinked, now: datetime) -> None:
    """Both sides hear that their accounts are apart again."""
    if undone.kept is not None:
        await notify.to_user(repos, community, undone.kept, Reply(Text("link.undone_you")), now)
    await notify.to_user(repos, community, undone.split, Reply(Text("link.undone_you")), now)
