"""Executor figures: PlaceOrder latency through gRPC + mTLS + DBOS to the paper exchange, and the
sustained order rate at the default rate budget.

    .venv/bin/python bench/executor.py
    .venv/bin/python bench/executor.py --orders 300 --pace 20 --seconds 10 --callers 8 --keep
    .venv/bin/python bench/executor.py --resting       # GTC orders that stay on the book

Starts its own nats-server and redis-server (the virtualenv's binaries), the paper exchange
(``python -m opensqt.paper --source manual``, SQLite state on) and the executor
(``python -m opensqt_services.executor``, DBOS on SQLite, the default budget of 25 orders/s with a
burst of 30), each a separate process on 127.0.0.1, with development mTLS certificates; the
benchmark calls the executor as the strategy identity. Everything is stopped at the end.

* Latency: ``--orders`` limit orders (BUY 0.001 BTCUSDT at 20000, the market at 30000), one at a
  time, wall time of each PlaceOrder call at the client; started at most ``--pace`` per second
  (default 20, under the budget's 25/s, so no call waits for a token; ``--pace 0`` sends back to
  back and then mostly measures the budget). The orders are IOC, so each expires at once and the
  paper exchange's book stays empty (its snapshot, rewritten on every commit, holds the open
  orders: a growing book slows the venue, not the executor); ``--resting`` sends GTC orders that
  stay on the book instead. The paper exchange's own share (arrival to answer in its request
  log, whole ms) is printed alongside.
* Throughput: ``--callers`` concurrent callers send PlaceOrder back to back for ``--seconds``
  (the budget refilled first); the completed calls per second, and the placements the paper
  exchange received per second of its clock.

Nothing is asserted; see bench/README.md for measured figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from _machine import reference_ms

from opensqt.certs import DevPki, generate_dev_pki
from opensqt.devstack import LOOPBACK, NatsServer, RedisServer, free_port, wait_for_port
from opensqt.local import wait_serving
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import executor_pb2, executor_pb2_grpc, resources_pb2

ORDER_PATH = "/fapi/v1/order"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def limit_order(client_order_id: str, resting: bool = False) -> executor_pb2.PlaceOrderRequest:
    tif = resources_pb2.TIME_IN_FORCE_GTC if resting else resources_pb2.TIME_IN_FORCE_IOC
    return executor_pb2.PlaceOrderRequest(
        order=executor_pb2.OrderRequest(
            symbol="BTCUSDT",
            client_order_id=client_order_id,
            side=resources_pb2.SIDE_BUY,
            type=resources_pb2.ORDER_TYPE_LIMIT,
            time_in_force=tif,
            price="20000.0",
            quantity="0.001",
        )
    )


class Stack:
    """nats-server, redis-server, the paper exchange and the executor, as processes on loopback."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.pki: DevPki | None = None
        self.nats: NatsServer | None = None
        self.redis: RedisServer | None = None
        self.paper_port = free_port()
        self.grpc_port = free_port()
        self.probe_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def paper_url(self) -> str:
        return f"http://{LOOPBACK}:{self.paper_port}"

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        self.processes[name] = proc
        return proc

    def _env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("OPENSQT_")}

    def start(self) -> None:
        self.pki = generate_dev_pki(self.workdir / "pki")
        self.nats = NatsServer(self.workdir / "nats").start()
        self.redis = RedisServer(self.workdir / "redis").start()
        paper = self._spawn(
            "paper-exchange",
            [sys.executable, "-m", "opensqt.paper", "--host", LOOPBACK, "--port", str(self.paper_port),
             "--state-file", str(self.workdir / "paper.sqlite"), "--source", "manual"],
            {**self._env(), "OPENSQT_PAPER_LOG_FORMAT": "json"},
        )  # fmt: skip
        wait_for_port(self.paper_port, timeout=30, proc=paper)
        env = {
            **self._env(),
            "OPENSQT_NATS__URL": self.nats.url,
            "OPENSQT_REDIS__URL": self.redis.url,
            "OPENSQT_TLS__CERT_DIR": str(self.pki.directory),
            "OPENSQT_GRPC__PORT": str(self.grpc_port),
            "OPENSQT_GRPC__PROBE_PORT": str(self.probe_port),
            "OPENSQT_EXECUTOR_ID": "bench-executor",
            "OPENSQT_VENUE__REST_URL": self.paper_url,
            "OPENSQT_VENUE__WS_URL": f"ws://{LOOPBACK}:{self.paper_port}",
            "OPENSQT_DBOS__DATA_DIR": str(self.workdir / "dbos"),
            "OPENSQT_TELEMETRY__LOG_FORMAT": "json",
        }
        executor = self._spawn("executor", [sys.executable, "-m", "opensqt_services.executor"], env)
        wait_serving(self.probe_port, timeout=60, proc=executor)

    def stop(self) -> None:
        for name in ("executor", "paper-exchange"):
            proc = self.processes.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.redis is not None:
            self.redis.stop()
        if self.nats is not None:
            self.nats.stop()

    def channel(self) -> grpc.aio.Channel:
        assert self.pki is not None
        pki = self.pki
        return secure_channel(self.target, TlsFiles(pki.ca, pki.cert("strategy"), pki.key("strategy")))


