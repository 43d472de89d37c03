"""The translation catalogues are complete, consistent and safe to render.

Message ids are stable keys (see bot/i18n.py). The keys the code uses are found
by reading the source of handlers/ and bot/: literal first arguments of
``say``/``notice``/``Text``/``DomainError``/``gettext`` (including both sides
of ``"a" if x else "b"`` and a local variable assigned such a literal),
``expired_key=...``, any other string literal in a namespace the code uses for
keys (``"notify.reminder"`` passed to a helper), and the key families built with
f-strings, expanded from the code's own constants. A new key in the code
without a translation, or a new f-string family nobody expanded, fails here.
"""

from __future__ import annotations

import ast
import re
import string
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel import Locale
from babel.dates import format_datetime
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from bot.i18n import MENU, Translator, catalog_paths, load_catalogs
from handlers.attendance.rules import REASON_PATROL, REASON_PATROL_VOIDED
from handlers.broadcasts import rules as broadcast_rules
from handlers.broadcasts import views as broadcast_views
from handlers.community import DEFAULT_CATEGORIES, LANGUAGES
from handlers.features import REGISTRY
from handlers.help import commands_by_role
from handlers.reports.filing import FIELDS
from handlers.reports.rules import REASON_REPORT_RESOLVED
from handlers.surveys.rules import REASON_SURVEY
from handlers.timebank.rules import (
    REASON_AWARD,
    REASON_AWARD_REVOKED,
    REASON_REDEMPTION_NO_STOCK,
    REASON_REDEMPTION_REQUESTED,
    REASON_REDEMPTION_RETURNED,
    REASON_REPORT_USEFUL,
)
from storage import report_states
from storage.ledger import REASON_ACCOUNTS_MERGED, REASON_REDEMPTION_APPROVED, REASON_REDEMPTION_REJECTED
from storage.roles import ROLES
from storage.schema import REPORT_STATES, URGENCIES

ROOT = Path(__file__).resolve().parent.parent
LOCALES_DIR = ROOT / "locales"
SOURCE_DIRS = ("handlers", "bot")

KEY_RE = re.compile(r"^[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_]+)+$")
# The literal start of an f-string that builds a key, e.g. "category." or "report.field_".
KEY_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_]*\.(?:[A-Za-z0-9_]+\.)*[A-Za-z0-9_]*$")
# Calls whose first argument (second for gettext) is a message key.
KEY_CALLS = {"say": 0, "notice": 0, "Text": 0, "DomainError": 0, "gettext": 1}
# Keyword arguments of Ctx.say that are not message parameters.
SAY_OPTIONS = frozenset({"choices", "keyboard", "photos"})
# The plain-regex view of the same call sites, as a cross-check of the AST reading.
LITERAL_KEY_PATTERNS = (
    re.compile(r"""(?:\.say|\.notice|\bText|\bDomainError)\(\s*["']([a-z][A-Za-z0-9_.]*)["']"""),
    re.compile(r"""\bexpired_key\s*(?::\s*str\s*)?=\s*["']([a-z][A-Za-z0-9_.]*)["']"""),
)

LANGUAGE_NAMES = {"zh_CN": "简体中文", "en": "English", "zh_TW": "繁體中文"}
# Messages that may read the same in Chinese and English.
SAME_IN_EVERY_LANGUAGE = frozenset({"format.datetime", *(f"language.{code}" for code in LANGUAGES)})
# Telegram shows at most 200 characters in the toast of a pressed button.
NOTICE_MAX_CHARS = 200


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _states_told_to_reporter() -> list[str]:
    # reports/tell.moved tells the reporter on every move, so every state a report can move into.
    return sorted(set().union(*report_states.TRANSITIONS.values()))


def _string_args(module: str, function: str, position: int) -> list[str]:
    """The literal strings passed as argument `position` to `function` in a handlers module."""
    tree = ast.parse((ROOT / "handlers" / f"{module}.py").read_text(encoding="utf-8"))
    found = {
        node.args[position].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and _call_name(node) == function
        and len(node.args) > position
        and isinstance(node.args[position], ast.Constant)
        and isinstance(node.args[position].value, str)
    }
    assert found, f"no calls of {function}() found in handlers/{module}.py"
    return sorted(found)


