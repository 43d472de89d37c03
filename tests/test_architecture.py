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


# The engine: what every feature plugs into. It reads the registry (handlers/features.py lists the
# features) and must not import a feature itself.
ENGINE_MODULES = (
    "handlers/router.py",
    "handlers/scheduled.py",
    "handlers/help.py",
    "handlers/registry.py",
    "handlers/conversation.py",
    "handlers/notify.py",
    "bot/delivery.py",
)


def feature_modules() -> set[str]:
    """handlers.<x> for every feature: a package with a feature.py, or a module declaring a FEATURE."""
    found: set[str] = set()
    for path in (ROOT / "handlers").iterdir():
        if path.is_dir() and (path / "feature.py").exists():
            found.add(f"handlers.{path.name}")
        elif path.suffix == ".py" and "\nFEATURE = Feature(" in path.read_text(encoding="utf-8"):
            found.add(f"handlers.{path.stem}")
    return found


def handlers_imports(path: Path) -> set[str]:
    """Every handlers.* module imported, `from handlers import x` counted as handlers.x."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("handlers."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "handlers":
                names.update(f"handlers.{alias.name}" for alias in node.names)
            elif node.module.startswith("handlers."):
                names.add(node.module)
    return names


def test_feature_modules_are_found() -> None:
    assert {"handlers.reports", "handlers.accounts", "handlers.digest"} <= feature_modules()


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_names_no_feature(module: str) -> None:
    features = feature_modules()
    named = {
        name
        for name in handlers_imports(ROOT / module)
        if any(name == feature or name.startswith(feature + ".") for feature in features)
    }
    assert named == set(), f"{module} imports features {sorted(named)}: declare it in the feature instead"


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
