"""What a feature plugs into the engine, and the registry the engine reads it from.

Each feature package declares one `Feature` (in its feature.py); handlers/features.py
lists them and builds the `Registry`. The router, the scheduler, delivery and /help read
the registry, so adding a feature never means editing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from storage.kinds import Kinds, UnknownKind

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


@dataclass(frozen=True)
class Gathered:
    """A schedule kind whose long reading (the weekly digest's figures over all of history) runs in
    a read-only transaction of its own, which holds up no chat; `fire` then gets what was gathered,
    in the short transaction that claims the row, so it still happens once."""

    gather: Callable[[Repos, Community, Clock, Schedule], Awaitable[Any]]
    fire: Callable[[Repos, Community, Clock, Schedule, Any], Awaitable[None]]


# At start-up, in one transaction: arm the recurring schedules the feature needs.
OnStart = Callable[["Repos", "Community", datetime], Awaitable[None]]
# Someone who has not finished onboarding wrote: greet them, with the deep-link payload that
# brought them ("" if none); the payload is followed once they are done.
Welcome = Callable[["Ctx", str], Awaitable[None]]

# The outbox kind the engine itself knows: a stored `Reply`, sent as it is.
MESSAGE = "message"
# How long a `message` (answers, notices to the reporter, to grid workers and police) is tried
# through a platform outage: a reply three days late still says what happened.
MESSAGE_GIVES_UP_AFTER = timedelta(days=3)
# A kind that declares no horizon of its own.
DEFAULT_GIVES_UP_AFTER = timedelta(days=1)


class Lane(IntEnum):
    """Which outbox rows go first when more are due than the platforms take at once; the value
    is the rows' `priority` (lower first). A chat's own rows still go in the order queued.

    INTERACTIVE: what someone is waiting for (answers, report cards and their edits, notices to
    police and grid workers, escalations, a broadcast's delivery report). URGENT: urgent alert
    copies. BULK: everything that may take its time (information notices, ordinary broadcasts,
    digests, survey invitations).
    """

    INTERACTIVE = 0
    URGENT = 2
    BULK = 4


def priority(lane: Lane, *, group: bool = False) -> int:
    """A row's priority in its lane: a group chat's copy goes before the private chats' copies,
    as one message there reaches a whole group (and groups take only 20 a minute each)."""
    return int(lane) - 1 if group and lane > Lane.INTERACTIVE else int(lane)


@dataclass(frozen=True)
class Rendered:
    """What an outbox row of a feature's own kind says when it is sent."""

    reply: Reply
    # Edit this earlier message (a delivery report, a report card as it changes) instead of sending
    # a new one; its photos stay as sent. None sends a new message.
    edit_ref: str | None = None


@dataclass(frozen=True)
class OutboxKind:
    """An outbox kind rendered from the database when sent (so a queued row shows what is current).

    `render` raises LookupError if what the row refers to is gone. `settled` runs in the
    transaction that records the row as "sent", "failed", "blocked" or "expired", with the sent
    message's reference (for later edits) when there is one.

    `gives_up_after`: how long a row is tried through transient failures (the platform down,
    time-outs, 429s), counted from its first failure, before it is recorded "expired"; None tries
    until it goes through. Permanent refusals (blocked, bad request) settle it at once whatever this
    says. Operators may override it per kind (SHOUWANG_OUTBOX_GIVE_UP_HOURS).

    `lane`: where the kind's rows queue (see Lane); a row written with a priority of its own
    (`OutboxRepo.enqueue(priority=...)`) overrides it, for a kind that mixes lanes.
    """

    render: Callable[[Repos, Community, OutboxMessage], Awaitable[Rendered]]
    settled: (
        Callable[[Repos, Community, OutboxMessage, str, str | None, datetime], Awaitable[None]] | None
    ) = None
    gives_up_after: timedelta | None = DEFAULT_GIVES_UP_AFTER
    lane: Lane = Lane.INTERACTIVE


# What erasure (/deleteme, `shouwang person erase`) does with the rows a declaration names. The
# person's users row itself stays, nameless (see handlers/privacy/rules.py), so every row kept
# still points at a valid account that no longer says who it was.
KEEP = "keep"  # a record others rely on (a report, a shift, points): it stays, on the nameless account
DELETE = "delete"  # only ever about this person (a draft, a chat account, a setting): it goes
CLEAR = "clear"  # it stays, with the columns named in `clear` emptied (they say who or where)
ERASE_ACTIONS = (KEEP, DELETE, CLEAR)


@dataclass(frozen=True)
class Erasure:
    """One person being erased, for a declaration's own eraser."""

    repos: Repos
    community: Community
    user_id: int
    now: datetime


# The person's rows of a declaration, as JSON-ready dicts, when more than the table's own columns
# belong in the export (a report's events and photos, an account's ledger entries).
Exporter = Callable[["Repos", int], Awaitable[list[dict[str, Any]]]]
# Run on erasure before the declaration's `erase` action (a report's photos, a copied chat id).
Eraser = Callable[[Erasure], Awaitable[None]]


@dataclass(frozen=True)
class PersonalData:
    """A place where a feature keeps data about a person: what data-rights export and erasure visit.

    `erase` has no default, so a new declaration decides what erasure does; a test checks that
    every column naming users.id is declared by some feature.
    """

    table: str
    # The column naming the person (users.id).
    person_column: str
    # What is kept there, in a few words (for developers; the person reads the message key
    # `mydata.held.<table>.<person_column>` in their language).
    what: str
    # KEEP, DELETE or CLEAR.
    erase: str
    # CLEAR empties these columns.
    clear: tuple[str, ...] = ()
    # The columns exported (None: all of them); a row that is about others too (a report this
    # grid worker was assigned) shows only what concerns this person.
    columns: tuple[str, ...] | None = None
    export: Exporter | None = None
    eraser: Eraser | None = None

    def __post_init__(self) -> None:
        if self.erase not in ERASE_ACTIONS:
            raise ValueError(f"{self.table}.{self.person_column}: erase must be one of {ERASE_ACTIONS}")
        if (self.erase == CLEAR) != bool(self.clear):
            raise ValueError(f"{self.table}.{self.person_column}: CLEAR, and only CLEAR, names columns")

    @property
    def key(self) -> str:
        return f"mydata.held.{self.table}.{self.person_column}"


@dataclass(frozen=True)
class Feature:
    name: str
    commands: Mapping[str, Command] = field(default_factory=dict)
    # Commands that work before onboarding is finished (/start, /link, /language); the others
    # send the person through onboarding first.
    open_commands: Mapping[str, Command] = field(default_factory=dict)
    # Commands answered in a group chat (the others are pointed to the private chat).
    group_commands: Mapping[str, Command] = field(default_factory=dict)
    # Deep-link payloads (`/start <payload>`) → what they open, once the person is onboarded.
    # A command of the same name typed before onboarding is finished is followed the same way.
    deep_links: Mapping[str, Command] = field(default_factory=dict)
    # Typed words (lower case) that start a command when no conversation is running ("上报" → report).
    words: Mapping[str, Command] = field(default_factory=dict)
    actions: Mapping[str, Action] = field(default_factory=dict)
    # The step-function conversations of this feature; the engine finds a stored draft's flow here.
    flows: tuple[Flow, ...] = ()
    schedules: Mapping[str, Fire | Gathered] = field(default_factory=dict)
    # role → the commands /help lists for it, in order. /help shows every feature's `help_first`
    # (a staff role's daily tools), then every feature's `help`, then every feature's `help_last`.
    help: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    help_first: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    help_last: tuple[str, ...] = ()
    on_start: OnStart | None = None
    # What someone gets who has not finished onboarding (one feature, accounts, declares it).
    welcome: Welcome | None = None
    # Outbox kinds this feature renders itself; the outbox accepts only kinds some feature declares.
    outbox: Mapping[str, OutboxKind] = field(default_factory=dict)
    # The community file's section this feature reads ("patrols" for [patrols]), if any.
    community_section: str | None = None
    # Where this feature keeps personal data.
    personal_data: tuple[PersonalData, ...] = ()


class Registry:
    """Everything the features plug in, merged; a name claimed twice is refused at start-up."""

    def __init__(self, features: tuple[Feature, ...], engine_commands: tuple[str, ...] = ()) -> None:
        self.features = features
        # The engine's own commands (/cancel, /help): no feature may claim them; /help lists them last.
        self.engine_commands = engine_commands
        self.commands: dict[str, Command] = _merged(features, "commands", engine_commands)
        self.open_commands: dict[str, Command] = _merged(
            features, "open_commands", (*engine_commands, *self.commands)
        )
        self.group_commands: dict[str, Command] = _merged(features, "group_commands")
        self.deep_links: dict[str, Command] = _merged(features, "deep_links")
        self.words: dict[str, Command] = _merged(features, "words")
        self.actions: dict[str, Action] = _merged(features, "actions")
        self.schedules: dict[str, Fire | Gathered] = _merged(features, "schedules")
        self.outbox: dict[str, OutboxKind] = _merged(features, "outbox", (MESSAGE,))
        # What the engine's repositories accept: the database does not constrain kinds.
        self.kinds = Kinds(
            outbox=frozenset({MESSAGE, *self.outbox}),
            schedules=frozenset(self.schedules),
            # The engine's `message` is interactive unless its sender says otherwise.
            priorities={kind: int(declared.lane) for kind, declared in self.outbox.items()},
        )
        flows: dict[str, Flow] = {}
        for feature in features:
            for flow in feature.flows:
                if flows.setdefault(flow.name, flow) is not flow:
                    raise RuntimeError(f"two features claim the flow {flow.name!r}")
        self.flows = flows
        welcomes = [feature.welcome for feature in features if feature.welcome is not None]
        if len(welcomes) > 1:
            raise RuntimeError("two features claim to welcome newcomers")
        self.welcome: Welcome | None = welcomes[0] if welcomes else None
        # Every feature's personal data, in feature order: what export and erasure visit.
        self.personal_data: tuple[PersonalData, ...] = tuple(
            declared for feature in features for declared in feature.personal_data
        )

    def help_commands(self, role: str) -> tuple[str, ...]:
        return (
            *(name for feature in self.features for name in feature.help_first.get(role, ())),
            *(name for feature in self.features for name in feature.help.get(role, ())),
            *(name for feature in self.features for name in feature.help_last),
        )

    def gives_up_after(self, kind: str) -> timedelta | None:
        """How long a row of this outbox kind is tried through transient failures (None: always)."""
        if kind == MESSAGE:
            return MESSAGE_GIVES_UP_AFTER
        declared = self.outbox.get(kind)
        return declared.gives_up_after if declared is not None else DEFAULT_GIVES_UP_AFTER

    def check_outbox_kind(self, kind: str) -> None:
        self.kinds.check_outbox(kind)

    def check_schedule_kind(self, kind: str) -> None:
        self.kinds.check_schedule(kind)

    async def check_stored(self, repos: Repos) -> None:
        """Refuse to start over pending rows that nothing could send or fire."""
        unknown = sorted(
            {
                *(await repos.outbox.pending_kinds() - self.kinds.outbox),
                *(await repos.schedules.pending_kinds() - self.kinds.schedules),
            }
        )
        if unknown:
            raise UnknownKind(f"pending rows of kinds no feature declares: {unknown}")


def _merged(features: tuple[Feature, ...], kind: str, taken: tuple[str, ...] = ()) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for feature in features:
        for name, handler in getattr(feature, kind).items():
            if name in merged or name in taken:
                raise RuntimeError(f"two features claim the {kind} entry {name!r}")
            merged[name] = handler
    return merged
