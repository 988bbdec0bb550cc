"""Constellation latencies on loopback: tick-to-order and halt propagation.

    .venv/bin/python bench/constellation.py [--ticks 200] [--halts 30]

Starts nats-server and redis-server (real binaries from the virtualenv), a paper exchange with a
manual market, and monitor, strategy, risk and three executors in this process, all on
127.0.0.1 with mTLS, then measures:

* tick-to-order: a price change posted to the paper exchange -> the grid's new order accepted by
  the paper exchange (its order log timestamp). Each tick moves the price up one grid level, so
  the trailing window places exactly one new buy.
* halt propagation: operator Halt on risk -> all three executors refuse orders (polled with
  GetStatus until each reports HALTED), then Resume; repeated.

Prints p50/p99 in milliseconds. Figures depend on the machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from opensqt.certs import generate_dev_pki
from opensqt.config import GrpcSettings, NatsSettings, RedisSettings, TlsSettings
from opensqt.devstack import NatsServer, RedisServer, free_port
from opensqt.exchange.settings import VenueSettings
from opensqt.paper import PaperExchange
from opensqt.paper.settings import PaperSettings, SourceSettings
from opensqt.paper.sources import ManualSource
from opensqt.telemetry import configure_logging
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import events_pb2, executor_pb2, executor_pb2_grpc, risk_pb2, risk_pb2_grpc
from opensqt_services.executor.main import run as run_executor
from opensqt_services.executor.settings import DbosSettings, ExecutorSettings
from opensqt_services.monitor.main import run as run_monitor
from opensqt_services.monitor.settings import MonitorSettings
from opensqt_services.risk.main import run as run_risk
from opensqt_services.risk.settings import RiskSettings
from opensqt_services.strategy.main import run as run_strategy
from opensqt_services.strategy.settings import MarketMakerSettings, StrategySettings

HALTED = events_pb2.TRADING_STATE_KIND_HALTED


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, values: list[float]) -> None:
    ms = [v * 1000 for v in values]
    print(
        f"{name:<24} n={len(ms):<4} p50={percentile(ms, 0.5):7.2f} ms  p99={percentile(ms, 0.99):7.2f} ms  "
        f"mean={statistics.fmean(ms):7.2f} ms  max={max(ms):7.2f} ms"
    )


@contextlib.asynccontextmanager
async def service(run: Any, settings: Any) -> Any:
    stop = asyncio.Event()
    started: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(settings, stop=stop, started=started))
    runtime = await asyncio.wait_for(started, 30)
    try:
        yield runtime
    finally:
        stop.set()
        await task


async def main(ticks: int, halts: int) -> None:
    configure_logging("console", "ERROR")
    tmp = Path(tempfile.mkdtemp(prefix="opensqt-bench-"))
    pki = generate_dev_pki(tmp / "pki")
    nats = NatsServer(tmp / "nats").start()
    redis = RedisServer(tmp / "redis").start()
    paper = PaperExchange(
        PaperSettings(port=0, state_file=tmp / "paper.sqlite", source=SourceSettings(kind="manual")),
        source=ManualSource(),
    )
    await paper.start()

    def common(cls: Any, **extra: Any) -> Any:
        return cls(
            grpc=GrpcSettings(port=free_port(), probe_port=free_port(), grace_seconds=0.2),
            tls=TlsSettings(cert_dir=pki.directory),
            nats=NatsSettings(url=nats.url),
            redis=RedisSettings(url=SecretStr(redis.url)),
            **extra,
        )

    venue = VenueSettings(rest_url=paper.rest_url, ws_url=paper.ws_url)
    read_venue = venue.model_copy(
        update={
            "api_key": SecretStr("paper-main-read-key"),
            "api_secret": SecretStr("paper-main-read-secret"),
        }
    )
    operator = TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))
    try:
        async with contextlib.AsyncExitStack() as stack:
            executors = []
            for i in range(3):
                settings = common(
                    ExecutorSettings,
                    executor_id=f"bench-{i}",
                    venue=venue,
                    dbos=DbosSettings(data_dir=tmp / "dbos"),
                )
                executors.append(await stack.enter_async_context(service(run_executor, settings)))
            address = f"127.0.0.1:{executors[0].grpc.port}"
            channels = [
                await stack.enter_async_context(secure_channel(f"127.0.0.1:{e.grpc.port}", operator))
                for e in executors
            ]
            stubs = [executor_pb2_grpc.ExecutorServiceStub(c) for c in channels]
            while True:  # markets loaded
                try:
                    if (await stubs[0].ListInstruments(executor_pb2.ListInstrumentsRequest())).instruments:
                        break
                except Exception:
                    await asyncio.sleep(0.05)
            risk = await stack.enter_async_context(service(run_risk, common(RiskSettings)))
            grid = MarketMakerSettings(
                name="bench", symbol="BTCUSDT", price_interval=Decimal(100), order_notional=Decimal(200),
                buy_window=2, max_open_orders=4,
            )  # fmt: skip
            await stack.enter_async_context(
                service(
                    run_strategy, common(StrategySettings, executor_address=address, market_makers=(grid,))
                )
            )
            await stack.enter_async_context(
                service(run_monitor, common(MonitorSettings, venue=read_venue, symbols=("BTCUSDT",)))
            )
            session = await stack.enter_async_context(aiohttp.ClientSession())

            async def post_price(price: Decimal) -> float:
                async with session.post(
                    paper.rest_url + "/admin/price", json={"symbol": "BTCUSDT", "price": str(price)}
                ) as response:
                    assert response.status == 200
                return time.time()

            async def order_time(client_order_id: str, within: float = 5.0) -> float | None:
                deadline = time.monotonic() + within
                while time.monotonic() < deadline:
                    async with session.get(paper.rest_url + "/admin/orders") as response:
                        for entry in await response.json():
                            order = entry["order"]
                            if order["client_order_id"] == client_order_id and entry["execution"] == "NEW":
                                return float(entry["time_ms"]) / 1000
                    await asyncio.sleep(0.002)
                return None

            # warm up: anchor the grid at 30000 (buy at 29900)
            price = Decimal(30000)
            while await order_time("BTCUSDT-bench-299000-B-0", within=0.3) is None:
                await post_price(price)
            tick_to_order: list[float] = []
            for _ in range(ticks):
                price += 100
                new_buy = f"BTCUSDT-bench-{int((price - 100) * 10)}-B-0"
                posted = await post_price(price)
                accepted = await order_time(new_buy)
                if accepted is not None:
                    tick_to_order.append(max(0.0, accepted - posted))
            async with secure_channel(f"127.0.0.1:{risk.grpc.port}", operator) as risk_channel:
                risk_stub = risk_pb2_grpc.RiskServiceStub(risk_channel)
                halt_times: list[float] = []
                for i in range(halts):
                    started = time.perf_counter()
                    call = asyncio.ensure_future(risk_stub.Halt(risk_pb2.HaltRequest(reason=f"bench {i}")))
                    pending = set(range(3))
                    while pending:
                        for index in list(pending):
                            status = await stubs[index].GetStatus(executor_pb2.GetExecutorStatusRequest())
                            if status.trading_state.state == HALTED:
                                pending.discard(index)
                    halt_times.append(time.perf_counter() - started)
                    await call
                    await risk_stub.Resume(risk_pb2.ResumeRequest(reason="bench"))
            print(f"constellation on loopback, mTLS everywhere ({ticks} ticks, {halts} halts, 3 executors)")
            if tick_to_order:
                report("tick-to-order", tick_to_order)
            print(f"{'':<24} ({ticks - len(tick_to_order)} ticks without a new order)")
            report("halt propagation", halt_times)
    finally:
        await paper.stop()
        redis.stop()
        nats.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--halts", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.ticks, args.halts))
