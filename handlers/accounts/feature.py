"""What accounts (onboarding, invites, linked accounts, language) plug into the engine."""

from __future__ import annotations

from handlers.accounts import auditing, invites, language, linking, onboarding, roles, rules
from handlers.accounts.views import (
    AUDIT_ACTION,
    INVITES_ACTION,
    LANGUAGE_ACTION,
    LINK_ACTION,
    ROLES_ACTION,
    UNDO_LINK_ACTION,
)
from handlers.registry import Feature, PersonalData

FEATURE = Feature(
    name="accounts",
    commands={
        "invite": invites.create,
        "invites": invites.list_outstanding,
        "roles": roles.list_staff,
        "links": linking.list_links,
        "audit": auditing.show_audit,
    },
    # Linking first is how a new account inherits a finished profile.
    open_commands={
        "start": onboarding.start_command,
        "language": language.ask_language,
        "link": linking.link,
    },
    actions={
        LANGUAGE_ACTION: language.on_language,
        LINK_ACTION: linking.on_link,
        UNDO_LINK_ACTION: linking.on_undo,
        ROLES_ACTION: roles.on_roles,
        INVITES_ACTION: invites.on_withdraw,
        AUDIT_ACTION: auditing.on_audit,
    },
    flows=(onboarding.FLOW,),
    welcome=onboarding.start,
    help_first={
        rules.ADMIN: ("invite", "invites", "roles", "links", "audit"),
        rules.POLICE: ("invite", "invites"),
    },
    help_last=("language", "link"),
    personal_data=(
        PersonalData("users", "id", "name, role, language, home building and grid, privacy consent"),
        PersonalData("identities", "user_id", "the chat accounts this person writes from"),
        PersonalData("grid_assignments", "user_id", "the grids this grid worker serves"),
        PersonalData("invites", "created_by", "invitations this person made"),
        PersonalData("invites", "used_by", "the invitation this person accepted"),
        PersonalData("link_codes", "user_id", "codes for linking another chat account"),
        PersonalData("account_links", "user_id", "chat accounts linked to this person, and when"),
        PersonalData("conversations", "user_id", "the unfinished dialogue (a draft) of this person"),
    ),
)
