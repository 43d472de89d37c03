"""Channel-neutral inputs and replies.

Adapters turn a platform update into an `Incoming`; handlers answer with
`Reply` objects made of translatable `Text`. Nothing here knows a platform.
Replies that go through the outbox are stored as JSON, so every type here
round-trips through `to_json`/`from_json`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Keyboard = Literal["main", "location", "remove"]


@dataclass(frozen=True)
class Text:
    """A message key of the translation catalogue with its parameters."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verbatim:
    """User-provided text, shown as is in every language."""

    value: str


@dataclass(frozen=True)
class Localized:
    """A label configured per language (e.g. a custom category); falls back to the default language."""

    by_language: dict[str, str]


@dataclass(frozen=True)
class When:
    """A moment, shown in the community's time zone and the reader's locale."""

    at: datetime


@dataclass(frozen=True)
class DeepLink:
    """A link that opens a private chat with the bot carrying a start payload."""

    payload: str


@dataclass(frozen=True)
class Lines:
    """Several texts shown one per line."""

    items: tuple[Text | Verbatim | Lines, ...]


@dataclass(frozen=True)
class Choice:
    """A button: either an action token (see handlers.choices) or a deep link."""

    label: Text | Localized
    action: str | None = None
    deep_link: str | None = None


@dataclass(frozen=True)
class Document:
    """A file sent with a message: a calendar (.ics) or an export (.csv). Small by design.

    With `text`, the file is that text rendered in the reader's language when sent (UTF-8), and
    `data` is unused: a document written for a person (/mydata) rather than for a program.
    """

    filename: str
    mime: str
    data: bytes
    text: Text | Lines | None = None


@dataclass(frozen=True)
class BarSeries:
    label: Text
    colour: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class Chart:
    """A stacked bar chart, described neutrally: the channel side draws it in the reader's language.

    `category_keys` are plain ASCII stand-ins for the category labels, for machines
    without a font that can draw them (a grid's key for its Chinese name).
    """

    title: Text | Lines
    y_label: Text
    categories: tuple[Text | Verbatim, ...]
    category_keys: tuple[str, ...]
    series: tuple[BarSeries, ...]


@dataclass(frozen=True)
class Reply:
    text: Text | Lines
    choices: tuple[tuple[Choice, ...], ...] = ()
    photos: tuple[int, ...] = ()
    keyboard: Keyboard | None = None
    document: Document | None = None
    # Pin it where the bot may pin (urgent alerts in Telegram groups).
    pin: bool = False
    # Drawn as one more photo when the reply is sent.
    chart: Chart | None = None


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float

    @property
    def valid(self) -> bool:
        """On the globe: adapters pass on what the platform sent, and a client can send anything
        (NaN and infinities fail the comparisons)."""
        return -90 <= self.lat <= 90 and -180 <= self.lon <= 180


@dataclass(frozen=True)
class Incoming:
    """One thing a user did, as every channel can express it."""

    channel: str
    user_external_id: str
    chat_id: str
    display_name: str
    is_group: bool = False
    text: str | None = None
    command: str | None = None
    args: str = ""
    action: str | None = None
    photo: bytes | None = None
    location: Location | None = None
    # An update of a location shared live (Telegram): not a new answer, just where the person is now.
    live: bool = False
    unsupported: str | None = None
    language_hint: str | None = None


@dataclass
class Response:
    """What the handler wants said back in the chat the input came from."""

    replies: list[Reply] = field(default_factory=list)
    notice: Text | None = None
    # The language of the person who spoke, for rendering the above.
    language: str = "zh_CN"
    # Nothing of the input was stored: the database was locked by another process. The replies
    # say so; the channel keeps the input and hands it to the engine again a little later.
    busy: bool = False

    def say(self, key: str, **params: Any) -> Response:
        self.replies.append(Reply(Text(key, params)))
        return self


# --- JSON round trip for the outbox ---------------------------------------


def _value_to_json(value: Any) -> Any:
    if isinstance(value, Text):
        return {"$t": value.key, "p": {k: _value_to_json(v) for k, v in value.params.items()}}
    if isinstance(value, Verbatim):
        return {"$v": value.value}
    if isinstance(value, Localized):
        return {"$l": dict(value.by_language)}
    if isinstance(value, When):
        return {"$when": value.at.isoformat()}
    if isinstance(value, DeepLink):
        return {"$link": value.payload}
    if isinstance(value, Lines):
        return {"$lines": [_value_to_json(item) for item in value.items]}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot store message parameter of type {type(value).__name__}")


def _value_from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "$t" in value:
            return Text(value["$t"], {k: _value_from_json(v) for k, v in value["p"].items()})
        if "$v" in value:
            return Verbatim(value["$v"])
        if "$l" in value:
            return Localized(dict(value["$l"]))
        if "$when" in value:
            return When(datetime.fromisoformat(value["$when"]))
        if "$link" in value:
            return DeepLink(value["$link"])
        if "$lines" in value:
            return Lines(tuple(_value_from_json(item) for item in value["$lines"]))
    return value


def reply_to_json(reply: Reply) -> dict[str, Any]:
    return {
        "text": _value_to_json(reply.text),
        "choices": [
            [{"label": _value_to_json(c.label), "action": c.action, "deep_link": c.deep_link} for c in row]
            for row in reply.choices
        ],
        "photos": list(reply.photos),
        "keyboard": reply.keyboard,
        "pin": reply.pin,
        "chart": None if reply.chart is None else _chart_to_json(reply.chart),
        "document": None
        if reply.document is None
        else {
            "filename": reply.document.filename,
            "mime": reply.document.mime,
            "data": base64.b64encode(reply.document.data).decode("ascii"),
            "text": None if reply.document.text is None else _value_to_json(reply.document.text),
        },
    }


def reply_from_json(data: dict[str, Any]) -> Reply:
    return Reply(
        text=_value_from_json(data["text"]),
        choices=tuple(
            tuple(
                Choice(_value_from_json(c["label"]), action=c["action"], deep_link=c["deep_link"])
                for c in row
            )
            for row in data["choices"]
        ),
        photos=tuple(data["photos"]),
        keyboard=data["keyboard"],
        document=_document_from_json(data.get("document")),
        pin=bool(data.get("pin", False)),
        chart=_chart_from_json(data.get("chart")),
    )


def _document_from_json(data: dict[str, Any] | None) -> Document | None:
    if data is None:
        return None
    text = data.get("text")
    return Document(
        data["filename"],
        data["mime"],
        base64.b64decode(data["data"]),
        None if text is None else _value_from_json(text),
    )


def _chart_to_json(chart: Chart) -> dict[str, Any]:
    return {
        "title": _value_to_json(chart.title),
        "y_label": _value_to_json(chart.y_label),
        "categories": [_value_to_json(c) for c in chart.categories],
        "category_keys": list(chart.category_keys),
        "series": [
            {"label": _value_to_json(s.label), "colour": s.colour, "values": list(s.values)}
            for s in chart.series
        ],
    }


def _chart_from_json(data: dict[str, Any] | None) -> Chart | None:
    if data is None:
        return None
    return Chart(
        title=_value_from_json(data["title"]),
        y_label=_value_from_json(data["y_label"]),
        categories=tuple(_value_from_json(c) for c in data["categories"]),
        category_keys=tuple(data["category_keys"]),
        series=tuple(
            BarSeries(_value_from_json(s["label"]), s["colour"], tuple(s["values"])) for s in data["series"]
        ),
    )
