"""/link: one person on Telegram and WeChat Work becomes one account."""

from __future__ import annotations

from handlers.accounts import rules as accounts
from handlers.context import Ctx
from handlers.messages import Text, When


async def link(ctx: Ctx) -> None:
    code = ctx.inp.args.strip()
    now = ctx.clock.now()
    if not code:
        new_code, expires_at = await accounts.create_link_code(ctx.repos, ctx.user, now)
        ctx.say("link.code", code=new_code, expires=When(expires_at), minutes=accounts.LINK_CODE_MINUTES)
        return
    ctx.user = await accounts.link_accounts(ctx.repos, ctx.user, code, now)
    ctx.say("link.done", role=Text(f"role.{ctx.user.role}"))
