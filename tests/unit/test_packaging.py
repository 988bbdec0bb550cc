"""Every package directory is installed (pyproject lists them explicitly)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_directory_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT / "src").parts)
        for p in (ROOT / "src" / "opensqt").rglob("__init__.py")
    }
    found |= {
        ".".join(("opensqt_services", *p.parent.relative_to(ROOT / "services").parts)).rstrip(".")
        for p in (ROOT / "services").rglob("__init__.py")
    }
    assert found == listed
