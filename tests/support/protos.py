"""Read the RPCs declared in api/proto/v1 straight from the .proto files (not from generated code)."""

from __future__ import annotations

import re
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parents[2] / "api" / "proto" / "v1"

_SERVICE_RE = re.compile(r"service\s+(\w+)\s*\{(.*?)\n\}", re.S)
_RPC_RE = re.compile(r"rpc\s+(\w+)\s*\(\s*(\w+)\s*\)\s*returns\s*\(\s*(\w+)\s*\)")


def declared_rpcs() -> dict[str, dict[str, tuple[str, str]]]:
    """``{"opensqt.v1.ExecutorService": {"Halt": ("HaltExecutorRequest", "HaltExecutorResponse")}}``."""
    services: dict[str, dict[str, tuple[str, str]]] = {}
    for proto in sorted(PROTO_DIR.glob("*.proto")):
        for name, body in _SERVICE_RE.findall(proto.read_text()):
            services[f"opensqt.v1.{name}"] = {m: (req, resp) for m, req, resp in _RPC_RE.findall(body)}
    return services