# Key families built with f-strings: prefix -> the suffixes the code can produce.
DYNAMIC_FAMILIES: dict[str, list[str]] = {
    "category.": [category.key for category in DEFAULT_CATEGORIES],
    "state.": list(REPORT_STATES),
    "urgency.": list(URGENCIES),
    "button.urgency_": list(URGENCIES),
    "role.": list(ROLES),
    "language.": list(LANGUAGES),
    "notify.reporter.": _states_told_to_reporter(),
    "report.field_": list(FIELDS),
    "report.expected_": _string_args("reports/filing", "_wrong_input", 1),
    "help.command.": sorted({name for names in commands_by_role(REGISTRY).values() for name in names}),
    "tier.": ["bronze", "silver", "gold"],
    # ISO weekdays (handlers/patrols/wording.py).
    "patrol.weekday.": [str(day) for day in range(1, 8)],
    # Broadcasts (handlers/broadcasts/rules.py, views.py).
    "broadcast.kind_": list(broadcast_rules.KINDS),
    "broadcast.priority_": list(broadcast_rules.PRIORITIES),
    "broadcast.message_": list(broadcast_rules.PRIORITIES),
    "broadcast.audience_": list(broadcast_rules.AUDIENCES),
    "broadcast.state_": ["scheduled", "sending", "sent", "cancelled"],
    "broadcast.field_": list(broadcast_views.FIELDS),
    # What each feature's personal data is, as /mydata shows it (handlers/registry.py PersonalData.key).
    "mydata.held.": sorted(
        {f"{declared.table}.{declared.person_column}" for declared in REGISTRY.personal_data}
    ),
}
# Reasons of ledger entries: their keys are stored with the entry and rendered by /points.
LEDGER_REASONS: dict[str, frozenset[str]] = {
    REASON_REPORT_RESOLVED: frozenset({"ticket"}),
    REASON_REDEMPTION_APPROVED: frozenset(),
    REASON_REDEMPTION_REJECTED: frozenset(),
    REASON_ACCOUNTS_MERGED: frozenset(),
    REASON_REPORT_USEFUL: frozenset({"ticket"}),
    REASON_AWARD: frozenset({"reason"}),
    REASON_AWARD_REVOKED: frozenset({"reason"}),
    REASON_REDEMPTION_REQUESTED: frozenset({"reward"}),
    REASON_REDEMPTION_RETURNED: frozenset({"reward", "reason"}),
    REASON_REDEMPTION_NO_STOCK: frozenset({"reward"}),
    REASON_PATROL: frozenset({"area", "minutes", "date"}),
    REASON_PATROL_VOIDED: frozenset({"area", "date"}),
    REASON_SURVEY: frozenset({"title"}),
}
# Parameters of keys whose call sites the scanner cannot read (the key or the
# parameters are built in a variable). Keep in step with handlers/reports/.
INDIRECT_PARAMS: dict[str, frozenset[str]] = {
    **{
        f"notify.reporter.{state}": frozenset({"ticket", "state", "category", "note", "original"})
        for state in DYNAMIC_FAMILIES["notify.reporter."]
    },
    "notify.new_report": frozenset({"ticket", "card"}),
    "notify.reminder": frozenset({"ticket", "card"}),
    **LEDGER_REASONS,
}


# --- reading the code -----------------------------------------------------------------


@dataclass
class CodeKeys:
    # key -> "file:line" of each use
    static: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # key -> parameter names passed, or None once any use passes parameters we cannot read
    params: dict[str, set[str] | None] = field(default_factory=dict)
    # f-string prefix -> "file:line" of each use
    families: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # keys passed to notice() or raised as DomainError (both end up in button toasts)
    toasts: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)

    def all_keys(self) -> set[str]:
        expanded = {prefix + suffix for prefix, suffixes in DYNAMIC_FAMILIES.items() for suffix in suffixes}
        return set(self.static) | expanded

    def record_params(self, key: str, params: set[str] | None) -> None:
        if key in self.params and self.params[key] is None:
            return
        if params is None:
            self.params[key] = None
        else:
            self.params[key] = (self.params.get(key) or set()) | params


