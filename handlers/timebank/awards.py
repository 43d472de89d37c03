"""/award (police, admins): person → points → reason → confirm; and revoking an award with a reason."""

from __future__ import annotations

import re
import secrets
import unicodedata

from handlers import choices, conversation, notify
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError, StaleAction
from handlers.reports import rules as reports
from handlers.timebank import rules, views
from storage import audit

# Buttons offered when a typed name matches several people.
PEOPLE_SHOWN = 8
_TICKET_RE = re.compile(r"^[#＃]?\s*\d{4}-\d{1,6}$")


def _pressed(ctx: Ctx, verb: str) -> str | None:
    """The argument of an award-flow button of kind `verb`, if that is what was pressed."""
    parts = choices.decode(ctx.inp.action)
    if parts and len(parts) == 3 and parts[0] == "awf" and parts[1] == verb:
        return parts[2]
    return None


def _name(ctx: Ctx) -> str:
    return str(ctx.data.get("name", ""))


async def start(ctx: Ctx) -> None:
    rules.require_commander(ctx.user)
    await conversation.begin(ctx, AWARD, "person")


async def ask_person(ctx: Ctx) -> None:
    ctx.say("award.ask_person")


async def _choose(ctx: Ctx, person_id: int) -> str | None:
    try:
        person = await rules.awardable_person(ctx.repos, ctx.user, person_id)
    except DomainError as refused:
        ctx.say(refused.key, **refused.params)
        return "person"
    ctx.data.update(person_id=person.id, name=person.display_name)
    return "points"


async def handle_person(ctx: Ctx) -> str | None:
    picked = _pressed(ctx, "who")
    if picked is not None and picked.isdigit():
        return await _choose(ctx, int(picked))
    if ctx.inp.action:
        ctx.say("error.stale_button")
        return "person"
    text = unicodedata.normalize("NFKC", ctx.inp.text or "").strip()
    if not text:
        return None
    if _TICKET_RE.match(text):
        report = await reports.find_by_ticket(ctx.repos, text)
        if report is None:
            ctx.response.replies.append(views.no_such_ticket(text[:20]))
            return "person"
        if report.anonymous:
            # The award dialogue names the person behind the ticket: a view like any other.
            await ctx.repos.audit.record(
                ctx.clock.now(),
                audit.REPORT_REVEAL_REPORTER,
                via=ctx.channel,
                actor_id=ctx.user.id,
                subject_id=report.reporter_id,
                target=f"report:{report.ticket}",
                detail={"seen_in": "award"},
            )
        return await _choose(ctx, report.reporter_id)
    people, more = await rules.find_people(ctx.repos, ctx.user, text[:64], PEOPLE_SHOWN)
    if not people:
        ctx.response.replies.append(views.nobody_found(text[:64]))
        return "person"
    ctx.response.replies.append(views.people_to_pick(ctx.community, people, more))
    return "person"


async def ask_points(ctx: Ctx) -> None:
    ctx.response.replies.append(views.ask_award_points(_name(ctx), ctx.community.timebank.award_max_points))


async def handle_points(ctx: Ctx) -> str | None:
    text = unicodedata.normalize("NFKC", ctx.inp.text or "").strip()
    try:
        ctx.data["points"] = rules.check_award_points(ctx.community, int(text))
    except ValueError:
        ctx.say("award.points_out_of_range", max=ctx.community.timebank.award_max_points)
        return "points"
    except DomainError as refused:
        ctx.say(refused.key, **refused.params)
        return "points"
    return "reason"


async def ask_reason(ctx: Ctx) -> None:
    ctx.response.replies.append(views.ask_award_reason(_name(ctx), int(ctx.data["points"])))


async def handle_reason(ctx: Ctx) -> str | None:
    reason = ctx.short_answer(rules.REASON_MAX_CHARS, "timebank.need_reason")
    if reason is None:
        return "reason"
    ctx.data["reason"] = reason
    return "confirm"


async def ask_confirm(ctx: Ctx) -> None:
    # The nonce names this award in the ledger: pressing Confirm twice cannot award twice.
    ctx.data.setdefault("nonce", secrets.token_hex(8))
    ctx.response.replies.append(
        views.confirm_award(_name(ctx), int(ctx.data["points"]), str(ctx.data["reason"]))
    )


async def handle_confirm(ctx: Ctx) -> str | None:
    if _pressed(ctx, "no"):
        ctx.say("award.cancelled")
        return END
    if not _pressed(ctx, "ok"):
        ctx.say("error.stale_button" if ctx.inp.action else "report.use_buttons")
        return "confirm"
    now = ctx.clock.now()
    given = await rules.award(
        ctx.repos,
        ctx.community,
        ctx.user,
        int(ctx.data["person_id"]),
        int(ctx.data["points"]),
        str(ctx.data["reason"]),
        str(ctx.data["nonce"]),
        now,
    )
    if given is None:
        ctx.say("award.already_done")
        return END
    await ctx.repos.audit.record(
        now,
        audit.POINTS_AWARD,
        via=ctx.channel,
        actor_id=ctx.user.id,
        subject_id=given.person.id,
        target=f"ledger:{given.entry_id}",
        detail={"points": given.points},
    )
    await notify.to_user(ctx.repos, ctx.community, given.person, views.award_received(given, ctx.user), now)
    ctx.response.replies.append(views.award_done(given))
    return END


AWARD = Flow(
    "award",
    {
        "person": Step(ask_person, handle_person),
        "points": Step(ask_points, handle_points),
        "reason": Step(ask_reason, handle_reason),
        "confirm": Step(ask_confirm, handle_confirm),
    },
)


# --- revoking ----------------------------------------------------------------------------


async def on_revoke(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`awv:rev:<ledger entry id>`, the button under an officer's award confirmation."""
    if len(parts) != 3 or parts[1] != "rev" or not parts[2].isdigit():
        raise StaleAction()
    entry = await rules.revocable_award(ctx.repos, ctx.user, int(parts[2]))
    person = await ctx.repos.users.get(entry.user_id)
    name = person.display_name if person is not None else ""
    await conversation.begin(
        ctx, REVOKE, "reason", {"entry_id": entry.id, "points": entry.amount, "name": name}
    )
    if ctx.inp.is_group:
        ctx.notice("review.see_private_chat")


async def ask_revoke_reason(ctx: Ctx) -> None:
    ctx.response.replies.append(views.ask_revoke_reason(_name(ctx), int(ctx.data["points"])))


async def handle_revoke_reason(ctx: Ctx) -> str | None:
    reason = ctx.short_answer(rules.REASON_MAX_CHARS, "timebank.need_reason")
    if reason is None:
        return "reason"
    now = ctx.clock.now()
    try:
        revoked = await rules.revoke_award(
            ctx.repos, ctx.community, ctx.user, int(ctx.data["entry_id"]), reason, now
        )
    except DomainError as refused:
        # Typing again would not change the answer: end here, with the reason why.
        ctx.say(refused.key, **refused.params)
        return END
    await ctx.repos.audit.record(
        now,
        audit.POINTS_REVOKE,
        via=ctx.channel,
        actor_id=ctx.user.id,
        subject_id=revoked.entry.user_id,
        target=f"ledger:{revoked.entry.id}",
        detail={"points": revoked.entry.amount},
    )
    if revoked.person is not None:
        await notify.to_user(
            ctx.repos, ctx.community, revoked.person, views.award_revoked(revoked, ctx.user), now
        )
    ctx.response.replies.append(views.revoke_done(_name(ctx), revoked.entry.amount))
    return END


REVOKE = Flow("award_revoke", {"reason": Step(ask_revoke_reason, handle_revoke_reason)})
