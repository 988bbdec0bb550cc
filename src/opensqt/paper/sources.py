"""Market sources: where the paper exchange's prices come from.

* :class:`ManualSource`: nothing moves unless ``POST /admin/price`` says so (tests);
* :class:`SyntheticSource`: the backtester's seeded generator (regimes, crashes, funding),
  one-minute candles played as open, low/high, high/low, close;
* :class:`CsvReplaySource`: candle files (the ``../shared/data`` layout or Binance klines),
  replayed at a chosen speed;
* :class:`LiveSource`: Binance's public streams through ccxt.pro (needs the internet; it is
  not exercised by the offline tests).

A source calls its :class:`PriceSink` (the exchange), which applies the price to every API
family listing the symbol.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from opensqt.model.money import ZERO
from opensqt.paper.settings import MarketSettings, SourceSettings
from opensqt.telemetry import get_logger

__all__ = [
    "CsvReplaySource",
    "LiveSource",
    "ManualSource",
    "MarketSource",
    "PriceSink",
    "SyntheticSource",
    "bar_path",
    "make_source",
]

log = get_logger(__name__)


class PriceSink(Protocol):
    """What a source feeds."""

    def on_source_price(
        self, symbol: str, price: Decimal, volume: Decimal, *, spot_price: Decimal | None
    ) -> None:
        """The market traded at ``price`` (the perpetual; ``spot_price`` for the spot listing,
        the same price when ``None``)."""

    def on_source_funding_rate(self, symbol: str, rate: Decimal) -> None:
        """The perpetual's funding rate for the next settlement."""


class MarketSource(Protocol):
    """Feeds prices until cancelled."""

    async def run(self, sink: PriceSink) -> None: ...


def bar_path(open_: Decimal, high: Decimal, low: Decimal, close: Decimal) -> tuple[Decimal, ...]:
    """The four prices a candle is played as: open, the nearer extreme, the other, close."""
    if close >= open_:
        return open_, low, high, close
    return open_, high, low, close


class ManualSource:
    """No prices of its own: the admin API moves the market."""

    async def run(self, sink: PriceSink) -> None:
        await asyncio.Event().wait()


@dataclass(frozen=True, slots=True)
class _Bar:
    perp: tuple[Decimal, Decimal, Decimal, Decimal]
    spot: tuple[Decimal, Decimal, Decimal, Decimal]
    volume: Decimal


class SyntheticSource:
    """Seeded synthetic markets (one generator per symbol), ``bars_per_second`` candles per
    second; funding rates follow the generator's 8-hourly series in simulated time."""

    def __init__(
        self, markets: Iterable[MarketSettings], *, seed: int, bars_per_second: float, chunk: int = 1440
    ):
        self.markets = list(markets)
        self.seed = seed
        self.bars_per_second = bars_per_second
        self.chunk = chunk

    def _series(self, market: MarketSettings, index: int) -> Iterator[tuple[_Bar, Decimal | None]]:
        from opensqt.backtest.synthetic import SyntheticSpec, generate_market

        tick = (
            market.perp.tick_size
            if market.perp is not None
            else market.spot.tick_size
            if market.spot
            else None
        )
        assert tick is not None
        start = market.start_price
        cycle = 0
        while True:
            spec = SyntheticSpec(
                seed=self.seed + 1000 * cycle + index, bars=self.chunk, start_price=start, tick_size=tick
            )
            generated = generate_market(spec)
            scale = generated.scale
            funding = {event.time_ms: event.rate for event in generated.funding}
            for perp, spot in zip(generated.perp_bars, generated.spot_bars, strict=True):
                to = scale.to_decimal
                rate = funding.get(perp[0])
                yield (
                    _Bar(
                        (to(perp[1]), to(perp[2]), to(perp[3]), to(perp[4])),
                        (to(spot[1]), to(spot[2]), to(spot[3]), to(spot[4])),
                        Decimal(perp[5]).scaleb(-8),
                    ),
                    rate,
                )
            start = to(generated.perp_bars[-1][4])
            cycle += 1

    async def run(self, sink: PriceSink) -> None:
        series = [self._series(market, index) for index, market in enumerate(self.markets)]
        pause = 1 / (4 * self.bars_per_second)
        while True:
            bars = [next(generator) for generator in series]
            for step in range(4):
                for market, (bar, rate) in zip(self.markets, bars, strict=True):
                    if step == 0 and rate is not None:
                        sink.on_source_funding_rate(market.symbol, rate)
                    perp = bar_path(*bar.perp)[step]
                    spot = bar_path(*bar.spot)[step]
                    sink.on_source_price(market.symbol, perp, bar.volume / 4, spot_price=spot)
                await asyncio.sleep(pause)


