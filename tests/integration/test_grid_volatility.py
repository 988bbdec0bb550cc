"""A grid with a volatility_scale, as processes: the strategy asks the monitor for the venue's
candles (GetCandles, over mTLS), widens the interval to ATR * scale, stores it, and lays its buys
on it; the monitor's GetCandles refuses bad arguments."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import redis.asyncio as aioredis

from opensqt.certs import DevPki
from opensqt.devstack import free_port
from opensqt.local import SERVICES, LocalConstellation, ServicePorts, TradingSetup
from opensqt.model import Side
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.redis_keys import GRID_INTERVAL
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import monitor_pb2, monitor_pb2_grpc
from tests.support.paper_venue import paper_read_venue
from tests.support.waiting import until

pytestmark = pytest.mark.integration

CONFIGURED = Decimal("1")  # far below a 1m candle's range at BTC 30000: the ATR must widen it
GRID = {"name": "mm1", "symbol": "BTCUSDT", "price_interval": str(CONFIGURED), "order_notional": "300",
        "volatility_scale": "1", "atr_period": "14"}  # fmt: skip
TICK = Decimal("0.1")  # the paper exchange's BTCUSDT perpetual


@pytest.fixture
async def constellation(tmp_path: Path, pki: DevPki) -> AsyncIterator[LocalConstellation]:
    running = LocalConstellation(
        workdir=tmp_path / "run",
        cert_dir=pki.directory,
        ports={name: ServicePorts(free_port(), free_port(), free_port()) for name in SERVICES},
        # 50 one-minute candles a second: the history an ATR needs is there before the grid starts
        trading=TradingSetup(
            symbols=("BTCUSDT",), market_makers=(GRID,), paper_source="synthetic", bars_per_second=50
        ),
        paper_port=free_port(),
    )
    await asyncio.to_thread(running.start)
    try:
        yield running
    finally:
        codes = await asyncio.to_thread(running.stop)
        assert set(codes.values()) == {0}, codes


def widened_intervals(klines: list[list[Any]], period: int = 14) -> set[Decimal]:
    """max(configured, ATR * 1 rounded up to the tick) of every run of period + 1 candles of
    Binance klines rows ([open time, open, high, low, close, ...], prices as strings)."""
    bars = [(Decimal(row[2]), Decimal(row[3]), Decimal(row[4])) for row in klines]
    found = set()
    for end in range(period + 1, len(bars) + 1):
        window = bars[end - period - 1 : end]
        ranges = [
            max(high - low, abs(high - window[i][2]), abs(low - window[i][2]))
            for i, (high, low, _) in enumerate(window[1:])
        ]
        atr = sum(ranges, Decimal(0)) / period
        found.add(max(CONFIGURED, (atr / TICK).to_integral_value(ROUND_CEILING) * TICK))
    return found


async def test_the_grid_starts_on_the_atr_widened_interval_and_lays_its_buys_on_it(
    constellation: LocalConstellation, pki: DevPki
) -> None:
    assert constellation.redis is not None
    client = aioredis.from_url(constellation.redis.url)
    try:

        async def stored() -> bytes | None:
            value: bytes | None = await client.get(GRID_INTERVAL.key(agent="mm1", symbol="BTCUSDT"))
            return value

        raw = await until(stored, "the grid's starting interval in Redis", within=30)
    finally:
        await client.aclose()
    interval = Decimal(raw.decode())
    venue = paper_read_venue(constellation.paper_url)
    try:
        await venue.load_markets()
        url = f"{constellation.paper_url}/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1500"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200, await response.text()
            history = await response.json()
        assert interval > CONFIGURED, "widened"
        assert interval in widened_intervals(history), f"{interval} is no 14-candle ATR of the venue's"

        async def buys() -> list[Decimal] | None:
            prices = sorted(o.price for o in await venue.fetch_open_orders("BTCUSDT") if o.side is Side.BUY)
            return prices if len(prices) >= 2 else None

        prices = await until(buys, "two grid buys", within=30)
    finally:
        await venue.close()
    for low, high in itertools.pairwise(prices):
        assert (high - low) % interval == 0, f"buys {low} and {high} are not levels {interval} apart"

    # the monitor's GetCandles, as the strategy called it; bad arguments change nothing
    files = TlsFiles(pki.ca, pki.cert("strategy"), pki.key("strategy"))
    async with secure_channel(f"127.0.0.1:{constellation.ports['monitor'].api}", files) as channel:
        stub = monitor_pb2_grpc.MonitorServiceStub(channel)
        reply = await stub.GetCandles(monitor_pb2.GetCandlesRequest(symbol="BTCUSDT", limit=15))
        opens = [c.open_ms for c in reply.candles]
        assert len(opens) == 15
        assert opens == sorted(opens)
        assert all(later - earlier == 60_000 for earlier, later in itertools.pairwise(opens))
        assert all(c.closed and c.interval == "1m" for c in reply.candles)
        for request, field in (
            (monitor_pb2.GetCandlesRequest(symbol="BTCUSDT", limit=0), "limit"),
            (monitor_pb2.GetCandlesRequest(symbol="BTCUSDT", limit=501), "limit"),
            (monitor_pb2.GetCandlesRequest(symbol="BTCUSDT", interval="7m", limit=5), "interval"),
            (monitor_pb2.GetCandlesRequest(limit=5), "symbol"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetCandles(request)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert refused.value.details().startswith(f"{field}:"), refused.value.details()
