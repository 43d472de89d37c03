"""The time bank's messages and buttons, built from what rules.py returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handlers import choices
from handlers.community import Community, Reward
from handlers.errors import DomainError
from handlers.messages import Choice, Lines, Localized, Reply, Text, Verbatim, When
from handlers.timebank import rules
from storage.models import Honour, Redemption, User
from storage.rewards import APPROVED, PENDING, REJECTED

Buttons = tuple[tuple[Choice, ...], ...]

_STATE_KEYS = {
    PENDING: "reward.state_pending",
    APPROVED: "reward.state_approved",
    REJECTED: "reward.state_rejected",
}


def person_label(community: Community, user: User) -> Text:
    """A person as an officer picks them: name, building and grid."""
    grid = community.grid(user.grid_key) if user.grid_key else None
    grid_name: Text | Verbatim = Verbatim(grid.name) if grid else Text("report.no_grid")
    if user.building:
        return Text(
            "timebank.person_building",
            {"name": Verbatim(user.display_name), "building": Verbatim(user.building), "grid": grid_name},
        )
    return Text("timebank.person", {"name": Verbatim(user.display_name), "grid": grid_name})


def _role(user: User) -> Text:
    return Text(f"role.{user.role}")


def _confirm_or_cancel(kind: str, argument: str | int) -> tuple[Choice, ...]:
    return (
        Choice(Text("timebank.button_confirm"), action=choices.encode(kind, "ok", argument)),
        Choice(Text("timebank.button_cancel"), action=choices.encode(kind, "no", argument)),
    )


def explained(community: Community, refused: DomainError) -> DomainError:
    """A refusal of the rules about a reward, naming the reward (and the redemption's state)."""
    params = dict(refused.params)
    if isinstance(params.get("reward"), str):
        params["reward"] = reward_name(community, params["reward"])
    if isinstance(params.get("state"), str) and params["state"] in _STATE_KEYS:
        params["state"] = Text(_STATE_KEYS[params["state"]])
    return DomainError(refused.key, **params)


# --- /points -----------------------------------------------------------------------------


def _shown(value: Any) -> Any:
    # Entry parameters are plain JSON; "$l" marks a name per language (as the outbox stores Localized).
    if isinstance(value, dict) and set(value) == {"$l"}:
        return Localized(dict(value["$l"]))
    return value


def ledger_reason(key: str, params: dict[str, Any]) -> Text:
    """The readable reason of a ledger entry, in the reader's language."""
    return Text(key, {name: _shown(value) for name, value in params.items()})


def points(mine: rules.Points) -> Reply:
    statement = mine.statement
    lines = Lines(
        tuple(
            Text(
                "points.line",
                {
                    "amount": f"{entry.amount:+d}",
                    "reason": ledger_reason(entry.reason_key, dict(entry.reason_params)),
                    "when": When(entry.created_at),
                },
            )
            for entry in statement.recent
        )
    )
    return Reply(
        Text(
            "points.summary" if statement.recent else "points.none",
            {
                "balance": statement.balance,
                "reserved": statement.reserved,
                "lifetime": statement.lifetime,
                "tier": Text(f"tier.{mine.tier}"),
                "lines": lines,
            },
        )
    )


# --- awards ------------------------------------------------------------------------------


def people_to_pick(community: Community, people: Sequence[User], more: bool) -> Reply:
    rows = tuple(
        (Choice(person_label(community, p), action=choices.encode("awf", "who", p.id)),) for p in people
    )
    key = "award.pick_person_more" if more else "award.pick_person"
    return Reply(Text(key, {"count": len(people)}), rows)


def nobody_found(text: str) -> Reply:
    return Reply(Text("award.nobody_found", {"text": Verbatim(text)}))


def no_such_ticket(text: str) -> Reply:
    return Reply(Text("review.no_such_ticket", {"text": Verbatim(text)}))


def ask_award_points(name: str, maximum: int) -> Reply:
    return Reply(Text("award.ask_points", {"name": Verbatim(name), "max": maximum}))


def ask_award_reason(name: str, points: int) -> Reply:
    return Reply(
        Text("award.ask_reason", {"name": Verbatim(name), "points": points, "max": rules.REASON_MAX_CHARS})
    )


def confirm_award(name: str, points: int, reason: str) -> Reply:
    return Reply(
        Text("award.confirm", {"name": Verbatim(name), "points": points, "reason": Verbatim(reason)}),
        (_confirm_or_cancel("awf", "1"),),
    )


def award_done(given: rules.Award) -> Reply:
    revoke = Choice(Text("award.button_revoke"), action=choices.encode("awv", "rev", given.entry_id))
    return Reply(
        Text(
            "award.done",
            {
                "name": Verbatim(given.person.display_name),
                "points": given.points,
                "reason": Verbatim(given.reason),
            },
        ),
        ((revoke,),),
    )


def award_received(given: rules.Award, officer: User) -> Reply:
    """What the person given points is told."""
    return Reply(
        Text(
            "award.received",
            {"points": given.points, "reason": Verbatim(given.reason), "role": _role(officer)},
        )
    )


def ask_revoke_reason(name: str, points: int) -> Reply:
    return Reply(Text("award.ask_revoke_reason", {"name": Verbatim(name), "points": points}))


def revoke_done(name: str, points: int) -> Reply:
    return Reply(Text("award.revoke_done", {"name": Verbatim(name), "points": points}))


def award_revoked(revoked: rules.Revoked, officer: User) -> Reply:
    """What the person whose award was revoked is told."""
    return Reply(
        Text(
            "award.revoked",
            {"points": revoked.entry.amount, "reason": Verbatim(revoked.reason), "role": _role(officer)},
        )
    )


# --- rewards and redemptions ---------------------------------------------------------------


def reward_name(community: Community, key: str) -> Localized | Verbatim:
    reward = community.timebank.reward(key)
    # A reward taken out of the catalogue since is still named by its key.
    return Localized(dict(reward.names)) if reward is not None else Verbatim(key)


def _left(item: rules.CatalogueItem) -> Text:
    if item.left is None:
        return Text("reward.unlimited")
    if item.left > 0:
        return Text("reward.left", {"count": item.left})
    return Text("reward.sold_out")


def catalogue(community: Community, shown: rules.Catalogue) -> Reply:
    if not shown.items:
        return Reply(Text("reward.catalogue_empty", {"balance": shown.balance}))
    lines: list[Text] = [Text("reward.catalogue", {"balance": shown.balance})]
    for item in shown.items:
        lines.append(
            Text(
                "reward.item",
                {"reward": Localized(dict(item.reward.names)), "cost": item.reward.cost, "left": _left(item)},
            )
        )
    if shown.mine:
        lines.append(Text("reward.mine_header"))
    for redemption in shown.mine:
        name = reward_name(community, redemption.reward_key)
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
        for item in shown.items
        if item.available
    )
    return Reply(Lines(tuple(lines)), buttons)


