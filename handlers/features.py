"""The features the engine serves besides hazard reports, in /help order."""

from __future__ import annotations

from handlers import attendance, patrols, timebank
from handlers.broadcasts import feature as broadcasts
from handlers.notices import feature as notices
from handlers.registry import Action, Command, Feature, Fire, OutboxKind
from handlers.surveys import feature as surveys

FEATURES: tuple[Feature, ...] = (
    patrols.FEATURE,
    attendance.FEATURE,
    timebank.FEATURE,
    broadcasts.FEATURE,
    notices.FEATURE,
    surveys.FEATURE,
)


def _merged(kind: str) -> dict[str, object]:
    merged: dict[str, object] = {}
    for feature in FEATURES:
        for name, handler in getattr(feature, kind).items():
            if name in merged:
                raise RuntimeError(f"two features claim the {kind[:-1]} {name!r}")
            merged[name] = handler
    return merged


COMMANDS: dict[str, Command] = _merged("commands")  # type: ignore[assignment]
ACTIONS: dict[str, Action] = _merged("actions")  # type: ignore[assignment]
SCHEDULES: dict[str, Fire] = _merged("schedules")  # type: ignore[assignment]
OUTBOX_KINDS: dict[str, OutboxKind] = _merged("outbox")  # type: ignore[assignment]


def help_commands(role: str) -> tuple[str, ...]:
    return tuple(name for feature in FEATURES for name in feature.help.get(role, ()))
