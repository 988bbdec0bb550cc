"""The local constellation: nats-server, redis-server, the paper exchange and the four services.

``opensqt run`` starts everything on loopback with development mTLS certificates; each service
gets ``OPENSQT_*`` environment variables, exactly as in a container. By default the paper
exchange runs its seeded synthetic market (with crash episodes), the monitor watches BTCUSDT,
a market maker trades it and risk watches it for crashes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from opensqt.certs import generate_dev_pki
from opensqt.config import SPOT_INSTANCES as SPOT_INSTANCE_IDENTITIES
from opensqt.devstack import LOOPBACK, NatsServer, RedisServer, free_port, wait_for_port

__all__ = ["SERVICES", "SPOT_INSTANCES", "LocalConstellation", "ServicePorts", "TradingSetup", "service_of"]

SERVICES = ("monitor", "strategy", "executor", "risk")


@dataclass(frozen=True, slots=True)
class ServicePorts:
    api: int
    probe: int
    metrics: int


#: The second executor and monitor an arbitrage bot needs: the spot leg's venue.
SPOT_INSTANCES = tuple(SPOT_INSTANCE_IDENTITIES)
SPOT_VENUE = "paper-spot"


def default_ports(
    base_api: int = 50051, base_probe: int = 8081, base_metrics: int = 9101
) -> dict[str, ServicePorts]:
    return {
        name: ServicePorts(base_api + i, base_probe + i, base_metrics + i)
        for i, name in enumerate(SERVICES + SPOT_INSTANCES)
    }


def service_of(instance: str) -> str:
    """The service an instance runs: ``executor-spot`` and any ``executor-<name>`` (the
    benchmark's extra executors) run the executor."""
    return SPOT_INSTANCE_IDENTITIES.get(instance) or instance.partition("-")[0]


@dataclass(frozen=True, slots=True)
class TradingSetup:
    """What the local constellation trades (``symbols`` empty: infrastructure only)."""

    symbols: tuple[str, ...] = ("BTCUSDT",)
    market_makers: tuple[dict[str, str], ...] = (
        {"name": "mm1", "symbol": "BTCUSDT", "price_interval": "60", "order_notional": "150"},
    )
    paper_source: str = "synthetic"
    bars_per_second: float = 2.0
    seed: int = 7
    # A CSV replay instead (paper_source="csv"): symbol -> candle file, window, speed.
    csv_files: dict[str, str] = field(default_factory=dict)
    replay_from: str = ""
    replay_until: str = ""
    replay_speed: float = 60.0
    replay_loop: bool = True
    # market streams the replay waits for (e.g. "btcusdt@kline_1m"): start once they are watched
    replay_wait_for_streams: tuple[str, ...] = ()
    # Risk's crash settings beyond the symbols (e.g. {"trigger_state": "HALTED"}).
    crash: dict[str, str] = field(default_factory=dict)
    # Funding-rate arbitrage bots (services/strategy ArbitrageBotSettings); any bot adds a spot
    # executor and a spot monitor (venue "paper-spot") to the constellation.
    arbitrage_bots: tuple[dict[str, str], ...] = ()

    def paper_env(self) -> dict[str, str]:
        env = {
            "OPENSQT_PAPER_SOURCE__KIND": self.paper_source,
            "OPENSQT_PAPER_SOURCE__BARS_PER_SECOND": str(self.bars_per_second),
            "OPENSQT_PAPER_SOURCE__SEED": str(self.seed),
        }
        if self.paper_source == "csv":
            env["OPENSQT_PAPER_SOURCE__CSV_FILES"] = json.dumps(self.csv_files)
            env["OPENSQT_PAPER_SOURCE__SPEED"] = str(self.replay_speed)
            env["OPENSQT_PAPER_SOURCE__LOOP"] = "true" if self.replay_loop else "false"
            if self.replay_from:
                env["OPENSQT_PAPER_SOURCE__REPLAY_FROM"] = self.replay_from
            if self.replay_until:
                env["OPENSQT_PAPER_SOURCE__REPLAY_UNTIL"] = self.replay_until
            if self.replay_wait_for_streams:
                env["OPENSQT_PAPER_SOURCE__WAIT_FOR_STREAMS"] = json.dumps(list(self.replay_wait_for_streams))
        return env


def wait_serving(probe_port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
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
    trading: TradingSetup | None = field(default_factory=TradingSetup)
    paper_port: int = 8090
    log_format: str = "console"
    nats: NatsServer | None = None
    redis: RedisServer | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def paper_url(self) -> str:
        return f"http://{LOOPBACK}:{self.paper_port}"

    def instances(self) -> tuple[str, ...]:
        """Every service process this constellation runs."""
        if self.trading is not None and self.trading.arbitrage_bots:
            return SERVICES + SPOT_INSTANCES
        return SERVICES

    def service_env(self, name: str) -> dict[str, str]:
        if self.nats is None or self.redis is None:
            raise RuntimeError("start nats-server and redis-server first")
        p = self.service_ports(name)
        service = service_of(name)
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
                "OPENSQT_VENUE__REST_URL": self.paper_url,
                "OPENSQT_VENUE__WS_URL": f"ws://{LOOPBACK}:{self.paper_port}",
            }
        )
        if service == "executor":
            env["OPENSQT_DBOS__DATA_DIR"] = str((self.workdir / name).resolve())
            if name != "executor":
                env["OPENSQT_EXECUTOR_ID"] = name  # the main one keeps the default, executor-0
        if service == "monitor":
            # the monitor reads only: the paper's read-only key (a real venue: mounted secrets)
            env["OPENSQT_VENUE__API_KEY"] = "paper-main-read-key"
            env["OPENSQT_VENUE__API_SECRET"] = "paper-main-read-secret"
        if name in SPOT_INSTANCES:
            env.update(
                {
                    "OPENSQT_VENUE__NAME": SPOT_VENUE,
                    "OPENSQT_VENUE__EXCHANGE_ID": "binance",
                    "OPENSQT_VENUE__MARKET_TYPE": "spot",
                    "OPENSQT_VENUE__WS_URL": f"ws://{LOOPBACK}:{self.paper_port}/stream",
                }
            )
        if self.trading is not None:
            if service == "monitor":
                env["OPENSQT_SYMBOLS"] = json.dumps(list(self.trading.symbols))
            if name == "strategy":
                env["OPENSQT_EXECUTOR_ADDRESS"] = f"{LOOPBACK}:{self.ports['executor'].api}"
                env["OPENSQT_MONITOR_ADDRESS"] = f"{LOOPBACK}:{self.ports['monitor'].api}"
                env["OPENSQT_MARKET_MAKERS"] = json.dumps(list(self.trading.market_makers))
                if self.trading.arbitrage_bots:
                    env["OPENSQT_ARBITRAGE_BOTS"] = json.dumps(list(self.trading.arbitrage_bots))
                    env["OPENSQT_SPOT_MARKET_VENUE"] = SPOT_VENUE
                    env["OPENSQT_SPOT_EXECUTOR_ADDRESS"] = (
                        f"{LOOPBACK}:{self.service_ports('executor-spot').api}"
                    )
            if name == "risk":
                env["OPENSQT_CRASH__SYMBOLS"] = json.dumps(list(self.trading.symbols))
                for key, value in self.trading.crash.items():
                    env[f"OPENSQT_CRASH__{key.upper()}"] = value
        return env

    def start(self) -> None:
        """Start everything; on any failure, stop what already started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = proc
        return proc

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (self.cert_dir / "ca.pem").is_file():
            generate_dev_pki(self.cert_dir)
        self.nats = NatsServer(self.workdir / "nats").start()
        self.redis = RedisServer(self.workdir / "redis", persist=True).start()
        if self.trading is not None:
            env = dict(os.environ)
            env.update(self.trading.paper_env())
            paper = self._spawn(
                "paper-exchange",
                [sys.executable, "-m", "opensqt.paper", "--port", str(self.paper_port),
                 "--state-file", str((self.workdir / "paper-exchange.sqlite").resolve())],
                env,
            )  # fmt: skip
            wait_for_port(self.paper_port, timeout=20, proc=paper)
        for name in self.instances():
            self.start_service(name, wait=False)
        for name in self.instances():
            wait_serving(self.ports[name].probe, proc=self.processes[name])

    def service_ports(self, name: str) -> ServicePorts:
        if name not in self.ports:
            self.ports[name] = ServicePorts(free_port(), free_port(), free_port())
        return self.ports[name]

    def start_service(self, name: str, *, wait: bool = True) -> subprocess.Popen[bytes]:
        """Start (or restart) one service instance with its environment."""
        proc = self._spawn(
            name, [sys.executable, "-m", f"opensqt_services.{service_of(name)}"], self.service_env(name)
        )
        if wait:
            wait_serving(self.ports[name].probe, proc=proc)
        return proc

    def kill(self, name: str) -> int:
        """SIGKILL one service instance (a crash: no shutdown, no drain); returns its exit code."""
        proc = self.processes[name]
        proc.kill()
        return proc.wait()

    def stop(self) -> dict[str, int]:
        """SIGTERM every process, wait, stop the servers. Returns each process's exit code."""
        codes: dict[str, int] = {}
        # services first (they drain against the venue and NATS), then the paper exchange
        order = [n for n in self.processes if n != "paper-exchange"] + [
            n for n in self.processes if n == "paper-exchange"
        ]
        for group in (order[:-1], order[-1:]) if "paper-exchange" in self.processes else (order,):
            for name in group:
                if self.processes[name].poll() is None:
                    self.processes[name].terminate()
            for name in group:
                proc = self.processes[name]
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
