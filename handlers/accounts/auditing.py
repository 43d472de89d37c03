"""/audit (admins): the latest entries of the audit log, newest first, with a button to page back."""

from __future__ import annotations

from handlers.accounts import rules as accounts
from handlers.accounts import views
from handlers.context import Ctx
from handlers.errors import StaleAction


async def show_audit(ctx: Ctx) -> None:
    page = await accounts.audit_page(ctx.repos, ctx.user)
    if not page.entries:
        ctx.say("audit.none")
        return
    ctx.response.replies.append(views.audit_page(page))


async def on_audit(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`aud:older:<entry id>`: the page before that entry."""
    if len(parts) != 3 or parts[1] != "older" or not parts[2].isdigit():
        raise StaleAction()
    page = await accounts.audit_page(ctx.repos, ctx.user, before_id=int(parts[2]))
    if not page.entries:
        ctx.say("audit.no_older")
        return
    ctx.response.replies.append(views.audit_page(page))
