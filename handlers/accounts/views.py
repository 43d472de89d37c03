"""The buttons and links of onboarding and invites."""

from __future__ import annotations

from typing import Any

from handlers import choices
from handlers.accounts.rules import (
    LINK_CODE_MINUTES,
    AuditPage,
    LinkRequest,
    RoleChange,
    StaffMember,
)
from handlers.community import LANGUAGES
from handlers.messages import Choice, Lines, Reply, Text, Verbatim, When
from storage.audit import VIA_CLI, AuditEntry
from storage.models import Invite, User
from storage.people import AccountLink

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


# Button kinds: linking (both sides), undoing a link, revoking a role, withdrawing an invite,
# paging back through the audit log.
LINK_ACTION = "lnk"
UNDO_LINK_ACTION = "lku"
ROLES_ACTION = "rol"
INVITES_ACTION = "ivw"
AUDIT_ACTION = "aud"


def name(person: User | None) -> Text | Verbatim:
    return Verbatim(person.display_name) if person is not None else Text("people.gone")


# Telegram is called Telegram in every language.
_CHANNEL_LABELS = {"wecom": "channel.wecom", "console": "channel.console"}


def channel_label(channels: tuple[str, ...] | list[str]) -> Text | Verbatim:
    # The app the person used last is the one they will recognise.
    if not channels:
        return Text("people.gone")
    key = _CHANNEL_LABELS.get(channels[0])
    return Text(key) if key else Verbatim(channels[0].capitalize())


def _button(key: str, kind: str, *parts: str | int, **params: Any) -> Choice:
    return Choice(Text(key, params), action=choices.encode(kind, *parts))


def link_confirm_claim(request: LinkRequest) -> Reply:
    text = Text(
        "link.confirm_claim",
        {
            "owner": name(request.owner),
            "owner_app": channel_label(request.owner_channels),
            "mine": name(request.claimer),
            "my_app": channel_label(request.claimer_channels),
        },
    )
    buttons = (
        _button("button.link_confirm", LINK_ACTION, "claim", request.code),
        _button("button.cancel", LINK_ACTION, "drop", request.code),
    )
    return Reply(text, (buttons,))


def link_confirm_owner(request: LinkRequest) -> Reply:
    text = Text(
        "link.confirm_owner",
        {
            "claimer": name(request.claimer),
            "claimer_app": channel_label(request.claimer_channels),
            "mine": name(request.owner),
            "minutes": LINK_CODE_MINUTES,
        },
    )
    buttons = (
        _button("button.link_confirm", LINK_ACTION, "ok", request.code),
        _button("button.link_refuse", LINK_ACTION, "no", request.code),
    )
    return Reply(text, (buttons,))


def links(shown: list[tuple[AccountLink, User | None]]) -> Reply:
    lines = Lines(
        tuple(
            Text(
                "links.line",
                {
                    "n": n,
                    "name": name(person),
                    "former": Verbatim(link.former_name),
                    "app": channel_label([channel for channel, _ in link.identities]),
                    "at": When(link.linked_at),
                },
            )
            for n, (link, person) in enumerate(shown, 1)
        )
    )
    buttons = tuple(
        _button("button.undo_link", UNDO_LINK_ACTION, "ask", link.id, n=n)
        for n, (link, _) in enumerate(shown, 1)
    )
    return Reply(Text("links.list", {"lines": lines}), _rows(buttons))


def confirm_undo(link: AccountLink, person: User | None) -> Reply:
    text = Text(
        "links.confirm_undo",
        {
            "name": name(person),
            "former": Verbatim(link.former_name),
            "app": channel_label([channel for channel, _ in link.identities]),
        },
    )
    return Reply(text, ((_button("button.undo_link_confirm", UNDO_LINK_ACTION, "do", link.id),),))


def _rows(buttons: tuple[Choice, ...], per_row: int = 3) -> tuple[tuple[Choice, ...], ...]:
    return tuple(buttons[i : i + per_row] for i in range(0, len(buttons), per_row))


