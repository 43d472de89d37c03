"""Translation catalogues (gettext .po files read with Babel) and rendering of neutral replies.

Message ids are stable keys such as ``report.ask_category``; every language,
English included, is a translation of the key, so wording can change without
touching code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime
from babel.messages.pofile import read_po

from handlers.community import LANGUAGES
from handlers.messages import DeepLink, Document, Keyboard, Lines, Localized, Reply, Text, Verbatim, When
from handlers.text import clean_text

DEFAULT_LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "shouwang"
# Labels of the persistent keyboard, and the command each one stands for.
MENU = (("menu.report", "report"), ("menu.myreports", "myreports"), ("menu.help", "help"))


@dataclass(frozen=True)
class RenderedButton:
    label: str
    action: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class RenderedMessage:
    text: str
    buttons: list[list[RenderedButton]] = field(default_factory=list)
    photos: tuple[int, ...] = ()
    keyboard: Keyboard | None = None
    keyboard_labels: list[str] = field(default_factory=list)
    document: Document | None = None
    pin: bool = False


class _SafeParams(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Translator:
    def __init__(
        self, catalogs: dict[str, dict[str, str]], default_language: str, timezone: ZoneInfo
    ) -> None:
        self.catalogs = catalogs
        self.default_language = default_language
        self.timezone = timezone
        self._menu = {
            self.gettext(language, key).strip().casefold(): command
            for language in catalogs
            for key, command in MENU
        }

    @classmethod
    def load(
        cls, default_language: str, timezone: ZoneInfo, locales_dir: Path = DEFAULT_LOCALES_DIR
    ) -> Translator:
        return cls(load_catalogs(locales_dir, LANGUAGES), default_language, timezone)

    def gettext(self, language: str, key: str, channel: str | None = None) -> str:
        """The message in `language`; on `channel`, its variant `<key>.<channel>` where there is one.

        Variants are for texts that name what only some platforms have (a reply keyboard's
        button, a photo caption, a live location): the plain key is the wording for the rest.
        """
        for candidate in (language, self.default_language, "en"):
            catalog = self.catalogs.get(candidate, {})
            message = (channel and catalog.get(f"{key}.{channel}")) or catalog.get(key)
            if message:
                return message
        return key

    def menu_command(self, text: str) -> str | None:
        """The command a persistent-keyboard label stands for, in whichever language it was shown."""
        return self._menu.get(text.strip().casefold())

    def text(
        self, language: str, value: Any, deep_link: Callable[[str], str], channel: str | None = None
    ) -> str:
        if isinstance(value, Text):
            params = _SafeParams(
                {k: self.text(language, v, deep_link, channel) for k, v in value.params.items()}
            )
            return self.gettext(language, value.key, channel).format_map(params)
        if isinstance(value, Verbatim):
            # Also cleaned where it is stored; here for what was stored before that, or elsewhere.
            return clean_text(value.value)
        if isinstance(value, Localized):
            names = value.by_language
            return names.get(language) or names.get(self.default_language) or next(iter(names.values()), "")
        if isinstance(value, When):
            pattern = self.gettext(language, "format.datetime")
            return format_datetime(value.at, pattern, tzinfo=self.timezone, locale=_locale(language))
        if isinstance(value, DeepLink):
            return deep_link(value.payload)
        if isinstance(value, Lines):
            return "\n".join(self.text(language, item, deep_link, channel) for item in value.items)
        return clean_text(str(value))

    def render(
        self, language: str, reply: Reply, deep_link: Callable[[str], str], channel: str | None = None
    ) -> RenderedMessage:
        """The reply in `language`, worded for `channel` (see gettext)."""
        buttons = [
            [
                RenderedButton(
                    self.text(language, choice.label, deep_link, channel),
                    action=choice.action,
                    url=deep_link(choice.deep_link) if choice.deep_link is not None else None,
                )
                for choice in row
            ]
            for row in reply.choices
        ]
        labels: list[str] = []
        if reply.keyboard == "main":
            labels = [self.gettext(language, key) for key, _ in MENU]
        elif reply.keyboard == "location":
            labels = [self.gettext(language, "menu.send_location")]
        document = reply.document
        if document is not None and document.text is not None:
            written = self.text(language, document.text, deep_link).encode("utf-8")
            document = Document(document.filename, document.mime, written)
        return RenderedMessage(
            self.text(language, reply.text, deep_link, channel),
            buttons,
            reply.photos,
            reply.keyboard,
            labels,
            document,
            reply.pin,
        )


def catalog_paths(locales_dir: Path, language: str) -> list[Path]:
    """The language's catalogues: the main domain first, then one per feature (patrols.po, ...)."""
    directory = locales_dir / language / "LC_MESSAGES"
    main = directory / f"{DOMAIN}.po"
    return [main, *sorted(p for p in directory.glob("*.po") if p != main)]


def load_catalogs(locales_dir: Path, languages: Iterable[str]) -> dict[str, dict[str, str]]:
    catalogs: dict[str, dict[str, str]] = {}
    for language in languages:
        merged: dict[str, str] = {}
        for path in catalog_paths(locales_dir, language):
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
            merged.update(
                (str(message.id), str(message.string))
                for message in catalog
                if message.id and message.string and not message.fuzzy
            )
        catalogs[language] = merged
    return catalogs


@cache
def _locale(language: str) -> Locale:
    # Locale.parse looks for the locale's data file on disk every time.
    return Locale.parse(language)
