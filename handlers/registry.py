"""What a feature (patrols, attendance, the time bank) plugs into the engine.

Each feature module defines one `Feature`; handlers/features.py lists them.
The engine, /help and the scheduler read the lists, so adding a feature does
not mean editing the router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.clock import Clock
    from handlers.community import Community
    from handlers.context import Ctx
    from storage.models import Schedule
    from storage.repositories import Repos

# /name → what it does (private chats, onboarded people; permissions are the handler's job).
Command = Callable[["Ctx"], Awaitable[None]]
# A button press whose decoded token starts with the kind → what it does, given all the parts.
Action = Callable[["Ctx", tuple[str, ...]], Awaitable[None]]
# A due row of the schedules table of this kind → what happens (in its own transaction, once).
Fire = Callable[["Repos", "Community", "Clock", "Schedule"], Awaitable[None]]
# At start-up, in one transaction: arm the recurring schedules the feature needs.
OnStart = Callable[["Repos", "Community", datetime], Awaitable[None]]


@dataclass(frozen=True)
class Feature:
    name: str
    commands: Mapping[str, Command] = field(default_factory=dict)
    actions: Mapping[str, Action] = field(default_factory=dict)
    schedules: Mapping[str, Fire] = field(default_factory=dict)
    # role → the commands /help lists for it, in order.
    help: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    on_start: OnStart | None = None
