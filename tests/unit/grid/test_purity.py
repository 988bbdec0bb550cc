"""The grid core is pure: no transport, no clock, no event loop."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import opensqt.grid

GRID_DIR = Path(opensqt.grid.__file__).parent
TRANSPORT_ROOTS = {"grpc", "nats", "redis", "ccxt", "dbos", "google"}
FORBIDDEN_ROOTS = TRANSPORT_ROOTS | {"asyncio", "time", "datetime", "random", "threading"}


def test_grid_sources_import_no_transport_clock_or_event_loop() -> None:
    for path in sorted(GRID_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert not roots & FORBIDDEN_ROOTS, f"{path.name} imports {roots & FORBIDDEN_ROOTS}"


def test_importing_grid_loads_no_transport_library() -> None:
    code = (
        "import sys, opensqt.grid; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(TRANSPORT_ROOTS)!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
