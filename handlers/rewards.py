"""/rewards (browse, redeem, see one's pickup codes) and /redemptions (police approve or reject)."""

from __future__ import annotations

from handlers import choices, conversation
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError, StaleAction
from handlers.messages import Choice, Lines, Localized, Reply, Text, Verbatim, When
from handlers.services import timebank as bank
from storage.rewards import APPROVED, PENDING

# Redemptions a person sees in /rewards, and pending ones an officer sees in /redemptions.
MINE_SHOWN = 5
PENDING_SHOWN = 10


async def show_rewards(ctx: Ctx) -> None:
    items = await bank.catalogue(ctx.repos, ctx.community)
    balance = await ctx.repos.ledger.balance(ctx.user.id)
    if not items:
        ctx.say("reward.catalogue_empty", balance=balance)
        return
    lines: list[Text] = [Text("reward.catalogue", {"balance": balance})]
    for item in items:
        if item.left is None:
            left = Text("reward.unlimited")
        elif item.left > 0:
            left = Text("reward.left", {"count": item.left})
        else:
            left = Text("reward.sold_out")
        lines.append(
            Text(
                "reward.item",
                {"reward": Localized(dict(item.reward.names)), "cost": item.reward.cost, "left": left},
            )
        )
    mine = await ctx.repos.rewards.of_user(ctx.user.id, (PENDING, APPROVED), MINE_SHOWN)
    if mine:
        lines.append(Text("reward.mine_header"))
    for redemption in mine:
        name = bank.reward_name(ctx.community, redemption.reward_key)
        if redemption.state == PENDING:
            lines.append(Text("reward.mine_pending", {"id": redemption.id, "reward": name}))
        else:
            lines.append(
                Text(
                    "reward.mine_approved",
                    {"id": redemption.id, "reward": name, "code": redemption.pickup_code or ""},
                )
            )
    buttons = tuple(
        (
            Choice(
                Text(
                    "reward.button_redeem",
                    {"reward": Localized(dict(item.reward.names)), "cost": item.reward.cost},
                ),
                action=choices.encode("rwd", "ask", item.reward.key),
            ),
        )
        for item in items
        if item.available
    )
    ctx.response.replies.append(Reply(Lines(tuple(lines)), buttons))


async def on_redeem(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`rwd:ask|ok|no:<reward key>`: the person's Redeem button, then Confirm or Cancel."""
    if len(parts) != 3:
        raise StaleAction()
    verb, key = parts[1], parts[2]
    if verb == "ask":
        reward, balance = await bank.redeemable(ctx.repos, ctx.community, ctx.user, key)
        row = (
            Choice(Text("timebank.button_confirm"), action=choices.encode("rwd", "ok", reward.key)),
            Choice(Text("timebank.button_cancel"), action=choices.encode("rwd", "no", reward.key)),
        )
        ctx.say(
            "reward.confirm",
            choices=(row,),
            reward=Localized(dict(reward.names)),
            cost=reward.cost,
            balance=balance,
            after=balance - reward.cost,
        )
    elif verb == "ok":
        redemption = await bank.request_redemption(ctx.repos, ctx.community, ctx.user, key, ctx.clock.now())
        ctx.say(
            "reward.requested",
            id=redemption.id,
            reward=bank.reward_name(ctx.community, key),
            cost=redemption.cost,
        )
    elif verb == "no":
        ctx.say("reward.not_redeemed")
    else:
        raise StaleAction()


async def list_pending(ctx: Ctx) -> None:
    bank.require_commander(ctx.user)
    pending = await ctx.repos.rewards.pending(PENDING_SHOWN)
    if not pending:
        ctx.say("reward.none_pending")
        return
    total = await ctx.repos.rewards.count_pending()
    people = await ctx.repos.users.many([r.user_id for r in pending])
    lines: list[Text] = [Text("reward.pending_header", {"count": total, "shown": len(pending)})]
    rows: list[tuple[Choice, ...]] = []
    for redemption in pending:
        person = people.get(redemption.user_id)
        lines.append(
            Text(
                "reward.pending_line",
                {
                    "id": redemption.id,
                    "person": bank.person_label(ctx.community, person) if person else Verbatim("?"),
                    "reward": bank.reward_name(ctx.community, redemption.reward_key),
                    "cost": redemption.cost,
                    "when": When(redemption.created_at),
                },
            )
        )
        rows.append(
            (
                Choice(
                    Text("reward.button_approve_id", {"id": redemption.id}),
                    action=choices.encode("rdm", "ok", redemption.id),
                ),
                Choice(
                    Text("reward.button_reject_id", {"id": redemption.id}),
                    action=choices.encode("rdm", "no", redemption.id),
                ),
            )
        )
    ctx.response.replies.append(Reply(Lines(tuple(lines)), tuple(rows)))


async def on_decide(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`rdm:ok|no|oos:<redemption id>`: approve, reject with a reason, or reject as out of stock."""
    if len(parts) != 3 or not parts[2].isdigit():
        raise StaleAction()
    verb, redemption_id, now = parts[1], int(parts[2]), ctx.clock.now()
    if verb == "ok":
        try:
            approved = await bank.approve_redemption(ctx.repos, ctx.community, ctx.user, redemption_id, now)
        except bank.OutOfStock as empty:
            reject = Choice(
                Text("reward.button_reject_no_stock"), action=choices.encode("rdm", "oos", redemption_id)
            )
            ctx.say(empty.key, choices=((reject,),), **empty.params)
            ctx.notice(empty.key, **empty.params)
            return
        ctx.say(
            "reward.approved_by_you",
            id=approved.id,
            reward=bank.reward_name(ctx.community, approved.reward_key),
            code=approved.pickup_code or "",
        )
        ctx.notice("reward.approved_short", id=approved.id)
    elif verb == "oos":
        rejected = await bank.reject_redemption(ctx.repos, ctx.community, ctx.user, redemption_id, None, now)
        ctx.say("reward.rejected_by_you", id=rejected.id)
        ctx.notice("reward.rejected_by_you", id=rejected.id)
    elif verb == "no":
        redemption = await bank.pending_redemption(ctx.repos, ctx.user, redemption_id)
        await conversation.begin(
            ctx, REJECT, "reason", {"redemption_id": redemption.id, "reward": redemption.reward_key}
        )
        if ctx.inp.is_group:
            ctx.notice("review.see_private_chat")
    else:
        raise StaleAction()


async def ask_reject_reason(ctx: Ctx) -> None:
    ctx.say(
        "reward.ask_reject_reason",
        id=ctx.data["redemption_id"],
        reward=bank.reward_name(ctx.community, str(ctx.data["reward"])),
    )


async def handle_reject_reason(ctx: Ctx) -> str | None:
    reason = ctx.short_answer(bank.REASON_MAX_CHARS, "timebank.need_reason")
    if reason is None:
        return "reason"
    try:
        rejected = await bank.reject_redemption(
            ctx.repos, ctx.community, ctx.user, int(ctx.data["redemption_id"]), reason, ctx.clock.now()
        )
    except DomainError as refused:
        # Decided by someone else meanwhile: nothing to type again.
        ctx.say(refused.key, **refused.params)
        return END
    ctx.say("reward.rejected_by_you", id=rejected.id)
    return END


REJECT = conversation.register(
    Flow("redemption_reject", {"reason": Step(ask_reject_reason, handle_reject_reason)})
)
