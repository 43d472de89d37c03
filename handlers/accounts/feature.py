"""What accounts (onboarding, invites, linked accounts, language) plug into the engine."""

from __future__ import annotations

from handlers.accounts import invites, language, linking, onboarding, rules
from handlers.accounts.views import LANGUAGE_ACTION
from handlers.registry import CLEAR, DELETE, KEEP, Feature, PersonalData

FEATURE = Feature(
    name="accounts",
    commands={"invite": invites.create},
    # Linking first is how a new account inherits a finished profile.
    open_commands={
        "start": onboarding.start_command,
        "language": language.ask_language,
        "link": linking.link,
    },
    actions={LANGUAGE_ACTION: language.on_language},
    flows=(onboarding.FLOW,),
    welcome=onboarding.start,
    help_first={role: ("invite",) for role in rules.INVITABLE_BY},
    help_last=("language", "link"),
    personal_data=(
        PersonalData(
            "users",
            "id",
            "name, role, language, home building and grid, privacy consent",
            CLEAR,
            clear=("language", "grid_key", "building", "unit", "no_shows_forgiven_at"),
        ),
        PersonalData("identities", "user_id", "the chat accounts this person writes from", DELETE),
        PersonalData("grid_assignments", "user_id", "the grids this grid worker serves", DELETE),
        PersonalData("invites", "created_by", "invitations this person made", KEEP),
        PersonalData("invites", "used_by", "the invitation this person accepted", KEEP),
        PersonalData("link_codes", "user_id", "codes for linking another chat account", DELETE),
        PersonalData("conversations", "user_id", "the unfinished dialogue (a draft) of this person", DELETE),
    ),
)
