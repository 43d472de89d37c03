"""The survey buttons that work outside the dialogue: answers (`svy:a:<survey>:<question>:<value>`), Close."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.errors import StaleAction
from handlers.surveys import answer, results


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    if len(parts) == 5 and parts[1] == "a" and parts[2].isdigit() and parts[3].isdigit():
        await answer.answer(ctx, int(parts[2]), int(parts[3]), parts[4])
    elif len(parts) == 3 and parts[1] == "close" and parts[2].isdigit():
        await results.close(ctx, int(parts[2]))
    else:
        raise StaleAction()
