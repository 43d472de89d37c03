"""Load the community configuration file (TOML) into a ``Community``.

The file is written by hand by community administrators, so every problem is
reported as ``<file>:<line>: <key path>: <what is wrong>``, all of them at once,
letting the administrator fix the whole file in one pass.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from handlers.community import Community

__all__ = ["CommunityFileError", "load_community"]

Loc = tuple[str | int, ...]

_FRIENDLY = {
    "missing": "required key is missing",
    "extra_forbidden": "unknown key (check the spelling; see config/community.example.toml)",
}
_TOML_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


class CommunityFileError(Exception):
    """The community file is missing, unreadable or invalid.

    ``problems`` holds one line per problem; ``str()`` joins them.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def load_community(path: str | Path) -> Community:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CommunityFileError([f"{path}: community file not found"]) from None
    except OSError as exc:
        raise CommunityFileError([f"{path}: cannot read community file: {exc.strerror or exc}"]) from None

    try:
        # utf-8-sig because Windows editors like to prepend a BOM, which tomllib rejects.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CommunityFileError([f"{path}:{line}: file is not valid UTF-8 text; save it as UTF-8"]) from None

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CommunityFileError([_syntax_problem(path, text, exc)]) from None

    try:
        return Community.model_validate(data)
    except ValidationError as exc:
        lines = _KeyLines(text)
        problems: list[tuple[int, str]] = []
        for error in exc.errors():
            loc: Loc = tuple(error["loc"]) + tuple(error.get("ctx", {}).get("at", ()))
            line = lines.find(loc)
            problems.append((line, f"{path}:{line}: {_format_loc(loc)}: {_message(error)}"))
        # Stable sort keeps pydantic's order for problems on the same line.
        problems.sort(key=lambda p: p[0])
        raise CommunityFileError([p[1] for p in problems]) from None


def _syntax_problem(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> str:
    # Python 3.11's TOMLDecodeError only carries the position inside its message.
    message = str(exc)
    match = _TOML_POSITION_RE.search(message)
    if match:
        line, column = int(match[1]), int(match[2])
        message = f"{message[: match.start()]} (column {column})"
    else:
        line = max(1, len(text.splitlines()))
        message = message.replace(" (at end of document)", " at end of file")
    return f"{path}:{line}: TOML syntax error: {message}"


def _message(error: Any) -> str:
    if error["type"] in _FRIENDLY:
        return _FRIENDLY[error["type"]]
    if error["type"] == "value_error":
        # Skip pydantic's "Value error, " prefix: the administrator wants our text only.
        return str(error["ctx"]["error"])
    return str(error["msg"])


def _format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = part if _BARE_KEY_RE.fullmatch(part) else f'"{part}"'
            out += f".{key}" if out else key
    return out or "(top level)"


class _KeyLines:
    """Line numbers of the keys and table headers in TOML source text.

    tomllib does not expose positions, so this re-scans the raw lines. It only
    needs to understand enough TOML to track which table it is in, and to skip
    the inside of multi-line strings and arrays so their contents are not
    mistaken for keys or headers. The text is already known to be valid TOML.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[Loc, int] = {}
        # Resolved path of an array of tables -> how many entries seen so far.
        self._arrays: dict[Loc, int] = {}
        self._scan(text)

    def find(self, loc: Loc) -> int:
        # Fall back to the nearest enclosing key or table header, then line 1.
        for end in range(len(loc), 0, -1):
            line = self._lines.get(loc[:end])
            if line is not None:
                return line
        return 1

    def _record(self, loc: Loc, line: int) -> None:
        self._lines.setdefault(loc, line)

    def _resolve(self, keys: Sequence[str]) -> Loc:
        # "grids.center" inside the second [[grids]] means ("grids", 1, "center").
        loc: Loc = ()
        for key in keys:
            loc = (*loc, key)
            if loc in self._arrays:
                loc = (*loc, self._arrays[loc] - 1)
        return loc

    def _scan(self, text: str) -> None:
        table: Loc = ()
        state = _ValueState()
        for number, line in enumerate(text.splitlines(), start=1):
            if state.busy:
                state.feed(line)
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("[["):
                keys, _ = _parse_key(stripped[2:])
                prefix = self._resolve(keys[:-1])
                array = (*prefix, keys[-1])
                self._arrays[array] = self._arrays.get(array, 0) + 1
                table = (*array, self._arrays[array] - 1)
                self._record(array, number)
                self._record(table, number)
            elif stripped.startswith("["):
                keys, _ = _parse_key(stripped[1:])
                table = self._resolve(keys)
                self._record(table, number)
            else:
                keys, rest = _parse_key(stripped)
                if not keys or not rest.startswith("="):
                    continue
                for end in range(1, len(keys) + 1):
                    self._record((*table, *keys[:end]), number)
                state.feed(rest[1:])


def _parse_key(text: str) -> tuple[list[str], str]:
    """Split a possibly dotted, possibly quoted key off the front of ``text``."""
    keys: list[str] = []
    rest = text.lstrip()
    while rest:
        if rest[0] in "\"'":
            quote = rest[0]
            end = rest.find(quote, 1)
            # Escapes in quoted keys are vanishingly rare in this file; not worth decoding.
            while quote == '"' and end > 0 and rest[end - 1] == "\\":
                end = rest.find(quote, end + 1)
            if end < 0:
                break
            keys.append(rest[1:end])
            rest = rest[end + 1 :].lstrip()
        else:
            match = _BARE_KEY_RE.match(rest)
            if not match:
                break
            keys.append(match[0])
            rest = rest[match.end() :].lstrip()
        if not rest.startswith("."):
            break
        rest = rest[1:].lstrip()
    return keys, rest


class _ValueState:
    """Tracks whether a value continues past the end of its line.

    That happens inside multi-line strings and inside arrays or inline tables
    that span lines; while it does, lines are not keys or headers.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._open_string: str | None = None

    @property
    def busy(self) -> bool:
        return self._depth > 0 or self._open_string is not None

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            if self._open_string is not None:
                delim = self._open_string
                if delim == '"""' and text[i] == "\\":
                    i += 2
                elif text.startswith(delim, i):
                    # A closing """ may be followed by up to two more quotes that belong to the string.
                    i += len(delim)
                    while i < len(text) and text[i] == delim[0]:
                        i += 1
                    self._open_string = None
                else:
                    i += 1
                continue
            char = text[i]
            if char == "#":
                return
            if text.startswith('"""', i) or text.startswith("'''", i):
                self._open_string = text[i : i + 3]
                i += 3
            elif char in "\"'":
                i = _skip_line_string(text, i)
            elif char in "[{":
                self._depth += 1
                i += 1
            elif char in "]}":
                self._depth -= 1
                i += 1
            else:
                i += 1


def _skip_line_string(text: str, start: int) -> int:
    quote = text[start]
    i = start + 1
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    return i
