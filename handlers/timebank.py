"""/points: balance, tier, and the latest movements with the reason for each."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.messages import Lines, Text, When
from handlers.registry import Feature
from handlers.services import accounts


async def show_points(ctx: Ctx) -> None:
    statement = await ctx.repos.ledger.statement(ctx.user.id, limit=10)
    tier = ctx.community.timebank.tier(statement.lifetime)
    lines = Lines(
        tuple(
            Text(
                "points.line",
                {
                    "amount": f"{entry.amount:+d}",
                    "reason": Text(entry.reason_key, dict(entry.reason_params)),
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


FEATURE = Feature(
    name="timebank",
    commands={"points": show_points},
    help={role: ("points",) for role in accounts.ROLES},
)
