"""Steps /alert and /notice share: who receives it (community, grids, volunteers, groups), which grids.

Each dialogue keeps its own button kind (so presses reach its draft) and says
which step follows; the questions and buttons are the same everywhere. The
notices feature imports this module; it imports nothing of notices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from handlers import choices
from handlers.broadcasts import rules
from handlers.context import Ctx
from handlers.conversation import Step
from handlers.errors import StaleAction
from handlers.messages import Choice, Text, Verbatim

Rows = tuple[tuple[Choice, ...], ...]


def rows(buttons: list[Choice], per_row: int = 2) -> Rows:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


@dataclass(frozen=True)
class FlowButtons:
    """Buttons of one dialogue: `v1:<kind>:<verb>:<value>`, not registered, so they reach its draft."""

    kind: str
    # What to say when something other than a button arrives.
    use_buttons_key: str

    def button(self, label: Text, verb: str, value: str | int) -> Choice:
        return Choice(label, action=choices.encode(self.kind, verb, value))

    def pressed(self, ctx: Ctx, verb: str) -> str | None:
        parts = choices.decode(ctx.inp.action)
        if parts and len(parts) == 3 and parts[0] == self.kind and parts[1] == verb:
            return parts[2]
        return None

    def wrong_input(self, ctx: Ctx) -> None:
        ctx.say("error.stale_button" if ctx.inp.action else self.use_buttons_key)


def steps(buttons: FlowButtons, after: Callable[[Ctx], str]) -> dict[str, Step]:
    """The "audience" and "grids" steps; `after` names the step that follows them."""

    async def ask_audience(ctx: Ctx) -> None:
        offered = [
            buttons.button(Text(f"broadcast.audience_{kind}"), "aud", kind) for kind in rules.AUDIENCES
        ]
        ctx.say("broadcast.ask_audience", choices=rows(offered))

    async def handle_audience(ctx: Ctx) -> str | None:
        kind = buttons.pressed(ctx, "aud")
        if kind not in rules.AUDIENCES:
            buttons.wrong_input(ctx)
            return None
        if kind == "grids":
            # Changing the audience from a preview starts from the grids chosen before.
            ctx.data["chosen_grids"] = list(ctx.data.get("audience", {}).get("grids", []))
            return "grids"
        ctx.data["audience"] = {"type": kind, "grids": []}
        return after(ctx)

    async def ask_grids(ctx: Ctx) -> None:
        chosen = set(ctx.data.get("chosen_grids", []))
        offered = [
            buttons.button(
                Text(
                    "broadcast.grid_chosen" if grid.key in chosen else "broadcast.grid_not_chosen",
                    {"grid": Verbatim(grid.name)},
                ),
                "grid",
                grid.key,
            )
            for grid in ctx.community.grids
        ]
        done = (buttons.button(Text("broadcast.button_grids_done"), "grid", "-done"),)
        ctx.say("broadcast.ask_grids", choices=(*rows(offered), done), count=len(chosen))

    async def handle_grids(ctx: Ctx) -> str | None:
        key = buttons.pressed(ctx, "grid")
        if key is None:
            buttons.wrong_input(ctx)
            return None
        chosen: list[str] = ctx.data.setdefault("chosen_grids", [])
        if key == "-done":
            if not chosen:
                ctx.say("broadcast.no_grids_chosen")
                return None
            audience = {"type": "grids", "grids": chosen}
            ctx.data["audience"] = rules.check_audience(ctx.community, audience)
            del ctx.data["chosen_grids"]
            return after(ctx)
        if ctx.community.grid(key) is None:
            raise StaleAction()
        if key in chosen:
            chosen.remove(key)
        else:
            chosen.append(key)
        return None  # asked again: the buttons show what is chosen now

    return {"audience": Step(ask_audience, handle_audience), "grids": Step(ask_grids, handle_grids)}