async def wait_for_markets(stub: executor_pb2_grpc.ExecutorServiceStub, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if (await stub.ListInstruments(executor_pb2.ListInstrumentsRequest())).instruments:
                return
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


async def placements(paper_url: str, prefix: str) -> list[dict[str, Any]]:
    """The order placements the paper exchange logged for client ids starting with ``prefix``."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{paper_url}/admin/requests?path={ORDER_PATH}&method=POST") as response,
    ):
        body = await response.json()
    return [r for r in body["requests"] if r["client_order_id"].startswith(prefix)]


async def latency(
    stub: executor_pb2_grpc.ExecutorServiceStub, paper_url: str, orders: int, pace: float, resting: bool
) -> None:
    for i in range(20):  # warm-up: connections, DBOS, ccxt
        await stub.PlaceOrder(limit_order(f"warm-{i}", resting))
    await asyncio.sleep(1.5)  # the budget refills
    interval = 1 / pace if pace > 0 else 0.0
    samples: list[float] = []
    next_start = time.perf_counter()
    for i in range(orders):
        pause = next_start - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        started = time.perf_counter()
        next_start = started + interval
        await stub.PlaceOrder(limit_order(f"lat-{i}", resting))
        samples.append(time.perf_counter() - started)
    ms = [s * 1000 for s in samples]
    at_venue = [float(r["answered_ms"] - r["time_ms"]) for r in await placements(paper_url, "lat-")]
    paced = f"at most {pace:g}/s" if pace > 0 else "back to back"
    kind = "resting GTC" if resting else "IOC"
    print(f"PlaceOrder latency, {orders} {kind} limit orders one at a time ({paced}):")
    print(
        f"  client wall time    p50 {percentile(ms, 0.5):6.2f} ms  p99 {percentile(ms, 0.99):6.2f} ms  "
        f"mean {statistics.fmean(ms):6.2f} ms  max {max(ms):6.2f} ms"
    )
    if at_venue:
        print(
            f"  of which the paper  p50 {percentile(at_venue, 0.5):6.2f} ms  "
            f"p99 {percentile(at_venue, 0.99):6.2f} ms  (its request log, whole ms)"
        )


async def throughput(
    stub: executor_pb2_grpc.ExecutorServiceStub, paper_url: str, seconds: float, callers: int, resting: bool
) -> None:
    await asyncio.sleep(1.5)  # the budget refills to its burst
    done: list[float] = []
    errors: Counter[str] = Counter()
    began = time.perf_counter()
    deadline = began + seconds

    async def caller(index: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            try:
                await stub.PlaceOrder(limit_order(f"tp-{index}-{n}", resting), timeout=30)
                done.append(time.perf_counter() - began)
            except grpc.aio.AioRpcError as exc:
                errors[exc.code().name] += 1

    await asyncio.gather(*(caller(i) for i in range(callers)))
    elapsed = time.perf_counter() - began
    per_second = Counter(int(t) for t in done)
    after_first = [t for t in done if 1.0 <= t < seconds]
    arrivals = sorted(r["monotonic_ms"] for r in await placements(paper_url, "tp-"))
    print(f"Throughput, {callers} concurrent callers for {seconds:g} s (budget 25/s, burst 30):")
    print(
        f"  {len(done)} orders placed in {elapsed:.1f} s: {len(done) / elapsed:.1f} orders/s overall, "
        f"{len(after_first) / (seconds - 1):.1f} orders/s after the first second; "
        f"errors {dict(errors) or 'none'}"
    )
    print(f"  completed per second: {[per_second[s] for s in range(int(seconds) + 1)]}")
    if arrivals:
        window = max(sum(1 for a in arrivals[i:] if a < start + 1000) for i, start in enumerate(arrivals))
        print(f"  at the paper exchange: {len(arrivals)} placements, the busiest 1 s window held {window}")


async def bench(stack: Stack, args: argparse.Namespace) -> None:
    async with stack.channel() as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        await wait_for_markets(stub)
        await latency(stub, stack.paper_url, args.orders, args.pace, args.resting)
        await throughput(stub, stack.paper_url, args.seconds, args.callers, args.resting)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=300, help="orders for the latency figure")
    parser.add_argument(
        "--pace", type=float, default=20.0, help="latency orders per second at most (0: no pause)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the throughput run")
    parser.add_argument("--callers", type=int, default=8, help="concurrent callers in the throughput run")
    parser.add_argument("--resting", action="store_true", help="GTC orders that rest (default: IOC)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, databases)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opensqt-bench-executor-"))
    stack = Stack(workdir)
    started = time.perf_counter()
    try:
        stack.start()
        up_s = time.perf_counter() - started
        print(f"stack up in {up_s:.1f} s (executor {stack.target}, paper {stack.paper_url})")
        print(f"machine reference: a fixed pure-Python loop took {reference_ms():.0f} ms (lower is faster)")
        asyncio.run(bench(stack, args))
    finally:
        stack.stop()
        if args.keep:
            print(f"logs and databases kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
