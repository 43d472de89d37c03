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
    from handlers.conversation import Flow
    from handlers.messages import Reply
    from storage.models import OutboxMessage, Schedule
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
class Rendered:
    """What an outbox row of a feature's own kind says when it is sent."""

    reply: Reply
    # Edit this earlier message (a delivery report as it changes) instead of sending a new one.
    edit_ref: str | None = None


@dataclass(frozen=True)
class OutboxKind:
    """An outbox kind rendered from the database when sent (so a queued row shows what is current).

    `render` raises LookupError if what the row refers to is gone. `settled` runs in the
    transaction that records the row as "sent", "failed" or "blocked", with the sent
    message's reference (for later edits) when there is one.
    """

    render: Callable[[Repos, Community, OutboxMessage], Awaitable[Rendered]]
    settled: (
        Callable[[Repos, Community, OutboxMessage, str, str | None, datetime], Awaitable[None]] | None
    ) = None


@dataclass(frozen=True)
class PersonalData:
    """A place where a feature keeps data about a person: what data-rights export and erasure visit."""

    table: str
    # The column naming the person (users.id).
    person_column: str
    # What is kept there, in a few words (shown to the person on export).
    what: str


@dataclass(frozen=True)
class Feature:
    name: str
    commands: Mapping[str, Command] = field(default_factory=dict)
    # Typed words (lower case) that start a command when no conversation is running ("上报" → report).
    words: Mapping[str, Command] = field(default_factory=dict)
    actions: Mapping[str, Action] = field(default_factory=dict)
    # The step-function conversations of this feature; the engine finds a stored draft's flow here.
    flows: tuple[Flow, ...] = ()
    schedules: Mapping[str, Fire] = field(default_factory=dict)
    # role → the commands /help lists for it, in order.
    help: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    on_start: OnStart | None = None
    # Outbox kinds this feature renders itself; the outbox accepts only kinds some feature declares.
    outbox: Mapping[str, OutboxKind] = field(default_factory=dict)
    # The community file's section this feature reads ("patrols" for [patrols]), if any.
    community_section: str | None = None
    # Where this feature keeps personal data.
    personal_data: tuple[PersonalData, ...] = ()
