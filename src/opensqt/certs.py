"""Development PKI: a CA and one mTLS certificate per identity, made with ``cryptography``.

For development and tests only; production certificates come from cert-manager (see
``deploy/k8s/components/mtls``). Each certificate's common name is the identity the
authorization table checks; SANs cover loopback and the in-cluster service names.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from opensqt.config import IDENTITIES, SPOT_INSTANCES

__all__ = ["DevPki", "generate_dev_pki"]

_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True, slots=True)
class DevPki:
    """Where the files went: ``ca.pem`` and ``<identity>.pem`` / ``<identity>.key`` in ``directory``."""

    directory: Path
    identities: tuple[str, ...]

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    def cert(self, identity: str) -> Path:
        return self.directory / f"{identity}.pem"

    def key(self, identity: str) -> Path:
        return self.directory / f"{identity}.key"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _sans(identity: str, namespace: str) -> list[x509.GeneralName]:
    # the identity's own host name, then those of its other instances (executor-spot, ...)
    hosts = [identity, *(name for name, runs_as in SPOT_INSTANCES.items() if runs_as == identity)]
    dns = [
        name
        for host in hosts
        for name in (
            host,
            f"{host}.{namespace}",
            f"{host}.{namespace}.svc",
            f"{host}.{namespace}.svc.cluster.local",
        )
    ]
    dns.append("localhost")
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    names.append(x509.UniformResourceIdentifier(f"spiffe://opensqt/{namespace}/{identity}"))
    return names


def generate_dev_pki(
    directory: Path,
    identities: Iterable[str] = IDENTITIES,
    *,
    namespace: str = "opensqt",
    ca_name: str = "OpenSQT dev CA",
    now: dt.datetime | None = None,
) -> DevPki:
    """Write a fresh CA and one certificate per identity into ``directory``.

    Keys are ECDSA P-256, written with mode 0600. Existing files are replaced.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = DevPki(directory=directory, identities=tuple(identities))
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for identity in pki.identities:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenSQT"),
                        x509.NameAttribute(NameOID.COMMON_NAME, identity),
                    ]
                )
            )
            .issuer_name(ca_subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(_sans(identity, namespace)), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        pki.cert(identity).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(pki.key(identity), key)
    return pki
