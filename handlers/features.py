"""The features the engine serves, in /help order: one line per feature."""

from __future__ import annotations

from handlers.accounts import feature as accounts
from handlers.attendance import feature as attendance
from handlers.broadcasts import feature as broadcasts
from handlers.digest import feature as digest
from handlers.notices import feature as notices
from handlers.patrols import feature as patrols
from handlers.privacy import feature as privacy
from handlers.registry import Feature, Registry
from handlers.reports import feature as reports
from handlers.surveys import feature as surveys
from handlers.timebank import feature as timebank

FEATURES: tuple[Feature, ...] = (
    reports.FEATURE,
    accounts.FEATURE,
    patrols.FEATURE,
    attendance.FEATURE,
    timebank.FEATURE,
    broadcasts.FEATURE,
    notices.FEATURE,
    digest.FEATURE,
    surveys.FEATURE,
    privacy.FEATURE,
)

# The engine's own commands, which no feature may claim, in /help order.
ENGINE_COMMANDS = ("cancel", "help")
REGISTRY = Registry(FEATURES, ENGINE_COMMANDS)
