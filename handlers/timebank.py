"""The time bank (公益时间银行) feature: /points, and the commands, buttons and schedule of its parts.

/points shows balance, tier and the latest movements with the reason for each;
awards live in handlers/awards.py, rewards and redemptions in handlers/rewards.py,
the leaderboard in handlers/leaderboard.py, honours in handlers/honours.py and
CSV exports in handlers/exports.py. The rules themselves are in handlers/services/timebank.py.
"""

from __future__ import annotations

from handlers import awards, exports, honours, leaderboard, rewards
from handlers.accounts import rules as accounts
from handlers.context import Ctx
from handlers.messages import Lines, Text, When
from handlers.registry import Feature
from handlers.services import timebank as bank


async def show_points(ctx: Ctx) -> None:
    statement = await ctx.repos.ledger.statement(ctx.user.id, limit=10)
    tier = ctx.community.timebank.tier(statement.lifetime)
    lines = Lines(
        tuple(
            Text(
                "points.line",
                {
                    "amount": f"{entry.amount:+d}",
                    "reason": bank.ledger_reason(entry.reason_key, dict(entry.reason_params)),
                    "when": When(entry.created_at),
                },
            )
            for entry in statement.recent
        )
    )
    ctx.say(
        "points.summary" if statement.recent else "points.none",
        balance=statement.balance,
        reserved=statement.reserved,
        lifetime=statement.lifetime,
        tier=Text(f"tier.{tier}"),
        lines=lines,
    )


_EVERYONE = ("points", "rewards", "leaderboard")
_COMMANDERS = (*_EVERYONE, "award", "redemptions", "export")

FEATURE = Feature(
    name="timebank",
    commands={
        "points": show_points,
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
    schedules={bank.HONOURS: honours.fire},
    help={role: _COMMANDERS if role in accounts.COMMANDERS else _EVERYONE for role in accounts.ROLES},
    on_start=honours.arm_current_month,
)
