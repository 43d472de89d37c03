"""/myreports for reporters, and closing the loop with a 1–5 rating."""

from __future__ import annotations

from handlers import choices, conversation
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import PassToDraft, StaleAction
from handlers.messages import Choice, Lines, Text
from handlers.reports import rules as reports
from handlers.reports.rules import ticket_label
from handlers.reports.views import summary_line

COMMENT_MAX_CHARS = 500


async def list_mine(ctx: Ctx) -> None:
    mine = await ctx.repos.reports.by_reporter(ctx.user.id, limit=10)
    if not mine:
        ctx.say("myreports.none")
        return
    lines = Lines(tuple(summary_line(report, ctx.community) for report in mine))
    ctx.say("myreports.list", count=len(mine), lines=lines)


async def on_rate(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`rate:<report id>:<stars>`; `rate:skip` answers the comment question of the running draft."""
    if parts[1:] == ("skip",):
        raise PassToDraft()
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise StaleAction()
    report = await reports.rate(
        ctx.repos, ctx.community, ctx.user, int(parts[1]), int(parts[2]), ctx.clock.now()
    )
    ctx.notice("rating.thanks_short")
    await conversation.begin(
        ctx,
        COMMENT,
        "comment",
        {"report_id": report.id, "ticket": ticket_label(report), "rating": report.rating},
    )


async def ask_comment(ctx: Ctx) -> None:
    skip = Choice(Text("button.no_comment"), action=choices.encode("rate", "skip"))
    ctx.say("rating.ask_comment", choices=((skip,),), ticket=ctx.data["ticket"], rating=ctx.data["rating"])


async def handle_comment(ctx: Ctx) -> str | None:
    if choices.decode(ctx.inp.action) == ("rate", "skip"):
        ctx.say("rating.thanks")
        return END
    text = ctx.short_answer(COMMENT_MAX_CHARS, "rating.comment_as_text")
    if text is None:
        return None
    await ctx.repos.reports.set_rating_comment(int(ctx.data["report_id"]), text, ctx.clock.now())
    ctx.say("rating.thanks")
    return END


COMMENT = Flow("rating_comment", {"comment": Step(ask_comment, handle_comment)})
