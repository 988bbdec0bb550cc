"""mTLS credentials for gRPC servers and clients, from PEM files."""

from __future__ import annotations

from pathlib import Path

import grpc

__all__ = ["TlsFiles", "channel_credentials", "server_credentials"]


class TlsFiles:
    """CA bundle, certificate chain and private key of one identity."""

    def __init__(self, ca: Path, cert: Path, key: Path) -> None:
        for name, path in (("CA", ca), ("certificate", cert), ("key", key)):
            if not path.is_file():
                raise FileNotFoundError(
                    f"TLS {name} file {path} not found (run `make certs` for development certificates)"
                )
        self.ca = ca.read_bytes()
        self.cert = cert.read_bytes()
        self.key = key.read_bytes()


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """TLS server credentials that require a client certificate signed by the CA."""
    return grpc.ssl_server_credentials(
        [(files.key, files.cert)], root_certificates=files.ca, require_client_auth=True
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """TLS channel credentials that present the identity's certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=files.ca, private_key=files.key, certificate_chain=files.cert
    )
