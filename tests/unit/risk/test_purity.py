"""The risk rules are pure: no transport library, no I/O module, no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RISK_DIR = Path(__file__).resolve().parents[3] / "src" / "opensqt" / "risk"
ALLOWED_ROOTS = {"__future__", "collections", "dataclasses", "datetime", "decimal", "enum", "re", "typing"}
ALLOWED_FIRST_PARTY = ("opensqt.model", "opensqt.risk")
CLOCK_ATTRIBUTES = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "time_ns"}


# The risk service (service.py, monitor.py, fanout.py) is an edge, not a rule: it may do I/O.
EDGE_MODULES = {"service.py", "monitor.py", "fanout.py"}


def modules() -> list[Path]:
    return sorted(p for p in RISK_DIR.glob("*.py") if p.name not in EDGE_MODULES)


def imported_names(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


def test_risk_package_has_modules() -> None:
    assert {path.name for path in modules()} >= {"__init__.py", "config.py", "crash.py", "liquidation.py"}


@pytest.mark.parametrize("path", modules(), ids=lambda path: path.name)
def test_risk_module_imports_only_the_standard_library_and_the_model(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for name in imported_names(tree):
        if name.startswith("opensqt"):
            assert name.startswith(ALLOWED_FIRST_PARTY), f"{path.name} imports {name}"
        else:
            assert name.split(".")[0] in ALLOWED_ROOTS, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", modules(), ids=lambda path: path.name)
def test_risk_module_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_ATTRIBUTES
    ]
    assert calls == [], f"{path.name} calls {calls}"