class _Scanner:
    def __init__(self, path: Path, keys: CodeKeys) -> None:
        self.where = str(path.relative_to(ROOT))
        self.source = path.read_text(encoding="utf-8")
        self.tree = ast.parse(self.source)
        self.keys = keys
        # Key-shaped literals not at a known call site; kept by sweep() if their namespace is a key namespace.
        self.loose: list[ast.Constant] = []
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent

    def _in_domain_error(self, node: ast.AST) -> bool:
        """Inside a subclass of DomainError, whose key goes to super().__init__(key)."""
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.ClassDef):
                return any(isinstance(base, ast.Name) and base.id == "DomainError" for base in node.bases)
        return False

    def _scope(self, node: ast.AST) -> ast.AST:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node
        return self.tree

    def _literals(
        self, node: ast.AST, scope: ast.AST, depth: int = 0
    ) -> Iterator[ast.Constant | ast.JoinedStr]:
        """String literals (and f-strings) an expression can evaluate to."""
        if isinstance(node, ast.JoinedStr) or (
            isinstance(node, ast.Constant) and isinstance(node.value, str)
        ):
            yield node
        elif isinstance(node, ast.IfExp):
            yield from self._literals(node.body, scope, depth)
            yield from self._literals(node.orelse, scope, depth)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                yield from self._literals(value, scope, depth)
        elif isinstance(node, ast.Name) and depth < 3:
            for assign in ast.walk(scope):
                if isinstance(assign, ast.Assign) and any(
                    isinstance(target, ast.Name) and target.id == node.id for target in assign.targets
                ):
                    yield from self._literals(assign.value, scope, depth + 1)

    @staticmethod
    def _params(call: ast.Call, name: str, position: int) -> set[str] | None:
        params: set[str] = set()
        for keyword in call.keywords:
            if keyword.arg is None:
                return None  # **spread
            if keyword.arg == "key" or (name == "say" and keyword.arg in SAY_OPTIONS):
                continue
            params.add(keyword.arg)
        extra = call.args[position + 1 :]
        if name == "Text" and extra:
            mapping = extra[0]
            if not isinstance(mapping, ast.Dict) or not all(
                isinstance(k, ast.Constant) and isinstance(k.value, str) for k in mapping.keys
            ):
                return None
            params |= {k.value for k in mapping.keys}  # type: ignore[union-attr]
        return params

    def _family(self, node: ast.JoinedStr) -> str | None:
        first = node.values[0] if node.values else None
        if (
            isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and KEY_PREFIX_RE.match(first.value)
        ):
            return first.value
        return None

    def scan(self) -> None:
        inside_fstrings = {
            id(part)
            for node in ast.walk(self.tree)
            if isinstance(node, ast.JoinedStr)
            for part in node.values
        }
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                self._call(node)
                for keyword in node.keywords:
                    if keyword.arg == "expired_key":
                        self._expired(keyword.value)
            elif isinstance(node, ast.AnnAssign | ast.Assign):
                targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                if node.value is not None and any(
                    isinstance(t, ast.Name) and t.id == "expired_key" for t in targets
                ):
                    self._expired(node.value)
            elif isinstance(node, ast.JoinedStr):
                prefix = self._family(node)
                if prefix is not None:
                    self.keys.families[prefix].add(f"{self.where}:{node.lineno}")
        self.loose = [
            node
            for node in ast.walk(self.tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in inside_fstrings
            and KEY_RE.match(node.value)
        ]
        for pattern in LITERAL_KEY_PATTERNS:
            for match in pattern.finditer(self.source):
                line = self.source.count("\n", 0, match.start()) + 1
                self.keys.static[match.group(1)].add(f"{self.where}:{line}")

    def _is_toast(self, node: ast.Call, name: str) -> bool:
        """Shown in a button's toast: notice(...), Response(notice=Text(...)), and every DomainError."""
        if name in ("notice", "DomainError"):
            return True
        parent = self.parents.get(node)
        return isinstance(parent, ast.keyword) and parent.arg == "notice"

    def _expired(self, value: ast.AST) -> None:
        for literal in self._literals(value, self._scope(value)):
            if isinstance(literal, ast.Constant):
                self.keys.static[literal.value].add(f"{self.where}:{literal.lineno}")
                self.keys.expired.add(literal.value)

    def _call(self, node: ast.Call) -> None:
        name = _call_name(node)
        if name == "__init__" and self._in_domain_error(node):
            name = "DomainError"
        if name not in KEY_CALLS:
            return
        position = KEY_CALLS[name]
        argument = node.args[position] if len(node.args) > position else None
        if argument is None:
            argument = next((k.value for k in node.keywords if k.arg == "key"), None)
        if argument is None:
            return
        params = self._params(node, name, position)
        for literal in self._literals(argument, self._scope(node)):
            if isinstance(literal, ast.JoinedStr):
                prefix = self._family(literal)
                if prefix is not None:
                    for suffix in DYNAMIC_FAMILIES.get(prefix, ()):
                        self.keys.record_params(prefix + suffix, params)
                continue
            key = literal.value
            if not KEY_RE.match(key):
                continue
            self.keys.static[key].add(f"{self.where}:{literal.lineno}")
            self.keys.record_params(key, params)
            if self._is_toast(node, name):
                self.keys.toasts.add(key)

    def sweep(self, namespaces: set[str]) -> None:
        for node in self.loose:
            if node.value.split(".", 1)[0] in namespaces:
                self.keys.static[node.value].add(f"{self.where}:{node.lineno}")


@cache
def code_keys() -> CodeKeys:
    keys = CodeKeys()
    for key, _command in MENU:
        keys.static[key].add("bot/i18n.py:MENU")
        keys.record_params(key, set())
    scanners = [
        _Scanner(path, keys) for directory in SOURCE_DIRS for path in sorted((ROOT / directory).rglob("*.py"))
    ]
    for scanner in scanners:
        scanner.scan()
    namespaces = {key.split(".", 1)[0] for key in keys.static} | {
        prefix.split(".", 1)[0] for prefix in DYNAMIC_FAMILIES
    }
    for scanner in scanners:
        scanner.sweep(namespaces)
    # Every flow's expiry message is sent by the same call as "conversation.expired".
    for key in keys.expired:
        keys.params[key] = keys.params.get("conversation.expired")
    for key, params in INDIRECT_PARAMS.items():
        keys.params[key] = set(params)
    return keys


# --- reading the catalogues -------------------------------------------------------------


@cache
def catalogs(language: str) -> tuple[Catalog, ...]:
    """Every catalogue of the language: the main one and one per feature."""
    found = []
    for path in catalog_paths(LOCALES_DIR, language):
        with path.open("rb") as handle:
            found.append(read_po(handle, locale=language, abort_invalid=True))
    return tuple(found)


def entries(language: str) -> list[Message]:
    return [m for po in catalogs(language) for m in po if m.id]


@cache
def messages(language: str) -> dict[str, str]:
    return {str(m.id): str(m.string) for m in entries(language)}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def literal_text(text: str) -> str:
    return "".join(literal for literal, _, _, _ in string.Formatter().parse(text))


def _has_words(text: str) -> bool:
    return any(unicodedata.category(char).startswith("L") for char in literal_text(text))


def _every_key() -> list[str]:
    return sorted(set().union(*(messages(language) for language in LANGUAGES)))


def _render(text: str) -> str:
    return text.format_map({name: f"<{name}>" for name in placeholders(text)})


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_parses_with_standard_headers(language: str) -> None:
    for po in catalogs(language):
        headers = dict(po.mime_headers)
        assert headers.get("Language") == language
        assert "charset=utf-8" in headers.get("Content-Type", "").lower()
        assert headers.get("Plural-Forms", "").startswith("nplurals=")
        assert not po.fuzzy, "the header is marked fuzzy"


def test_every_language_has_the_same_catalogue_files() -> None:
    names = {language: [p.name for p in catalog_paths(LOCALES_DIR, language)] for language in LANGUAGES}
    assert all(files == names["zh_CN"] for files in names.values()), names


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_fuzzy_empty_or_duplicate_entries(language: str) -> None:
    # Unique across all of the language's files: a key translated twice would depend on file order.
    ids = [str(m.id) for m in entries(language)]
    assert len(ids) == len(set(ids)), sorted(key for key in ids if ids.count(key) > 1)
    fuzzy = sorted(str(m.id) for m in entries(language) if m.fuzzy)
    assert not fuzzy, f"{language}: fuzzy entries {fuzzy}"
    empty = sorted(key for key, text in messages(language).items() if not text.strip())
    assert not empty, f"{language}: untranslated entries {empty}"
    obsolete = [str(m.id) for po in catalogs(language) for m in po.obsolete.values()]
    assert not obsolete, f"{language}: obsolete (#~) entries"
    malformed = sorted(key for key in messages(language) if not KEY_RE.match(key))
    assert not malformed, f"{language}: ids that are not message keys {malformed}"


def test_catalogues_have_the_same_keys() -> None:
    reference = set(messages("zh_CN"))
    for language in LANGUAGES:
        keys = set(messages(language))
        assert keys == reference, (
            f"{language} is missing {sorted(reference - keys)} and has extra {sorted(keys - reference)}"
        )


def test_scanner_finds_the_keys_of_the_code() -> None:
    # Guards the scanner itself: if these stop being found, the reading of the code broke.
    found = code_keys().all_keys()
    for key in (
        "report.ask_category",  # ctx.say
        "review.see_private_chat",  # ctx.notice
        "report.card",  # Text(key, {...})
        "error.not_allowed",  # DomainError subclass
        "report.expired",  # expired_key=
        "report.line_overdue",  # Text("a" if x else "b", ...)
        "group.use_private",  # key = "a" if x else "b"; ctx.say(key)
        "notify.reminder",  # a literal handed to a helper
        "menu.send_location",  # gettext(language, key)
        "format.datetime",
        "menu.report",
    ):
        assert key in found, key
    assert code_keys().params["report.description_too_long"] == {"max", "length"}


def test_every_f_string_key_family_is_expanded() -> None:
    families = code_keys().families
    unknown = {prefix: sorted(where) for prefix, where in families.items() if prefix not in DYNAMIC_FAMILIES}
    assert not unknown, f"keys built with f-strings that DYNAMIC_FAMILIES does not expand: {unknown}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_used_in_code_is_translated(language: str) -> None:
    keys = code_keys()
    missing = sorted(keys.all_keys() - set(messages(language)))
    where = {key: sorted(keys.static.get(key, {"(f-string family)"})) for key in missing}
    assert not missing, f"{language} lacks translations for {where}"


def test_placeholders_are_the_same_in_every_language() -> None:
    problems = []
    for key in _every_key():
        by_language = {language: placeholders(messages(language).get(key, "")) for language in LANGUAGES}
        if len({frozenset(names) for names in by_language.values()}) != 1:
            problems.append(f"{key}: {by_language}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_are_ones_the_code_passes(language: str) -> None:
    """A placeholder the code never fills would be shown to people as "{name}"."""
    problems = []
    for key, text in messages(language).items():
        names = placeholders(text)
        bad = [name for name in names if not name.isidentifier()]
        if bad:
            problems.append(f"{key}: placeholders must be plain names, not {bad}")
        passed = code_keys().params.get(key)
        if passed is not None and names - passed:
            problems.append(f"{key}: uses {sorted(names - passed)} but the code passes only {sorted(passed)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_renders(language: str) -> None:
    for key, text in messages(language).items():
        if key == "format.datetime":
            continue
        try:
            _render(text)
        except (ValueError, KeyError, IndexError, AttributeError) as exc:
            pytest.fail(f"{language} {key}: {exc!r} (literal braces must be doubled)")


@pytest.mark.parametrize("language", LANGUAGES)
def test_date_pattern_is_a_babel_pattern(language: str) -> None:
    pattern = messages(language)["format.datetime"]
    moment = datetime(2026, 5, 18, 1, 5, tzinfo=UTC)
    shown = format_datetime(moment, pattern, tzinfo=ZoneInfo("Asia/Shanghai"), locale=Locale.parse(language))
    assert "09:05" in shown


@pytest.mark.parametrize("language", ["zh_CN", "zh_TW"])
def test_chinese_is_not_left_in_english(language: str) -> None:
    english = messages("en")
    same = sorted(
        key
        for key, text in messages(language).items()
        if key not in SAME_IN_EVERY_LANGUAGE and text == english.get(key) and _has_words(text)
    )
    assert not same, f"{language} copies the English text of {same}"


def test_language_names_are_the_same_everywhere() -> None:
    assert set(LANGUAGE_NAMES) == set(LANGUAGES)
    for language in LANGUAGES:
        for code, name in LANGUAGE_NAMES.items():
            assert messages(language)[f"language.{code}"] == name


def test_menu_labels_lead_back_to_their_command() -> None:
    translator = Translator(load_catalogs(LOCALES_DIR, LANGUAGES), "zh_CN", ZoneInfo("Asia/Shanghai"))
    for language in LANGUAGES:
        for key, command in MENU:
            assert translator.menu_command(translator.gettext(language, key)) == command, (language, key)


@pytest.mark.parametrize("language", LANGUAGES)
def test_toasts_fit_in_a_button_answer(language: str) -> None:
    too_long = {
        key: len(_render(messages(language)[key]))
        for key in code_keys().toasts
        if key in messages(language) and len(_render(messages(language)[key])) > NOTICE_MAX_CHARS
    }
    assert not too_long, f"{language}: toasts longer than {NOTICE_MAX_CHARS} characters {too_long}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_messages_that_must_carry_their_details(language: str) -> None:
    texts = messages(language)
    card_params = code_keys().params["report.card"]
    assert card_params is not None
    assert placeholders(texts["report.card"]) == card_params
    assert "\n" in texts["report.card"]
    for state in ("resolved", "rejected"):
        assert "note" in placeholders(texts[f"notify.reporter.{state}"]), state
    assert "original" in placeholders(texts["notify.reporter.duplicate"])
    # The grid worker's name comes as {note}; the reporter is not told who it is.
    assert "note" not in placeholders(texts["notify.reporter.assigned"])
    assert "community" in placeholders(texts["onboarding.privacy"])
    assert "/cancel" in texts["onboarding.privacy"]
    assert len(texts["onboarding.privacy"].splitlines()) <= 8
    assert "example" in placeholders(texts["onboarding.ask_building"])
    for key in DYNAMIC_FAMILIES["help.command."]:
        line = texts[f"help.command.{key}"]
        assert line.startswith(f"/{key} ") and "\n" not in line, key


# --- wording per channel ------------------------------------------------------------------

CHANNELS = ("telegram", "wecom", "console")
# What only Telegram has: its reply keyboard's location button, photo captions, live locations.
TELEGRAM_ONLY = {
    "zh_CN": ("发送当前位置", "配文字说明", "带文字说明", "实时位置", "附件菜单"),
    "en": ("Send my current location", "caption", "live location", "attachment menu"),
    "zh_TW": ("傳送目前位置", "附文字說明", "帶文字說明", "即時位置", "附件選單"),
}


def _variants(language: str) -> dict[str, str]:
    """Channel variants (`<key>.<channel>`, see bot/i18n.py) -> the key they stand in for."""
    return {key: key.rsplit(".", 1)[0] for key in messages(language) if key.rsplit(".", 1)[-1] in CHANNELS}


@pytest.mark.parametrize("language", LANGUAGES)
def test_channel_variants_stand_in_for_a_key_with_the_same_placeholders(language: str) -> None:
    texts = messages(language)
    assert _variants(language), "no channel variants found: the check below checks nothing"
    for variant, key in _variants(language).items():
        assert key in texts, f"{variant} varies a key that does not exist"
        assert placeholders(texts[variant]) == placeholders(texts[key]), variant


@pytest.mark.parametrize("language", LANGUAGES)
def test_nothing_on_wechat_work_points_at_what_only_telegram_has(language: str) -> None:
    translator = Translator(load_catalogs(LOCALES_DIR, LANGUAGES), "zh_CN", ZoneInfo("Asia/Shanghai"))
    keyboard = [translator.gettext(language, key) for key, _ in MENU]
    shown = {
        key: translator.gettext(language, key, "wecom")
        for key in messages(language)
        if not key.startswith("menu.") and key not in _variants(language)
    }
    wrong = {
        key: [phrase for phrase in (*keyboard, *TELEGRAM_ONLY[language]) if phrase in text]
        for key, text in shown.items()
    }
    assert not {key: found for key, found in wrong.items() if found}
    # The same keys keep their Telegram wording there.
    assert translator.gettext(language, "report.ask_location") != shown["report.ask_location"]
