"""What the time bank plugs into the engine."""

from __future__ import annotations

from typing import Any

from handlers.accounts import rules as accounts
from handlers.registry import CLEAR, KEEP, Erasure, Feature, PersonalData
from handlers.timebank import awards, exports, honours, leaderboard, points, rewards, rules
from storage.ledger import redemption_ref
from storage.personal import PersonalDataRepo
from storage.repositories import Repos
from storage.rewards import PENDING, REJECTED


async def _accounts_with_entries(repos: Repos, user_id: int) -> list[dict[str, Any]]:
    """The person's points accounts, each with every entry into or out of it (ledger entries name
    accounts, not people)."""
    personal = repos.of(PersonalDataRepo)
    accounts_held = await personal.rows("point_accounts", "user_id", user_id)
    for account in accounts_held:
        account["entries"] = await personal.ledger_of_accounts([account["id"]])
    return accounts_held


async def _withdraw_pending_redemptions(erasure: Erasure) -> None:
    """Nobody will come for a reward asked for by an erased person: the request is withdrawn and
    the held points go back to their (nameless) account, so the stock is not taken for nobody."""
    repos = erasure.repos
    for redemption in await repos.rewards.of_user(erasure.user_id, (PENDING,), limit=1000):
        if await repos.rewards.decide(redemption.id, REJECTED, None, erasure.now):
            await repos.ledger.release(redemption_ref(redemption.id), None, erasure.now)


_EVERYONE = ("points", "rewards", "leaderboard")
_COMMANDERS = (*_EVERYONE, "award", "redemptions", "export")

FEATURE = Feature(
    name="timebank",
    commands={
        "points": points.show_points,
        "rewards": rewards.show_rewards,
        "leaderboard": leaderboard.show_leaderboard,
        "award": awards.start,
        "redemptions": rewards.list_pending,
        "export": exports.start,
    },
    actions={
        "rwd": rewards.on_redeem,
        "rdm": rewards.on_decide,
        "awv": awards.on_revoke,
        "lb": leaderboard.on_action,
    },
    flows=(awards.AWARD, awards.REVOKE, rewards.REJECT, exports.EXPORT),
    schedules={rules.HONOURS: honours.fire},
    help={role: _COMMANDERS if role in accounts.COMMANDERS else _EVERYONE for role in accounts.ROLES},
    on_start=honours.arm_current_month,
    community_section="timebank",
    personal_data=(
        # A person's ledger is the entries into and out of their accounts (ledger_entries names
        # accounts, not people); merged accounts point at the survivor's.
        PersonalData(
            "point_accounts",
            "user_id",
            "points accounts: balance, points held, and their ledger",
            KEEP,
            export=_accounts_with_entries,
        ),
        PersonalData(
            "ledger_entries", "actor_id", "points this person gave, took back or decided for others", KEEP
        ),
        PersonalData(
            "point_earnings",
            "user_id",
            "points earned per month, for the leaderboard",
            CLEAR,
            clear=("grid_key",),
        ),
        PersonalData(
            "redemptions",
            "user_id",
            "rewards asked for, their pickup codes and the decisions",
            KEEP,
            eraser=_withdraw_pending_redemptions,
        ),
        PersonalData(
            "redemptions",
            "decided_by",
            "redemptions this officer approved or rejected, and why",
            KEEP,
            # Not the requester's pickup code: that is theirs.
            columns=("id", "user_id", "reward_key", "cost", "state", "reason", "decided_at"),
        ),
        PersonalData("honours", "user_id", "monthly honours won (平安卫士, 优秀志愿者)", KEEP),
    ),
)
