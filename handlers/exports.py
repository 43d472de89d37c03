"""/export (police, admins): the ledger or the patrol hours → a date range → a CSV file."""

from __future__ import annotations

from handlers import choices, conversation
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError
from handlers.messages import Choice, Text
from handlers.services import timebank as bank

THIS_MONTH, LAST_MONTH = "this", "last"


def _pressed(ctx: Ctx, verb: str) -> str | None:
    parts = choices.decode(ctx.inp.action)
    if parts and len(parts) == 3 and parts[0] == "exf" and parts[1] == verb:
        return parts[2]
    return None


async def start(ctx: Ctx) -> None:
    bank.require_commander(ctx.user)
    await conversation.begin(ctx, EXPORT, "kind")


async def ask_kind(ctx: Ctx) -> None:
    row = (
        Choice(Text("export.button_ledger"), action=choices.encode("exf", "kind", bank.EXPORT_LEDGER)),
        Choice(Text("export.button_patrol"), action=choices.encode("exf", "kind", bank.EXPORT_PATROL_HOURS)),
    )
    ctx.say("export.ask_kind", choices=(row,))


async def handle_kind(ctx: Ctx) -> str | None:
    kind = _pressed(ctx, "kind")
    if kind not in bank.EXPORT_KINDS:
        ctx.say("error.stale_button" if ctx.inp.action else "report.use_buttons")
        return None
    ctx.data["kind"] = kind
    return "range"


async def ask_range(ctx: Ctx) -> None:
    row = (
        Choice(Text("export.button_this_month"), action=choices.encode("exf", "range", THIS_MONTH)),
        Choice(Text("export.button_last_month"), action=choices.encode("exf", "range", LAST_MONTH)),
    )
    first, last = bank.month_range(ctx.repos.ledger.month(ctx.clock.now()))
    ctx.say("export.ask_range", choices=(row,), example=f"{first.isoformat()} {last.isoformat()}")


async def handle_range(ctx: Ctx) -> str | None:
    this_month = ctx.repos.ledger.month(ctx.clock.now())
    pressed = _pressed(ctx, "range")
    if pressed == THIS_MONTH:
        first, last = bank.month_range(this_month)
    elif pressed == LAST_MONTH:
        first, last = bank.month_range(bank.previous_period(this_month))
    elif ctx.inp.action:
        ctx.say("error.stale_button")
        return "range"
    else:
        try:
            first, last = bank.parse_date_range(ctx.inp.text or "")
        except DomainError as refused:
            ctx.say(refused.key, **refused.params)
            return "range"
    export = await bank.export_csv(ctx.repos, ctx.community, ctx.user, str(ctx.data["kind"]), first, last)
    key = "export.ready_ledger" if ctx.data["kind"] == bank.EXPORT_LEDGER else "export.ready_patrol"
    ctx.say(key, document=export.document, rows=export.rows, first=first.isoformat(), last=last.isoformat())
    return END


EXPORT = conversation.register(
    Flow("export", {"kind": Step(ask_kind, handle_kind), "range": Step(ask_range, handle_range)})
)
