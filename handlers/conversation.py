"""Multi-step conversations whose state lives in the database.

Shaped like python-telegram-bot's conversationbot example: a flow is a set of
named steps, each with a prompt (`ask`) and an input handler (`handle`) that
returns the name of the next step. Unlike PTB's ConversationHandler the state
is written in the same transaction as everything else the step did, on every
channel, so a restart resumes exactly where the user was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from handlers.context import Ctx

END = "__end__"
Ask = Callable[[Ctx], Awaitable[None]]
# A handler returns the next step's name, its own name to stay without asking again,
# or None to have its question asked again after explaining what was wrong.
Handle = Callable[[Ctx], Awaitable[str | None]]


@dataclass(frozen=True)
class Step:
    ask: Ask
    handle: Handle


@dataclass(frozen=True)
class Flow:
    name: str
    steps: dict[str, Step]
    # What the user is told when an idle draft of this flow is discarded.
    expired_key: str = "conversation.expired"
    # Whether updates of a live location reach the flow (a check-in waiting for the person to
    # arrive); other flows would only answer every few seconds that a location was not asked for.
    accepts_live_location: bool = False


# Flows not declared in a feature's `flows` yet; the engine looks in the registry first
# (handlers/scheduled.flow_named). Goes once every feature declares its flows.
async def save(ctx: Ctx, flow: Flow, step: str) -> None:
    # updated_at doubles as the idle clock: the scheduler's tick discards drafts idle too long.
    await ctx.repos.conversations.save(ctx.user.id, ctx.channel, flow.name, step, ctx.data, ctx.clock.now())


async def finish(ctx: Ctx) -> None:
    await ctx.repos.conversations.delete(ctx.user.id, ctx.channel)


async def begin(ctx: Ctx, flow: Flow, step: str, data: dict[str, object] | None = None) -> None:
    """Start `flow` at `step`, replacing whatever conversation was running."""
    ctx.data = dict(data or {})
    await flow.steps[step].ask(ctx)
    await save(ctx, flow, step)


async def advance(ctx: Ctx, flow: Flow, step_name: str) -> None:
    """Feed the current input to the step the user is at."""
    step = flow.steps.get(step_name)
    if step is None:
        # A step renamed by an upgrade: start the flow afresh rather than fail.
        await finish(ctx)
        ctx.say("error.conversation_lost")
        return
    next_step = await step.handle(ctx)
    if next_step == END:
        await finish(ctx)
        return
    if next_step is None:
        await step.ask(ctx)
        await save(ctx, flow, step_name)
        return
    if next_step == step_name:
        # Staying on purpose (e.g. "photo 1 of 3 received"): the step already said what is needed.
        await save(ctx, flow, step_name)
        return
    # Asking may note in the draft what it has said (e.g. an introduction shown once); save after it.
    await flow.steps[next_step].ask(ctx)
    await save(ctx, flow, next_step)
