"""Domain errors: each carries the message key that explains it to the user."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Something the user asked for cannot be done; the key says why, politely."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


class PermissionDenied(DomainError):
    def __init__(self) -> None:
        super().__init__("error.not_allowed")


class StaleAction(DomainError):
    """A button whose moment has passed: the report moved on, or the draft is gone."""

    def __init__(self) -> None:
        super().__init__("error.stale_button")


class PassToDraft(Exception):
    """Raised by a feature's button action that leaves this press to the running conversation
    (a language button during onboarding, "no comment" under a rating): the engine feeds it to the
    draft, or explains that the button is stale when there is none."""
