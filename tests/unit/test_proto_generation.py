"""Generated protobuf code is committed and `scripts/gen_proto.py --check` catches staleness."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "gen_proto.py"), "--check", str(root / "src")],
        capture_output=True,
        text=True,
        check=False,
    )


def test_committed_generated_code_is_up_to_date() -> None:
    result = run_check(ROOT)
    assert result.returncode == 0, result.stderr


def test_a_proto_change_without_regeneration_is_reported_stale(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "api", copy / "api")
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    shutil.copytree(ROOT / "src" / "opensqt" / "v1", copy / "src" / "opensqt" / "v1")
    proto = copy / "api" / "proto" / "v1" / "risk.proto"
    proto.write_text(
        proto.read_text().replace("uint32 limit = 1;", "uint32 limit = 1;\n  string cursor = 3;")
    )
    result = run_check(copy)
    assert result.returncode == 1
    assert "risk_pb2.py" in result.stderr
    assert "make proto" in result.stderr
