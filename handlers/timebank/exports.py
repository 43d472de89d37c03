"""/export (police, admins): the ledger or the patrol hours → a date range → a CSV file."""

from __future__ import annotations

from handlers import choices, conversation
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError
from handlers.timebank import csv_export, rules, views
from handlers.timebank.views import LAST_MONTH, THIS_MONTH
from storage import audit


def _pressed(ctx: Ctx, verb: str) -> str | None:
    parts = choices.decode(ctx.inp.action)
    if parts and len(parts) == 3 and parts[0] == "exf" and parts[1] == verb:
        return parts[2]
    return None


async def start(ctx: Ctx) -> None:
    rules.require_commander(ctx.user)
    await conversation.begin(ctx, EXPORT, "kind")


async def ask_kind(ctx: Ctx) -> None:
    ctx.response.replies.append(views.ask_export_kind())


async def handle_kind(ctx: Ctx) -> str | None:
    kind = _pressed(ctx, "kind")
    if kind not in rules.EXPORT_KINDS:
        ctx.say("error.stale_button" if ctx.inp.action else "report.use_buttons")
        return None
    ctx.data["kind"] = kind
    return "range"


async def ask_range(ctx: Ctx) -> None:
    first, last = rules.month_range(ctx.repos.ledger.month(ctx.clock.now()))
    ctx.response.replies.append(views.ask_export_range(f"{first.isoformat()} {last.isoformat()}"))


async def handle_range(ctx: Ctx) -> str | None:
    this_month = ctx.repos.ledger.month(ctx.clock.now())
    pressed = _pressed(ctx, "range")
    if pressed == THIS_MONTH:
        first, last = rules.month_range(this_month)
    elif pressed == LAST_MONTH:
        first, last = rules.month_range(rules.previous_period(this_month))
    elif ctx.inp.action:
        ctx.say("error.stale_button")
        return "range"
    else:
        try:
            first, last = rules.parse_date_range(ctx.inp.text or "")
        except DomainError as refused:
            ctx.say(refused.key, **refused.params)
            return "range"
    # Permission before the kind, as for any other refusal of the rules.
    rules.require_commander(ctx.user)
    kind = rules.check_export_kind(str(ctx.data["kind"]))
    tz = ctx.community.tz
    if kind == rules.EXPORT_LEDGER:
        entries = await rules.ledger_rows(ctx.repos, ctx.community, ctx.user, first, last)
        export = csv_export.ledger(entries, tz, first, last)
        key = "export.ready_ledger"
    else:
        hours = await rules.patrol_hours_rows(ctx.repos, ctx.community, ctx.user, first, last)
        export = csv_export.patrol_hours(hours, tz, first, last)
        key = "export.ready_patrol"
    await ctx.repos.audit.record(
        ctx.clock.now(),
        audit.DATA_EXPORT,
        via=ctx.channel,
        actor_id=ctx.user.id,
        target=f"export:{kind}",
        detail={"first": first.isoformat(), "last": last.isoformat(), "rows": export.rows},
    )
    ctx.say(key, document=export.document, rows=export.rows, first=first.isoformat(), last=last.isoformat())
    return END


EXPORT = Flow("export", {"kind": Step(ask_kind, handle_kind), "range": Step(ask_range, handle_range)})