def grid_list(grids: list[str]) -> Verbatim:
    return Verbatim("、".join(grids) if grids else "–")


def staff_list(members: list[StaffMember]) -> Reply:
    lines = Lines(
        tuple(
            Text(
                "roles.line",
                {
                    "n": n,
                    "name": name(member.person),
                    "role": Text(f"role.{member.person.role}"),
                    "grids": grid_list(member.grids),
                },
            )
            for n, member in enumerate(members, 1)
        )
    )
    buttons = tuple(
        _button("button.revoke_role", ROLES_ACTION, "ask", member.person.id, n=n)
        for n, member in enumerate(members, 1)
    )
    return Reply(Text("roles.list", {"lines": lines}), _rows(buttons))


def confirm_revoke(person: User) -> Reply:
    text = Text("roles.confirm_revoke", {"name": name(person), "role": Text(f"role.{person.role}")})
    buttons = (
        _button("button.revoke_role_confirm", ROLES_ACTION, "do", person.id),
        _button("button.cancel", ROLES_ACTION, "drop", person.id),
    )
    return Reply(text, (buttons,))


def role_granted_to_you(change: RoleChange) -> Reply:
    return Reply(Text("roles.granted_you", {"role": Text(f"role.{change.person.role}")}))


def role_revoked_from_you(change: RoleChange) -> Reply:
    return Reply(Text("roles.revoked_you", {"previous": Text(f"role.{change.previous}")}))


def role_granted_note(change: RoleChange) -> Reply:
    params = {
        "name": name(change.person),
        "role": Text(f"role.{change.person.role}"),
        "grids": grid_list(change.grids),
    }
    return Reply(Text("roles.granted_police", params))


def role_revoked_note(change: RoleChange) -> Reply:
    params = {"name": name(change.person), "previous": Text(f"role.{change.previous}")}
    return Reply(Text("roles.revoked_police", params))


def outstanding_invites(invites: list[Invite], makers: dict[int, User]) -> Reply:
    lines = Lines(
        tuple(
            Text(
                "invites.line",
                {
                    "n": n,
                    "role": Text(f"role.{invite.role}"),
                    "grid": Verbatim(invite.grid_key or "–"),
                    "by": name(makers.get(invite.created_by)),
                    "expires": When(invite.expires_at),
                },
            )
            for n, invite in enumerate(invites, 1)
        )
    )
    buttons = tuple(
        _button("button.withdraw_invite", INVITES_ACTION, "do", invite.code, n=n)
        for n, invite in enumerate(invites, 1)
    )
    return Reply(Text("invites.list", {"lines": lines}), _rows(buttons))


def _actor(entry: AuditEntry, people: dict[int, User]) -> Text | Verbatim:
    if entry.actor_id is None:
        return Text("audit.by_cli" if entry.via == VIA_CLI else "audit.by_system")
    person = people.get(entry.actor_id)
    return Verbatim(person.display_name) if person else Text("audit.gone", {"id": entry.actor_id})


def _subject(entry: AuditEntry, people: dict[int, User]) -> Text | Verbatim:
    if entry.subject_id is None:
        return Verbatim("–")
    person = people.get(entry.subject_id)
    return Verbatim(person.display_name) if person else Text("audit.gone", {"id": entry.subject_id})


def audit_page(page: AuditPage) -> Reply:
    lines = Lines(
        tuple(
            Text(
                "audit.line",
                {
                    "at": When(entry.at),
                    "action": Verbatim(entry.action),
                    "actor": _actor(entry, page.people),
                    "subject": _subject(entry, page.people),
                    "target": Verbatim(entry.target or "–"),
                },
            )
            for entry in page.entries
        )
    )
    buttons: tuple[tuple[Choice, ...], ...] = ()
    if page.older_than is not None:
        buttons = ((_button("button.audit_older", AUDIT_ACTION, "older", page.older_than),),)
    return Reply(Text("audit.list", {"lines": lines}), buttons)
