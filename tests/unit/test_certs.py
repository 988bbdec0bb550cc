"""The development PKI: identities in the common name, loopback and cluster SANs, a verifying chain."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from opensqt.certs import generate_dev_pki
from opensqt.config import IDENTITIES, SPOT_INSTANCES


def test_one_certificate_per_identity_signed_by_the_ca(tmp_path: Path) -> None:
    pki = generate_dev_pki(tmp_path)
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for identity in IDENTITIES:
        cert = x509.load_pem_x509_certificate(pki.cert(identity).read_bytes())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == identity
        cert.verify_directly_issued_by(ca)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert identity in sans.get_values_for_type(x509.DNSName)
        assert f"{identity}.opensqt.svc" in sans.get_values_for_type(x509.DNSName)
        assert f"spiffe://opensqt/opensqt/{identity}" in sans.get_values_for_type(
            x509.UniformResourceIdentifier
        )
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)
        assert stat.S_IMODE(pki.key(identity).stat().st_mode) == 0o600


def test_the_spot_instances_host_names_are_in_their_identitys_certificate_only(tmp_path: Path) -> None:
    # compose dials executor-spot:50053 and verifies it against the executor's certificate
    pki = generate_dev_pki(tmp_path)
    assert SPOT_INSTANCES == {"executor-spot": "executor", "monitor-spot": "monitor"}
    for identity in IDENTITIES:
        cert = x509.load_pem_x509_certificate(pki.cert(identity).read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = set(names.get_values_for_type(x509.DNSName))
        for instance, runs_as in SPOT_INSTANCES.items():
            expected = {instance, f"{instance}.opensqt.svc", f"{instance}.opensqt.svc.cluster.local"}
            assert (expected <= dns) is (runs_as == identity), (identity, instance)
            assert not (expected & dns) or runs_as == identity, (identity, instance)
        # the certificate still names one identity
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == identity


def test_two_pkis_do_not_trust_each_other(tmp_path: Path) -> None:
    a = generate_dev_pki(tmp_path / "a", ["operator"])
    b = generate_dev_pki(tmp_path / "b", ["operator"])
    ca_a = x509.load_pem_x509_certificate(a.ca.read_bytes())
    cert_b = x509.load_pem_x509_certificate(b.cert("operator").read_bytes())
    assert isinstance(ca_a.public_key(), ec.EllipticCurvePublicKey)
    with pytest.raises(InvalidSignature):
        cert_b.verify_directly_issued_by(ca_a)