def confirm_redemption(reward: Reward, balance: int) -> Reply:
    return Reply(
        Text(
            "reward.confirm",
            {
                "reward": Localized(dict(reward.names)),
                "cost": reward.cost,
                "balance": balance,
                "after": balance - reward.cost,
            },
        ),
        (_confirm_or_cancel("rwd", reward.key),),
    )


def redemption_requested(community: Community, redemption: Redemption) -> Reply:
    return Reply(
        Text(
            "reward.requested",
            {
                "id": redemption.id,
                "reward": reward_name(community, redemption.reward_key),
                "cost": redemption.cost,
            },
        )
    )


def decision_buttons(redemption_id: int) -> Buttons:
    return (
        (
            Choice(Text("reward.button_approve"), action=choices.encode("rdm", "ok", redemption_id)),
            Choice(Text("reward.button_reject"), action=choices.encode("rdm", "no", redemption_id)),
        ),
    )


def request_card(community: Community, person: User, redemption: Redemption) -> Reply:
    """What the police groups are asked to decide."""
    card = Text(
        "reward.request_card",
        {
            "id": redemption.id,
            "person": person_label(community, person),
            "reward": reward_name(community, redemption.reward_key),
            "cost": redemption.cost,
        },
    )
    return Reply(card, decision_buttons(redemption.id))


