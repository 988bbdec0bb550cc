"""Market sources drive the paper exchange: the synthetic generator and CSV replay."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from opensqt.paper import PaperExchange
from opensqt.paper.records import Family
from opensqt.paper.settings import SourceSettings
from opensqt.paper.sources import CsvReplaySource
from tests.integration.paper.conftest import PERP, make_ccxt, paper_settings

pytestmark = pytest.mark.integration


async def test_synthetic_source_moves_prices_that_ccxt_streams_receive(tmp_path: Path) -> None:
    settings = paper_settings(
        tmp_path / "paper.sqlite", source=SourceSettings(kind="synthetic", bars_per_second=50)
    )
    exchange = PaperExchange(settings)
    await exchange.start()
    client = make_ccxt("binanceusdm", exchange)
    try:
        await client.load_markets()
        tickers = [await asyncio.wait_for(client.watch_ticker(PERP), 3) for _ in range(5)]
        klines = await client.fetch_ohlcv(PERP, "1m", limit=5)
    finally:
        await client.close()
        await exchange.stop()

    prices = {ticker["last"] for ticker in tickers}
    assert len(prices) > 1
    assert all(25_000 < price < 35_000 for price in prices)
    assert klines[-1][5] > 0  # the generator's volume
    spot = exchange.venue.last_price(Family.SPOT, "BTCUSDT")
    assert spot is not None
    assert spot != Decimal(30000)  # the spot series moves too (at a small basis to the perpetual)


async def test_csv_source_replays_candles_at_the_chosen_speed(tmp_path: Path) -> None:
    candles = tmp_path / "btc.csv"
    candles.write_text(
        "ts_ms,open,high,low,close,volume\n"
        "1700000000000,30000.0,30100.0,29900.0,30050.0,12.5\n"
        "1700000060000,30050.0,30300.0,30000.0,30250.0,8.0\n"
    )
    exchange = PaperExchange(
        paper_settings(tmp_path / "paper.sqlite"),
        source=CsvReplaySource({"BTCUSDT": candles}, speed=6000, loop=False),
    )
    await exchange.start()
    try:
        for _ in range(50):
            if exchange.venue.last_price(Family.USDM, "BTCUSDT") == Decimal("30250.0"):
                break
            await asyncio.sleep(0.02)
        day = exchange.venue.candles[(Family.USDM, "BTCUSDT")].day_stats(exchange.clock.now_ms())
    finally:
        await exchange.stop()

    assert exchange.venue.last_price(Family.USDM, "BTCUSDT") == Decimal("30250.0")
    assert exchange.venue.last_price(Family.SPOT, "BTCUSDT") == Decimal("30250.00")
    assert day is not None
    assert (day.high, day.low) == (Decimal("30300.0"), Decimal("29900.0"))
    assert day.volume == Decimal("20.5")
