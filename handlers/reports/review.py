"""The police and grid-worker side: acknowledge, assign, start, resolve, reject, mark duplicate."""

from __future__ import annotations

from handlers import choices, conversation
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import StaleAction
from handlers.messages import Choice, Text, Verbatim
from handlers.reports import rules as reports
from handlers.reports import tell
from handlers.reports.rules import ticket_label

NOTE_MAX_CHARS = 500


def _ticket(ctx: Ctx) -> str:
    return str(ctx.data.get("ticket", ""))


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """A `rep:<verb>:<id>[:<arg>]` button, pressed on a card or in a private message."""
    if len(parts) < 3 or not parts[2].isdigit():
        raise StaleAction()
    verb, report_id = parts[1], int(parts[2])
    now = ctx.clock.now()
    report = await reports.load(ctx.repos, report_id)
    if verb == "ack":
        moved = await reports.acknowledge(ctx.repos, ctx.community, ctx.user, report_id, now)
        await tell.moved(ctx.repos, ctx.community, moved, now)
        ctx.notice("review.acknowledged", ticket=ticket_label(moved.report))
    elif verb == "start":
        moved = await reports.start_work(ctx.repos, ctx.community, ctx.user, report_id, now)
        await tell.moved(ctx.repos, ctx.community, moved, now)
        ctx.say("review.started", ticket=ticket_label(moved.report))
    elif verb == "asg":
        workers = await reports.assignable_workers(ctx.repos, ctx.user, report)
        if not workers:
            ctx.say("review.no_workers", ticket=ticket_label(report))
            return
        rows = tuple(
            (
                Choice(
                    Text("button.worker", {"name": Verbatim(w.display_name)}),
                    action=choices.encode("rep", "to", report.id, w.id),
                ),
            )
            for w in workers
        )
        ctx.say("review.pick_worker", choices=rows, ticket=ticket_label(report))
        _point_to_private_chat(ctx)
    elif verb == "to" and len(parts) == 4 and parts[3].isdigit():
        moved = await reports.assign(ctx.repos, ctx.community, ctx.user, report_id, int(parts[3]), now)
        await tell.moved(ctx.repos, ctx.community, moved, now)
        ctx.say("review.assigned", ticket=ticket_label(moved.report))
    elif verb == "res":
        await reports.check_can_resolve(ctx.repos, ctx.user, report)
        await conversation.begin(
            ctx, RESOLVE, "note", {"report_id": report.id, "ticket": ticket_label(report)}
        )
        _point_to_private_chat(ctx)
    elif verb == "rej":
        reports.check_can_reject(ctx.user, report)
        await conversation.begin(
            ctx, REJECT, "reason", {"report_id": report.id, "ticket": ticket_label(report)}
        )
        _point_to_private_chat(ctx)
    elif verb == "dup":
        reports.check_can_mark_duplicate(ctx.user, report)
        await conversation.begin(
            ctx, DUPLICATE, "original", {"report_id": report.id, "ticket": ticket_label(report)}
        )
        _point_to_private_chat(ctx)
    else:
        raise StaleAction()


def _point_to_private_chat(ctx: Ctx) -> None:
    if ctx.inp.is_group:
        ctx.notice("review.see_private_chat")


def _note(ctx: Ctx) -> str | None:
    return ctx.short_answer(NOTE_MAX_CHARS, "review.need_text")


async def ask_resolution_note(ctx: Ctx) -> None:
    ctx.say("review.ask_resolution_note", ticket=_ticket(ctx))


async def handle_resolution_note(ctx: Ctx) -> str | None:
    note = _note(ctx)
    if note is None:
        return None
    ctx.data["note"] = note
    return "after_photo"


def _skip_button() -> tuple[tuple[Choice, ...], ...]:
    return ((Choice(Text("button.no_photo"), action=choices.encode("rev", "nophoto")),),)


async def ask_after_photo(ctx: Ctx) -> None:
    ctx.say("review.ask_after_photo", choices=_skip_button(), ticket=_ticket(ctx))


async def handle_after_photo(ctx: Ctx) -> str | None:
    media_id: int | None = None
    if ctx.inp.photo is not None:
        media_id = await ctx.media.save_photo(ctx.repos, ctx.inp.photo, ctx.clock.now())
    elif choices.decode(ctx.inp.action) != ("rev", "nophoto") and (
        ctx.inp.text or ""
    ).strip().lower() not in ("skip", "跳过", "略過", "no", "无", "無"):
        ctx.say("review.photo_or_skip")
        return None
    moved = await reports.resolve(
        ctx.repos,
        ctx.community,
        ctx.user,
        int(ctx.data["report_id"]),
        ctx.data["note"],
        media_id,
        ctx.clock.now(),
    )
    await tell.moved(ctx.repos, ctx.community, moved, ctx.clock.now())
    ctx.say("review.resolved", ticket=ticket_label(moved.report))
    return END


async def ask_reason(ctx: Ctx) -> None:
    ctx.say("review.ask_reject_reason", ticket=_ticket(ctx))


async def handle_reason(ctx: Ctx) -> str | None:
    reason = _note(ctx)
    if reason is None:
        return None
    moved = await reports.reject(
        ctx.repos, ctx.community, ctx.user, int(ctx.data["report_id"]), reason, ctx.clock.now()
    )
    await tell.moved(ctx.repos, ctx.community, moved, ctx.clock.now())
    ctx.say("review.rejected", ticket=ticket_label(moved.report))
    return END


async def ask_original(ctx: Ctx) -> None:
    ctx.say("review.ask_original", ticket=_ticket(ctx))


async def handle_original(ctx: Ctx) -> str | None:
    original = await reports.find_by_ticket(ctx.repos, ctx.inp.text or "")
    if original is None:
        ctx.say("review.no_such_ticket", text=Verbatim((ctx.inp.text or "")[:20]))
        return None
    moved = await reports.mark_duplicate(
        ctx.repos, ctx.community, ctx.user, int(ctx.data["report_id"]), original, ctx.clock.now()
    )
    await tell.moved(ctx.repos, ctx.community, moved, ctx.clock.now())
    ctx.say("review.marked_duplicate", ticket=ticket_label(moved.report), original=ticket_label(original))
    return END


RESOLVE = Flow(
    "resolve",
    {
        "note": Step(ask_resolution_note, handle_resolution_note),
        "after_photo": Step(ask_after_photo, handle_after_photo),
    },
)
REJECT = Flow("reject", {"reason": Step(ask_reason, handle_reason)})
DUPLICATE = Flow("duplicate", {"original": Step(ask_original, handle_original)})
