"""The layers' arrows point one way: bot → handlers → storage, and only bot knows a platform."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_LIBRARIES = {"telegram", "wechatpy", "starlette", "uvicorn", "apscheduler"}
FORBIDDEN = {
    "storage": {"bot", "handlers"} | PLATFORM_LIBRARIES,
    "handlers": {"bot"} | PLATFORM_LIBRARIES,
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_project_does_not_import_shared_notes() -> None:
    for package in ("bot", "handlers", "storage"):
        for path in (ROOT / package).rglob("*.py"):
            assert "shared" not in imported_modules(path), path


def test_channel_adapters_get_no_database_and_no_runtime() -> None:
    """Adapters are handed narrow services (bot.channels.base.Host, Inbox): no storage, no bot.app."""
    for path in (ROOT / "bot" / "channels").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in modules if m.split(".")[0] in {"storage", "sqlalchemy"}}, path
        assert "bot.app" not in modules, path
