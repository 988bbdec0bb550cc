"""Every service's /metrics after a short trading run: orders, latency, fills, NATS, state."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opensqt.certs import DevPki
from opensqt.devstack import free_port
from opensqt.local import SERVICES, LocalConstellation, ServicePorts, TradingSetup

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(session: aiohttp.ClientSession, port: int) -> Samples:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= set(lbls))


async def test_a_trading_run_fills_the_order_latency_fill_nats_and_state_series(
    tmp_path: Path, pki: DevPki
) -> None:
    ports = {name: ServicePorts(free_port(), free_port(), free_port()) for name in SERVICES}
    grid = {"name": "mm1", "symbol": "BTCUSDT", "price_interval": "30", "order_notional": "150"}
    constellation = LocalConstellation(
        workdir=tmp_path / "run",
        cert_dir=pki.directory,
        ports=ports,
        trading=TradingSetup(market_makers=(grid,), bars_per_second=30.0),
        paper_port=free_port(),
    )
    await asyncio.to_thread(constellation.start)
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                strategy = await scrape(session, ports["strategy"].metrics)
                if total(strategy, "opensqt_fills_total") > 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            executor = await scrape(session, ports["executor"].metrics)
            monitor = await scrape(session, ports["monitor"].metrics)
            risk = await scrape(session, ports["risk"].metrics)
    finally:
        codes = await asyncio.to_thread(constellation.stop)
    assert set(codes.values()) == {0}, codes

    # executor: orders and their latency, the rate budget, the gRPC layer, the trading state
    assert total(executor, "opensqt_orders_total", action="place", result="accepted") > 0
    assert total(executor, "opensqt_order_latency_seconds_count", action="place") > 0
    assert total(executor, "opensqt_order_latency_seconds_sum", action="place") > 0
    assert total(executor, "opensqt_rate_limit_wait_seconds_count") > 0
    assert (
        total(executor, "opensqt_grpc_request_seconds_count", method="/opensqt.v1.ExecutorService/PlaceOrder")
        > 0
    )
    assert total(executor, "opensqt_trading_state", state="ACTIVE") == 1
    assert total(executor, "opensqt_nats_published_total", kind="execution") > 0
    # strategy: prices in, fills seen, a durable consumer's lag reported
    assert total(strategy, "opensqt_nats_received_total", kind="price") > 0
    assert total(strategy, "opensqt_fills_total") > 0
    assert any(n == "opensqt_nats_consumer_pending" for n, _ in strategy)
    # monitor: prices and own orders out
    assert total(monitor, "opensqt_nats_published_total", kind="price") > 0
    assert total(monitor, "opensqt_nats_published_total", kind="order") > 0
    # risk: the trading state it owns, and its durable position consumer
    assert total(risk, "opensqt_trading_state", state="ACTIVE") == 1
    for service in (executor, strategy, monitor, risk):  # every service samples its event loop
        assert total(service, "opensqt_event_loop_lag_seconds_count") > 0
    assert any(
        n == "opensqt_nats_consumer_pending" and ("consumer", "risk-positions") in lbls for n, lbls in risk
    )
    for samples in (executor, strategy, monitor, risk):
        assert total(samples, "opensqt_build_info") == 1
