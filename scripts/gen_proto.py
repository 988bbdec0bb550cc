"""Generate Python code from api/proto/v1 into <out>/opensqt/v1, or check it is up to date.

Usage: python scripts/gen_proto.py [--check] OUT_DIR
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "api" / "proto" / "v1"
# Only these files define services and get *_pb2_grpc.py modules.
SERVICE_FILES = {"executor.proto", "risk.proto", "strategy.proto", "monitor.proto"}
INIT = '"""Generated from api/proto/v1 by scripts/gen_proto.py. Do not edit."""\n'


def generate(out: Path) -> None:
    target = out / "opensqt" / "v1"
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.glob("*_pb2*.py*"):
        stale.unlink()
    protos = sorted(PROTO_DIR.glob("*.proto"))
    for proto in protos:
        args = [
            "protoc",
            f"-Iopensqt/v1={PROTO_DIR}",
            f"--python_out={out}",
            f"--pyi_out={out}",
        ]
        if proto.name in SERVICE_FILES:
            args.append(f"--grpc_python_out={out}")
        args.append(f"opensqt/v1/{proto.name}")
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto.name}")
    (target / "__init__.py").write_text(INIT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare with OUT_DIR instead of writing")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    if not args.check:
        generate(args.out)
        return 0
    committed = args.out / "opensqt" / "v1"
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / "opensqt" / "v1"
        names = {p.name for p in fresh.iterdir() if p.is_file()} | {
            p.name for p in committed.iterdir() if p.is_file() and not p.name.endswith(".pyc")
        }
        stale = []
        for name in sorted(names):
            a, b = fresh / name, committed / name
            if not a.exists() or not b.exists() or not filecmp.cmp(a, b, shallow=False):
                stale.append(name)
    if stale:
        print(
            "generated protobuf code is stale: "
            + ", ".join(stale)
            + "\nrun `make proto` and commit the result",
            file=sys.stderr,
        )
        return 1
    print("generated protobuf code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
