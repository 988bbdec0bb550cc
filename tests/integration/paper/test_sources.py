"""Market sources drive the paper exchange: the synthetic generator and CSV replay."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
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


BARS = [  # open_ms, open, high, low, close, volume
    (1700000040000, "30000.0", "30100.0", "29900.0", "30050.0", "12.5"),
    (1700000100000, "30050.0", "30300.0", "30000.0", "30250.0", "8.0"),
    (1700000160000, "30250.0", "30260.0", "29000.0", "29100.0", "40.0"),
    (1700000220000, "29100.0", "29500.0", "29050.0", "29400.0", "6.0"),
]


def _write_bars(path: Path) -> Path:
    path.write_text(
        "ts_ms,open,high,low,close,volume\n" + "".join(",".join(map(str, bar)) + "\n" for bar in BARS)
    )
    return path


async def _replayed_klines(tmp_path: Path, source: SourceSettings, expect_close: str) -> list[list[Any]]:
    exchange = PaperExchange(paper_settings(tmp_path / "paper.sqlite", source=source))
    await exchange.start()
    client = make_ccxt("binanceusdm", exchange)
    try:
        for _ in range(200):
            if exchange.venue.last_price(Family.USDM, "BTCUSDT") == Decimal(expect_close):
                break
            await asyncio.sleep(0.02)
        klines: list[list[Any]] = await client.fetch_ohlcv(PERP, "1m", limit=20)
    finally:
        await client.close()
        await exchange.stop()
    return klines


async def test_a_replay_keys_the_exchange_candles_by_the_bars_own_time(tmp_path: Path) -> None:
    """At 6000x, four minutes replay in a fraction of a wall-clock second; the klines ccxt
    reads back are still the file's four one-minute candles, with the file's open times."""
    source = SourceSettings(kind="csv", csv_files={"BTCUSDT": _write_bars(tmp_path / "btc.csv")},
                            speed=6000, loop=False)  # fmt: skip
    klines = await _replayed_klines(tmp_path, source, expect_close="29400.0")

    expected = [
        [t, Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(v)] for t, o, h, lo, c, v in BARS
    ]
    got = [[row[0], *(Decimal(str(x)) for x in row[1:6])] for row in klines]
    assert got == expected


async def test_a_replay_window_plays_only_the_bars_inside_it(tmp_path: Path) -> None:
    source = SourceSettings(
        kind="csv",
        csv_files={"BTCUSDT": _write_bars(tmp_path / "btc.csv")},
        speed=6000,
        loop=False,
        replay_from=datetime.fromtimestamp(1700000100, tz=UTC),
        replay_until=datetime.fromtimestamp(1700000220, tz=UTC),
    )
    klines = await _replayed_klines(tmp_path, source, expect_close="29100.0")

    assert [row[0] for row in klines] == [1700000100000, 1700000160000]


def test_a_replay_window_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="replay_until must be after"):
        SourceSettings(kind="csv", replay_from="2022-05-12T08:00:00", replay_until="2022-05-12T07:00:00")


async def test_a_looping_replay_keeps_market_time_moving_forward(tmp_path: Path) -> None:
    source = SourceSettings(kind="csv", csv_files={"BTCUSDT": _write_bars(tmp_path / "btc.csv")},
                            speed=60000, loop=True)  # fmt: skip
    exchange = PaperExchange(paper_settings(tmp_path / "paper.sqlite", source=source))
    await exchange.start()
    try:
        book = exchange.venue.candles[(Family.USDM, "BTCUSDT")]
        for _ in range(300):
            latest = book.latest_ms
            if latest is not None and latest >= BARS[-1][0] + 3 * 60_000:
                break
            await asyncio.sleep(0.02)
        minutes = [candle.open_ms for candle in book.candles(60_000, start_ms=None, end_ms=None, limit=100)]
    finally:
        await exchange.stop()

    assert minutes == sorted(set(minutes)), "candle times must strictly increase across passes"
    # the second pass continues one minute after the first ended, bar for bar
    assert minutes[:8] == [BARS[0][0] + i * 60_000 for i in range(8)]


async def test_synthetic_candles_close_at_the_generators_pace(tmp_path: Path) -> None:
    """50 bars a second: within a wall-clock second the exchange has many closed minutes."""
    settings = paper_settings(
        tmp_path / "paper.sqlite", source=SourceSettings(kind="synthetic", bars_per_second=50)
    )
    exchange = PaperExchange(settings)
    await exchange.start()
    try:
        await asyncio.sleep(0.5)
        book = exchange.venue.candles[(Family.USDM, "BTCUSDT")]
        minutes = [candle.open_ms for candle in book.candles(60_000, start_ms=None, end_ms=None, limit=1000)]
    finally:
        await exchange.stop()

    assert len(minutes) >= 10
    assert all(b - a == 60_000 for a, b in itertools.pairwise(minutes))


async def test_a_market_time_source_settles_funding_on_its_own_time_line(tmp_path: Path) -> None:
    """A day of synthetic market in well under a minute settles funding three times, at the
    market's 8-hour marks and at the generator's rates (the wall clock would settle none)."""
    settings = paper_settings(
        tmp_path / "paper.sqlite", source=SourceSettings(kind="synthetic", bars_per_second=2000)
    )
    exchange = PaperExchange(settings)
    await exchange.start()
    try:
        for _ in range(400):
            if len(exchange.venue.funding_history.get("BTCUSDT", [])) >= 3:
                break
            await asyncio.sleep(0.05)
        history = list(exchange.venue.funding_history.get("BTCUSDT", []))
        next_ms = exchange.venue.funding["BTCUSDT"].next_ms
    finally:
        await exchange.stop()

    assert len(history) >= 3, history
    times = [time_ms for time_ms, _, _ in history]
    assert all(t % (8 * 3_600_000) == 0 for t in times), times
    assert all(b - a == 8 * 3_600_000 for a, b in itertools.pairwise(times)), times
    assert next_ms > times[-1]
    assert len({rate for _, rate, _ in history}) > 1  # the generator's rates, not one constant


async def test_a_replay_can_wait_for_its_consumer_to_subscribe(tmp_path: Path) -> None:
    """``wait_for_streams``: a fast replay holds its first bar until someone watches its candles,
    so the consumer sees every minute (the calm-week scenario needs all 10,080)."""
    source = SourceSettings(kind="csv", csv_files={"BTCUSDT": _write_bars(tmp_path / "btc.csv")},
                            speed=6000, loop=False, wait_for_streams=["BTCUSDT@kline_1m"])  # fmt: skip
    exchange = PaperExchange(paper_settings(tmp_path / "paper.sqlite", source=source))
    await exchange.start()
    try:
        before = exchange.venue.last_price(Family.USDM, "BTCUSDT")
        await asyncio.sleep(0.5)  # far longer than the whole replay takes at 6000x
        assert exchange.venue.last_price(Family.USDM, "BTCUSDT") == before
        assert exchange.venue.candles[(Family.USDM, "BTCUSDT")].latest_ms is None  # no bar yet
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{exchange.ws_url}/market/stream?streams=btcusdt@kline_1m") as ws,
        ):
            opened: list[int] = []
            while len(opened) < len(BARS) + 1:  # every bar, then the last one's update
                message = await asyncio.wait_for(ws.receive_json(), timeout=5)
                kline = message["data"]["k"]
                if not opened or opened[-1] != kline["t"]:
                    opened.append(kline["t"])
                if opened[-1] == BARS[-1][0]:
                    break
    finally:
        await exchange.stop()
    assert opened == [bar[0] for bar in BARS]