def pending(community: Community, shown: Sequence[Redemption], total: int, people: dict[int, User]) -> Reply:
    if not shown:
        return Reply(Text("reward.none_pending"))
    lines: list[Text] = [Text("reward.pending_header", {"count": total, "shown": len(shown)})]
    rows: list[tuple[Choice, ...]] = []
    for redemption in shown:
        person = people.get(redemption.user_id)
        lines.append(
            Text(
                "reward.pending_line",
                {
                    "id": redemption.id,
                    "person": person_label(community, person) if person else Verbatim("?"),
                    "reward": reward_name(community, redemption.reward_key),
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
    return Reply(Lines(tuple(lines)), tuple(rows))


def reject_no_stock_button(redemption_id: int) -> Buttons:
    return (
        (Choice(Text("reward.button_reject_no_stock"), action=choices.encode("rdm", "oos", redemption_id)),),
    )


def approved_by_you(community: Community, approved: Redemption) -> Reply:
    return Reply(
        Text(
            "reward.approved_by_you",
            {
                "id": approved.id,
                "reward": reward_name(community, approved.reward_key),
                "code": approved.pickup_code or "",
            },
        )
    )


def ask_reject_reason(community: Community, redemption_id: int, reward_key: str) -> Reply:
    return Reply(
        Text(
            "reward.ask_reject_reason",
            {"id": redemption_id, "reward": reward_name(community, reward_key)},
        )
    )


def redemption_approved(community: Community, approved: Redemption) -> Reply:
    """What the volunteer is told: the pickup code."""
    return Reply(
        Text(
            "reward.approved",
            {
                "reward": reward_name(community, approved.reward_key),
                "code": approved.pickup_code or "",
                "id": approved.id,
            },
        )
    )


def redemption_rejected(community: Community, rejected: Redemption) -> Reply:
    """What the volunteer is told: their points are back, and why (no reason: the reward ran out)."""
    name = reward_name(community, rejected.reward_key)
    if rejected.reason is None:
        return Reply(Text("reward.rejected_no_stock", {"reward": name, "cost": rejected.cost}))
    return Reply(
        Text("reward.rejected", {"reward": name, "cost": rejected.cost, "reason": Verbatim(rejected.reason)})
    )


def redemption_decided(community: Community, officer: User, redemption: Redemption) -> Reply:
    """The note that tells the other officers (group cards of redemptions are not edited in place)."""
    key = "reward.decided_approved" if redemption.state == APPROVED else "reward.decided_rejected"
    return Reply(
        Text(
            key,
            {
                "id": redemption.id,
                "reward": reward_name(community, redemption.reward_key),
                "officer": Verbatim(officer.display_name),
            },
        )
    )


# --- the leaderboard ---------------------------------------------------------------------


def leaderboard(community: Community, viewer: User, board: rules.Board) -> Reply:
    lines: list[Text] = [
        Text(
            "leaderboard.header",
            {
                "period": Text(
                    "leaderboard.this_month" if board.period_code == rules.MONTH else "leaderboard.all_time"
                ),
                "scope": Verbatim(board.grid.name if board.grid is not None else community.name),
            },
        )
    ]
    for rank, standing in enumerate(board.standings, start=1):
        person = board.people.get(standing.user_id)
        name = person.display_name if person is not None else "?"
        key = "leaderboard.line_me" if standing.user_id == viewer.id else "leaderboard.line"
        lines.append(Text(key, {"rank": rank, "name": Verbatim(name), "points": standing.points}))
    if not board.standings:
        lines.append(Text("leaderboard.empty"))
    if viewer.leaderboard_opt_out:
        lines.append(Text("leaderboard.you_are_hidden"))
    elif board.mine is not None:
        lines.append(Text("leaderboard.your_rank", {"rank": board.mine[0], "points": board.mine[1]}))
    return Reply(Lines(tuple(lines)), _leaderboard_buttons(viewer, board))


def _leaderboard_buttons(viewer: User, board: rules.Board) -> Buttons:
    period_code, scope = board.period_code, board.scope

    def show(key: str, period: str, where: str) -> Choice:
        return Choice(Text(key), action=choices.encode("lb", "show", period, where))

    periods = (
        show("leaderboard.button_month", rules.MONTH, scope),
        show("leaderboard.button_all_time", rules.EVER, scope),
    )
    scopes = [show("leaderboard.button_community", period_code, rules.COMMUNITY)]
    if board.has_grid:
        scopes.append(show("leaderboard.button_grid", period_code, rules.GRID))
    if viewer.leaderboard_opt_out:
        opt = Choice(
            Text("leaderboard.button_opt_in"), action=choices.encode("lb", "opt", "in", period_code, scope)
        )
    else:
        opt = Choice(
            Text("leaderboard.button_opt_out"), action=choices.encode("lb", "opt", "out", period_code, scope)
        )
    return (periods, tuple(scopes), (opt,))


# --- monthly honours ---------------------------------------------------------------------


def _hours(minutes: int) -> str:
    return f"{minutes / 60:.1f}".removesuffix(".0")


def month_label(period: str) -> Text:
    year, month = rules.split_period(period)
    return Text("honours.month", {"year": year, "month": month})


def _honour_line(honour: Honour, person: User) -> Text:
    name = Verbatim(person.display_name)
    if honour.kind == rules.GUARDIAN:
        return Text(
            "honours.guardian_line", {"rank": honour.rank, "name": name, "hours": _hours(honour.score)}
        )
    return Text("honours.volunteer_line", {"rank": honour.rank, "name": name, "points": honour.score})


def _section(lines: Sequence[Text]) -> Lines | Text:
    return Lines(tuple(lines)) if lines else Text("honours.nobody")


def no_honours(period: str) -> Reply:
    """For the police groups only: residents are not told that nobody was honoured."""
    return Reply(Text("honours.none", {"month": month_label(period)}))


def honours_post(period: str, honours: Sequence[Honour], people: dict[int, User]) -> Reply:
    guardians = [_honour_line(h, people[h.user_id]) for h in honours if h.kind == rules.GUARDIAN]
    volunteers = [
        _honour_line(h, people[h.user_id]) for h in honours if h.kind == rules.OUTSTANDING_VOLUNTEER
    ]
    return Reply(
        Text(
            "honours.post",
            {
                "month": month_label(period),
                "guardians": _section(guardians),
                "volunteers": _section(volunteers),
            },
        )
    )


def congratulation(period: str, honour: Honour) -> Reply:
    month = month_label(period)
    if honour.kind == rules.GUARDIAN:
        return Reply(Text("honours.you_guardian", {"month": month, "hours": _hours(honour.score)}))
    return Reply(Text("honours.you_volunteer", {"month": month, "points": honour.score, "rank": honour.rank}))


# --- exports -----------------------------------------------------------------------------

THIS_MONTH, LAST_MONTH = "this", "last"


def ask_export_kind() -> Reply:
    row = (
        Choice(Text("export.button_ledger"), action=choices.encode("exf", "kind", rules.EXPORT_LEDGER)),
        Choice(Text("export.button_patrol"), action=choices.encode("exf", "kind", rules.EXPORT_PATROL_HOURS)),
    )
    return Reply(Text("export.ask_kind"), (row,))


def ask_export_range(example: str) -> Reply:
    row = (
        Choice(Text("export.button_this_month"), action=choices.encode("exf", "range", THIS_MONTH)),
        Choice(Text("export.button_last_month"), action=choices.encode("exf", "range", LAST_MONTH)),
    )
    return Reply(Text("export.ask_range", {"example": example}), (row,))
