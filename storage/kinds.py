"""Which outbox and schedule kinds exist is the features' business, not the schema's.

The database does not constrain `outbox.kind` or `schedules.kind` (a new kind needs no
table rebuild). The engine hands its repositories the kinds its features declare, and
they refuse to write a row that nothing could ever send or fire.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnknownKind(LookupError):
    """An outbox row or schedule of a kind no feature declares: it could never be sent or fired."""


@dataclass(frozen=True)
class Kinds:
    outbox: frozenset[str]
    schedules: frozenset[str]

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
