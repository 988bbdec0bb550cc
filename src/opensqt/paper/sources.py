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
from datetime import UTC, datetime
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
        self,
        symbol: str,
        price: Decimal,
        volume: Decimal,
        *,
        spot_price: Decimal | None,
        market_ms: int | None = None,
    ) -> None:
        """The market traded at ``price`` (the perpetual; ``spot_price`` for the spot listing,
        the same price when ``None``) at the source's time ``market_ms`` (``None``: now)."""

    def on_source_funding_rate(self, symbol: str, rate: Decimal) -> None:
        """The perpetual's funding rate for the next settlement."""


class MarketSource(Protocol):
    """Feeds prices until cancelled.

    ``market_time``: the source stamps its prices with its own time (a replay's bar times), and
    the exchange keys its candles by it; otherwise candles follow the exchange's clock."""

    market_time: bool

    async def run(self, sink: PriceSink) -> None: ...


_FUNDING_GRID_MS = 8 * 3_600_000


def _minute_floor(time_ms: int) -> int:
    return time_ms - time_ms % 60_000


class _Timeline:
    """Keeps a looping replay's time moving forward: each pass is shifted to start one
    interval after the previous pass ended (the first pass keeps the file's own times, unless
    they would start before ``not_before_ms``)."""

    def __init__(self, not_before_ms: int | None = None) -> None:
        self._not_before = not_before_ms
        self._offset = 0
        self._last: int | None = None

    def start_pass(self, first_ms: int, interval_ms: int) -> None:
        floor = self._not_before if self._last is None else self._last + interval_ms
        self._offset = 0 if floor is None or first_ms >= floor else floor - first_ms

    def at(self, time_ms: int) -> int:
        shifted = time_ms + self._offset
        self._last = shifted
        return shifted


def bar_path(open_: Decimal, high: Decimal, low: Decimal, close: Decimal) -> tuple[Decimal, ...]:
    """The four prices a candle is played as: open, the nearer extreme, the other, close."""
    if close >= open_:
        return open_, low, high, close
    return open_, high, low, close


class ManualSource:
    """No prices of its own: the admin API moves the market."""

    market_time = False

    async def run(self, sink: PriceSink) -> None:
        await asyncio.Event().wait()


@dataclass(frozen=True, slots=True)
class _Bar:
    perp: tuple[Decimal, Decimal, Decimal, Decimal]
    spot: tuple[Decimal, Decimal, Decimal, Decimal]
    volume: Decimal
    open_ms: int


class SyntheticSource:
    """Seeded synthetic markets (one generator per symbol), ``bars_per_second`` candles per
    second; funding rates follow the generator's 8-hourly series in simulated time."""

    market_time = True

    def __init__(
        self,
        markets: Iterable[MarketSettings],
        *,
        seed: int,
        bars_per_second: float,
        chunk: int = 1440,
        start_ms: int = 1_704_067_200_000,
    ):
        self.markets = list(markets)
        self.seed = seed
        self.bars_per_second = bars_per_second
        self.chunk = chunk
        self.start_ms = _minute_floor(start_ms)

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
                seed=self.seed + 1000 * cycle + index,
                bars=self.chunk,
                start_price=start,
                tick_size=tick,
                start_ms=self.start_ms + cycle * self.chunk * 60_000,
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
                        int(perp[0]),
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
                    sink.on_source_price(
                        market.symbol,
                        perp,
                        bar.volume / 4,
                        spot_price=spot,
                        market_ms=bar.open_ms + step * 15_000,
                    )
                await asyncio.sleep(pause)


class CsvReplaySource:
    """Candle files replayed ``speed`` times faster than they happened (``loop``: start over).

    Prices carry the bars' own times (a bar's four prices at its open and each following
    quarter), so the exchange's candles are the file's candles; ``start_ms``/``end_ms`` cut the
    replay to a window (open times, inclusive start, exclusive end). A loop continues the time
    line: each pass starts one interval after the previous one ended."""

    market_time = True

    def __init__(
        self,
        files: dict[str, Path],
        *,
        speed: float,
        loop: bool = True,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if start_ms is not None and end_ms is not None and end_ms <= start_ms:
            raise ValueError("the replay window must end after it starts")
        self.files = files
        self.speed = speed
        self.loop = loop
        self.start_ms = start_ms
        self.end_ms = end_ms

    async def _replay(self, symbol: str, path: Path, sink: PriceSink) -> None:
        from opensqt.backtest.sources import open_candle_file

        timeline = _Timeline()
        while True:
            candles = open_candle_file(path)
            scale = candles.scale
            quarter_ms = candles.interval_ms // 4
            pause = candles.interval_ms / 1000 / self.speed / 4
            previous: int | None = None
            for open_ms, o, h, low, c, volume in candles.bars():
                if self.start_ms is not None and open_ms < self.start_ms:
                    continue
                if self.end_ms is not None and open_ms >= self.end_ms:
                    break
                if previous is None:
                    timeline.start_pass(open_ms, candles.interval_ms)
                else:
                    await asyncio.sleep(max(0.0, (open_ms - previous) / 1000 / self.speed / 4))
                previous = open_ms
                path_prices = bar_path(
                    scale.to_decimal(o), scale.to_decimal(h), scale.to_decimal(low), scale.to_decimal(c)
                )
                quarter = Decimal(volume).scaleb(-8) / 4
                for index, price in enumerate(path_prices):
                    sink.on_source_price(
                        symbol,
                        price,
                        quarter,
                        spot_price=None,
                        market_ms=timeline.at(open_ms + index * quarter_ms),
                    )
                    if index < 3:
                        await asyncio.sleep(pause)
            if previous is None:
                raise ValueError(f"{path}: no candle in the replay window")
            if not self.loop:
                return

    async def run(self, sink: PriceSink) -> None:
        await asyncio.gather(*(self._replay(symbol, path, sink) for symbol, path in self.files.items()))


class LiveSource:
    """Prices from Binance's public WebSocket streams (ccxt.pro); needs the internet."""

    market_time = False

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


def _epoch_ms(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def make_source(settings: SourceSettings, markets: list[MarketSettings], *, now_ms: int) -> MarketSource:
    """The source ``settings.kind`` names. A synthetic market's time starts at the last 8-hour
    funding mark before ``now_ms``, so a seed's funding events fall on the same bars every run."""
    if settings.kind == "manual":
        return ManualSource()
    if settings.kind == "synthetic":
        return SyntheticSource(
            markets,
            seed=settings.seed,
            bars_per_second=settings.bars_per_second,
            start_ms=now_ms - now_ms % _FUNDING_GRID_MS,
        )
    if settings.kind == "csv":
        if not settings.csv_files:
            raise ValueError("source.csv_files must name a candle file per symbol")
        return CsvReplaySource(
            settings.csv_files,
            speed=settings.speed,
            loop=settings.loop,
            start_ms=_epoch_ms(settings.replay_from),
            end_ms=_epoch_ms(settings.replay_until),
        )
    return LiveSource(markets)