class CsvReplaySource:
    """Candle files replayed ``speed`` times faster than they happened (``loop``: start over)."""

    def __init__(self, files: dict[str, Path], *, speed: float, loop: bool = True) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.files = files
        self.speed = speed
        self.loop = loop

    async def _replay(self, symbol: str, path: Path, sink: PriceSink) -> None:
        from opensqt.backtest.sources import open_candle_file

        while True:
            candles = open_candle_file(path)
            scale = candles.scale
            previous: int | None = None
            for open_ms, o, h, low, c, volume in candles.bars():
                if previous is not None:
                    await asyncio.sleep(max(0.0, (open_ms - previous) / 1000 / self.speed / 4))
                previous = open_ms
                path_prices = bar_path(
                    scale.to_decimal(o), scale.to_decimal(h), scale.to_decimal(low), scale.to_decimal(c)
                )
                quarter = Decimal(volume).scaleb(-8) / 4
                for index, price in enumerate(path_prices):
                    sink.on_source_price(symbol, price, quarter, spot_price=None)
                    if index < 3:
                        await asyncio.sleep(candles.interval_ms / 1000 / self.speed / 4)
            if not self.loop:
                return

    async def run(self, sink: PriceSink) -> None:
        await asyncio.gather(*(self._replay(symbol, path, sink) for symbol, path in self.files.items()))


class LiveSource:
    """Prices from Binance's public WebSocket streams (ccxt.pro); needs the internet."""

    def __init__(self, markets: Iterable[MarketSettings]) -> None:
        self.markets = list(markets)

    async def _watch(self, exchange: Any, symbol: str, unified: str, sink: PriceSink, *, spot: bool) -> None:
        while True:
            try:
                ticker = await exchange.watch_ticker(unified)
            except Exception as error:  # reconnect on any network failure
                log.warning("live_source_error", symbol=symbol, error=str(error))
                await asyncio.sleep(5)
                continue
            last = ticker.get("last")
            if last is None:
                continue
            price = Decimal(str(last))
            if spot:
                sink.on_source_price(symbol, price, ZERO, spot_price=price)
            else:
                sink.on_source_price(symbol, price, ZERO, spot_price=None)

    async def run(self, sink: PriceSink) -> None:
        import ccxt.pro as ccxtpro

        futures = ccxtpro.binanceusdm({"options": {"fetchCurrencies": False}})
        futures.number = str
        try:
            await asyncio.gather(
                *(
                    self._watch(
                        futures,
                        market.symbol,
                        f"{market.base}/{market.quote}:{market.quote}",
                        sink,
                        spot=False,
                    )
                    for market in self.markets
                )
            )
        finally:
            with contextlib.suppress(Exception):
                await futures.close()


def make_source(settings: SourceSettings, markets: list[MarketSettings]) -> MarketSource:
    """The source ``settings.kind`` names."""
    if settings.kind == "manual":
        return ManualSource()
    if settings.kind == "synthetic":
        return SyntheticSource(markets, seed=settings.seed, bars_per_second=settings.bars_per_second)
    if settings.kind == "csv":
        if not settings.csv_files:
            raise ValueError("source.csv_files must name a candle file per symbol")
        return CsvReplaySource(settings.csv_files, speed=settings.speed, loop=settings.loop)
    return LiveSource(markets)
