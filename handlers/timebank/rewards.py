"""/rewards (browse, redeem, see one's pickup codes) and /redemptions (police approve or reject)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import TypeVar

from handlers import conversation, notify
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError, StaleAction
from handlers.timebank import rules, views
from storage import audit
from storage.rewards import APPROVED

# Redemptions a person sees in /rewards, and pending ones an officer sees in /redemptions.
MINE_SHOWN = 5
PENDING_SHOWN = 10

T = TypeVar("T")


async def _explained(ctx: Ctx, work: Awaitable[T]) -> T:
    """What the rules return, or their refusal with the names its message needs."""
    try:
        return await work
    except DomainError as refused:
        raise views.explained(ctx.community, refused) from None


async def show_rewards(ctx: Ctx) -> None:
    shown = await rules.catalogue_for(ctx.repos, ctx.community, ctx.user, MINE_SHOWN)
    ctx.response.replies.append(views.catalogue(ctx.community, shown))


async def on_redeem(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`rwd:ask|ok|no:<reward key>`: the person's Redeem button, then Confirm or Cancel."""
    if len(parts) != 3:
        raise StaleAction()
    verb, key = parts[1], parts[2]
    if verb == "ask":
        reward, balance = await _explained(ctx, rules.redeemable(ctx.repos, ctx.community, ctx.user, key))
        ctx.response.replies.append(views.confirm_redemption(reward, balance))
    elif verb == "ok":
        now = ctx.clock.now()
        redemption = await _explained(
            ctx, rules.request_redemption(ctx.repos, ctx.community, ctx.user, key, now)
        )
        card = views.request_card(ctx.community, ctx.user, redemption)
        await notify.to_police(ctx.repos, ctx.community, card, now)
        ctx.response.replies.append(views.redemption_requested(ctx.community, redemption))
    elif verb == "no":
        ctx.say("reward.not_redeemed")
    else:
        raise StaleAction()


async def list_pending(ctx: Ctx) -> None:
    shown, total, people = await rules.pending_redemptions(ctx.repos, ctx.user, PENDING_SHOWN)
    ctx.response.replies.append(views.pending(ctx.community, shown, total, people))


async def _tell_decided(ctx: Ctx, decided: rules.Decided, now: datetime) -> None:
    """The volunteer hears the outcome; the other officers get a short note; the log records it."""
    redemption = decided.redemption
    await ctx.repos.audit.record(
        now,
        audit.REDEMPTION_APPROVE if redemption.state == APPROVED else audit.REDEMPTION_REJECT,
        via=ctx.channel,
        actor_id=ctx.user.id,
        subject_id=redemption.user_id,
        target=f"redemption:{redemption.id}",
        detail={"reward": redemption.reward_key},
    )
    if decided.person is not None:
        if redemption.state == APPROVED:
            told = views.redemption_approved(ctx.community, redemption)
        else:
            told = views.redemption_rejected(ctx.community, redemption)
        await notify.to_user(ctx.repos, ctx.community, decided.person, told, now)
    note = views.redemption_decided(ctx.community, ctx.user, redemption)
    await notify.to_police(ctx.repos, ctx.community, note, now)


async def on_decide(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`rdm:ok|no|oos:<redemption id>`: approve, reject with a reason, or reject as out of stock."""
    if len(parts) != 3 or not parts[2].isdigit():
        raise StaleAction()
    verb, redemption_id, now = parts[1], int(parts[2]), ctx.clock.now()
    if verb == "ok":
        try:
            approved = await rules.approve_redemption(ctx.repos, ctx.community, ctx.user, redemption_id, now)
        except rules.OutOfStock as empty:
            # None left: offer to reject it as out of stock, which gives the points back.
            refused = views.explained(ctx.community, empty)
            buttons = views.reject_no_stock_button(redemption_id)
            ctx.say(refused.key, choices=buttons, **refused.params)
            ctx.notice(refused.key, **refused.params)
            return
        except DomainError as refused:
            raise views.explained(ctx.community, refused) from None
        await _tell_decided(ctx, approved, now)
        ctx.response.replies.append(views.approved_by_you(ctx.community, approved.redemption))
        ctx.notice("reward.approved_short", id=approved.redemption.id)
    elif verb == "oos":
        rejected = await _explained(
            ctx, rules.reject_redemption(ctx.repos, ctx.community, ctx.user, redemption_id, None, now)
        )
        await _tell_decided(ctx, rejected, now)
        ctx.say("reward.rejected_by_you", id=rejected.redemption.id)
        ctx.notice("reward.rejected_by_you", id=rejected.redemption.id)
    elif verb == "no":
        redemption = await _explained(ctx, rules.pending_redemption(ctx.repos, ctx.user, redemption_id))
        await conversation.begin(
            ctx, REJECT, "reason", {"redemption_id": redemption.id, "reward": redemption.reward_key}
        )
        if ctx.inp.is_group:
            ctx.notice("review.see_private_chat")
    else:
        raise StaleAction()


async def ask_reject_reason(ctx: Ctx) -> None:
    ctx.response.replies.append(
        views.ask_reject_reason(ctx.community, int(ctx.data["redemption_id"]), str(ctx.data["reward"]))
    )


async def handle_reject_reason(ctx: Ctx) -> str | None:
    reason = ctx.short_answer(rules.REASON_MAX_CHARS, "timebank.need_reason")
    if reason is None:
        return "reason"
    now = ctx.clock.now()
    try:
        rejected = await _explained(
            ctx,
            rules.reject_redemption(
                ctx.repos, ctx.community, ctx.user, int(ctx.data["redemption_id"]), reason, now
            ),
        )
    except DomainError as refused:
        # Decided by someone else meanwhile: nothing to type again.
        ctx.say(refused.key, **refused.params)
        return END
    await _tell_decided(ctx, rejected, now)
    ctx.say("reward.rejected_by_you", id=rejected.redemption.id)
    return END


REJECT = Flow("redemption_reject", {"reason": Step(ask_reject_reason, handle_reject_reason)})
