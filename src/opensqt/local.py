"""The local constellation: nats-server, redis-server and the four services as processes.

``opensqt run`` starts it on loopback with development mTLS certificates and keeps it up until
Ctrl-C; each service gets ``OPENSQT_*`` environment variables, exactly as in a container.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from opensqt.certs import generate_dev_pki
from opensqt.devstack import LOOPBACK, NatsServer, RedisServer

__all__ = ["SERVICES", "LocalConstellation", "ServicePorts"]

SERVICES = ("monitor", "strategy", "executor", "risk")


@dataclass(frozen=True, slots=True)
class ServicePorts:
    api: int
    probe: int
    metrics: int


def default_ports(
    base_api: int = 50051, base_probe: int = 8081, base_metrics: int = 9101
) -> dict[str, ServicePorts]:
    return {
        name: ServicePorts(base_api + i, base_probe + i, base_metrics + i) for i, name in enumerate(SERVICES)
    }


def wait_serving(probe_port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the plaintext probe port reports SERVING."""
    deadline = time.monotonic() + timeout
    last_error = ""
    with grpc.insecure_channel(f"{LOOPBACK}:{probe_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"service exited with {proc.returncode} before it was SERVING")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as exc:
                last_error = str(exc.code())
            time.sleep(0.05)
    raise TimeoutError(f"probe port {probe_port} not SERVING after {timeout}s ({last_error})")


@dataclass
class LocalConstellation:
    """Starts and stops the whole constellation on loopback."""

    workdir: Path = Path(".run")
    cert_dir: Path = Path(".certs")
    ports: dict[str, ServicePorts] = field(default_factory=default_ports)
    log_format: str = "console"
    nats: NatsServer | None = None
    redis: RedisServer | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def service_env(self, name: str) -> dict[str, str]:
        if self.nats is None or self.redis is None:
            raise RuntimeError("start nats-server and redis-server first")
        p = self.ports[name]
        env = dict(os.environ)
        env.update(
            {
                "OPENSQT_NATS__URL": self.nats.url,
                "OPENSQT_REDIS__URL": self.redis.url,
                "OPENSQT_TLS__CERT_DIR": str(self.cert_dir.resolve()),
                "OPENSQT_GRPC__PORT": str(p.api),
                "OPENSQT_GRPC__PROBE_PORT": str(p.probe),
                "OPENSQT_TELEMETRY__METRICS_PORT": str(p.metrics),
                "OPENSQT_TELEMETRY__LOG_FORMAT": self.log_format,
            }
        )
        if name == "executor":
            env["OPENSQT_DBOS__DATA_DIR"] = str((self.workdir / "executor").resolve())
        return env

    def start(self) -> None:
        """Start everything; on any failure, stop what already started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (self.cert_dir / "ca.pem").is_file():
            generate_dev_pki(self.cert_dir)
        self.nats = NatsServer(self.workdir / "nats").start()
        self.redis = RedisServer(self.workdir / "redis", persist=True).start()
        for name in SERVICES:
            log = (self.workdir / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"opensqt_services.{name}"],
                env=self.service_env(name),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for name in SERVICES:
            wait_serving(self.ports[name].probe, proc=self.processes[name])

    def stop(self) -> dict[str, int]:
        """SIGTERM every service, wait, stop the servers. Returns each service's exit code."""
        codes: dict[str, int] = {}
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for name, proc in self.processes.items():
            try:
                codes[name] = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        self.processes.clear()
        if self.redis is not None:
            self.redis.stop()
        if self.nats is not None:
            self.nats.stop()
        return codes
