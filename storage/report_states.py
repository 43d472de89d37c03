"""The report lifecycle (上报→受理→派单→处置→办结) and which moves it allows."""

from __future__ import annotations

SUBMITTED = "submitted"
ACKNOWLEDGED = "acknowledged"
ASSIGNED = "assigned"
IN_PROGRESS = "in_progress"
RESOLVED = "resolved"
REJECTED = "rejected"
DUPLICATE = "duplicate"

CLOSED = frozenset({RESOLVED, REJECTED, DUPLICATE})
OPEN = frozenset({SUBMITTED, ACKNOWLEDGED, ASSIGNED, IN_PROGRESS})

# Assigning a fresh report acknowledges it on the way: police dispatching at
# once should not have to press two buttons.
TRANSITIONS: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({ACKNOWLEDGED, ASSIGNED, REJECTED, DUPLICATE}),
    ACKNOWLEDGED: frozenset({ASSIGNED, IN_PROGRESS, RESOLVED, REJECTED, DUPLICATE}),
    ASSIGNED: frozenset({ASSIGNED, IN_PROGRESS, RESOLVED, REJECTED, DUPLICATE}),
    IN_PROGRESS: frozenset({RESOLVED}),
    RESOLVED: frozenset(),
    REJECTED: frozenset(),
    DUPLICATE: frozenset(),
}


def can_move(from_state: str, to_state: str) -> bool:
    return to_state in TRANSITIONS.get(from_state, frozenset())
