"""What /mydata sends and what the erasure confirmations say."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from handlers import choices
from handlers.community import Community
from handlers.messages import Choice, Document, Lines, Reply, Text, Verbatim
from handlers.privacy.rules import PersonalExport
from storage.models import User

ACTION = "prv"
# Nested values deeper than this are shown as JSON text: the readable file stays flat.
_INDENT = "    "


def _value(value: Any, tz: tzinfo) -> Text | Verbatim:
    if isinstance(value, datetime):
        # With the year, unlike the chat's short times: a record may be years old.
        return Verbatim(value.astimezone(tz).strftime("%Y-%m-%d %H:%M"))
    if value is None:
        return Text("mydata.doc_empty")
    if isinstance(value, bool):
        return Text("mydata.doc_yes" if value else "mydata.doc_no")
    return Verbatim(str(value))


def _row_lines(row: dict[str, Any], depth: int, tz: tzinfo) -> list[Text | Verbatim | Lines]:
    lines: list[Text | Verbatim | Lines] = []
    indent = _INDENT * depth
    for name, value in row.items():
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            lines.append(Text("mydata.doc_list", {"indent": indent, "name": name, "count": len(value)}))
            for number, item in enumerate(value, 1):
                lines.append(Text("mydata.doc_row", {"indent": indent + _INDENT, "number": number}))
                lines.extend(_row_lines(item, depth + 2, tz))
        else:
            lines.append(
                Text("mydata.doc_field", {"indent": indent, "name": name, "value": _value(value, tz)})
            )
    return lines


def readable(export: PersonalExport, community: Community) -> Lines:
    """Everything held, one section per kind of data, in the reader's language."""
    lines: list[Text | Verbatim | Lines] = [
        Text(
            "mydata.doc_title",
            {"community": community.name, "when": _value(export.exported_at, community.tz)},
        ),
        Text("mydata.doc_intro"),
    ]
    for section in export.sections:
        lines.append(Verbatim(""))
        lines.append(
            Text("mydata.doc_section", {"what": Text(section.declaration.key), "count": len(section.rows)})
        )
        for number, row in enumerate(section.rows, 1):
            lines.append(Text("mydata.doc_row", {"indent": _INDENT, "number": number}))
            lines.extend(_row_lines(row, 2, community.tz))
    return Lines(tuple(lines))


def export_replies(export: PersonalExport, community: Community) -> list[Reply]:
    day = export.exported_at.astimezone(community.tz).date().isoformat()
    text_file = Document(f"shouwang-mydata-{day}.txt", "text/plain", b"", readable(export, community))
    json_file = Document(f"shouwang-mydata-{day}.json", "application/json", export.to_json())
    return [
        Reply(Text("mydata.ready_readable", {"rows": export.row_count}), document=text_file),
        Reply(Text("mydata.ready_json"), document=json_file),
    ]


def _buttons(confirm: str, confirm_label: str) -> tuple[tuple[Choice, ...], ...]:
    return (
        (Choice(Text(confirm_label), action=confirm),),
        (Choice(Text("button.keep_account"), action=choices.encode(ACTION, "keep")),),
    )


def confirm_self_erase(user: User) -> Reply:
    return Reply(
        Text("deleteme.confirm"),
        _buttons(choices.encode(ACTION, "me", user.id), "button.erase_me"),
    )


def confirm_erase(target: User, channel: str, external_id: str) -> Reply:
    return Reply(
        Text(
            "erase.confirm",
            {
                "name": Verbatim(target.display_name),
                "role": Text(f"role.{target.role}"),
                "channel": channel,
                "user": Verbatim(external_id),
            },
        ),
        _buttons(choices.encode(ACTION, "who", target.id), "button.erase_person"),
    )
