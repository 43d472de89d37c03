"""The buttons and links of onboarding and invites."""

from __future__ import annotations

from handlers import choices
from handlers.community import LANGUAGES
from handlers.messages import Choice, Text

# `/start inv_<code>`: the deep link an invite is.
INVITE_PREFIX = "inv_"
# The button kind of the language buttons.
LANGUAGE_ACTION = "lang"


def language_choices() -> tuple[tuple[Choice, ...], ...]:
    return (
        tuple(
            Choice(Text(f"language.{code}"), action=choices.encode(LANGUAGE_ACTION, code))
            for code in LANGUAGES
        ),
    )
