"""Which outbox and schedule kinds exist is the features' business, not the schema's.

The database does not constrain `outbox.kind` or `schedules.kind` (a new kind needs no
table rebuild). The engine hands its repositories the kinds its features declare, and
they refuse to write a row that nothing could ever send or fire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class UnknownKind(LookupError):
    """An outbox row or schedule of a kind no feature declares: it could never be sent or fired."""


@dataclass(frozen=True)
class Kinds:
    outbox: frozenset[str]
    schedules: frozenset[str]
    # Per outbox kind, the priority its rows are claimed with unless the row says otherwise (its
    # lane, handlers/registry.py); lower goes first. Kinds not named here: 0, the first lane.
    priorities: Mapping[str, int] = field(default_factory=dict)

    def priority(self, kind: str) -> int:
        return self.priorities.get(kind, 0)

    def check_outbox(self, kind: str) -> None:
        if kind not in self.outbox:
            raise UnknownKind(
                f"no feature declares the outbox kind {kind!r} (declared: {sorted(self.outbox)})"
            )

    def check_schedule(self, kind: str) -> None:
        if kind not in self.schedules:
            raise UnknownKind(
                f"no feature declares the schedule kind {kind!r} (declared: {sorted(self.schedules)})"
            )
