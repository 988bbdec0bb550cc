"""The monitor's gRPC API: the latest price, funding and feed health it has seen, and the venue's
recent candles."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

import grpc

from opensqt.clock import Clock
from opensqt.errors import InvalidArgument, NotFound, NotStarted
from opensqt.exchange.port import CANDLE_INTERVAL_MS
from opensqt.model import Candle
from opensqt.monitors.cache import MarketCache
from opensqt.transport import codec
from opensqt.v1 import monitor_pb2, monitor_pb2_grpc

__all__ = ["MAX_CANDLES", "CandleSource", "MonitorServicer"]

MAX_CANDLES = 500


class CandleSource(Protocol):
    """Where GetCandles reads the venue's history (the monitor's exchange adapter)."""

    async def fetch_candles(self, symbol: str, interval: str, *, limit: int) -> list[Candle]: ...


def _symbol(raw: str) -> str:
    if not raw:
        raise InvalidArgument("symbol", "is required, e.g. BTCUSDT")
    if not raw.replace("-", "").replace("_", "").isalnum() or len(raw) > 64:
        raise InvalidArgument("symbol", f"{raw!r} is not a venue symbol id ([A-Za-z0-9_-], up to 64 chars)")
    return raw


class MonitorServicer(monitor_pb2_grpc.MonitorServiceServicer):
    """Serves MonitorService from a :class:`MarketCache`, and GetCandles from ``candles`` (the
    venue; ``None`` when the monitor watches no symbol and so has no venue client)."""

    def __init__(self, cache: MarketCache, clock: Clock, candles: CandleSource | None = None) -> None:
        self._cache = cache
        self._clock = clock
        self._candles = candles

    async def GetLatestPrice(
        self, request: monitor_pb2.GetLatestPriceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> monitor_pb2.GetLatestPriceResponse:
        symbol = _symbol(request.symbol)
        price = self._cache.latest_price(symbol, request.venue)
        if price is None:
            venue = request.venue or self._cache.default_venue
            raise NotFound(f"no price seen for {venue}:{symbol} (is the symbol monitored?)")
        return monitor_pb2.GetLatestPriceResponse(price=codec.price_change_to_proto(price))

    async def GetFundingRate(
        self, request: monitor_pb2.GetFundingRateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> monitor_pb2.GetFundingRateResponse:
        symbol = _symbol(request.symbol)
        funding = self._cache.latest_funding(symbol, request.venue)
        if funding is None:
            venue = request.venue or self._cache.default_venue
            raise NotFound(f"no funding rate seen for {venue}:{symbol} (is it a monitored perpetual?)")
        return monitor_pb2.GetFundingRateResponse(funding=codec.funding_rate_to_proto(funding))

    async def GetFeedHealth(
        self, request: monitor_pb2.GetFeedHealthRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> monitor_pb2.GetFeedHealthResponse:
        now = self._clock.now_ms()
        return monitor_pb2.GetFeedHealthResponse(
            feeds=[
                monitor_pb2.FeedHealth(
                    feed=s.feed,
                    venue=s.venue,
                    symbol=s.symbol,
                    connected=s.connected,
                    stale=s.is_stale(now),
                    last_event_ms=s.last_event_ms,
                    reconnects=s.reconnects,
                    last_error=s.last_error,
                )
                for s in self._cache.feeds.values()
            ]
        )

    async def GetCandles(
        self, request: monitor_pb2.GetCandlesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> monitor_pb2.GetCandlesResponse:
        symbol = _symbol(request.symbol)
        interval = request.interval or "1m"
        if interval not in CANDLE_INTERVAL_MS:
            raise InvalidArgument("interval", f"{interval!r} is not one of {', '.join(CANDLE_INTERVAL_MS)}")
        if not 1 <= request.limit <= MAX_CANDLES:
            raise InvalidArgument("limit", f"must be 1 to {MAX_CANDLES}, got {request.limit}")
        if self._candles is None:
            raise NotStarted("this monitor watches no symbol (OPENSQT_SYMBOLS), so it has no venue client")
        # one more than asked: the venue's newest candle is the one forming (Binance's klines end
        # with it), dropped whatever the clocks say (a paper market's time runs ahead of ours)
        fetched = await self._candles.fetch_candles(symbol, interval, limit=request.limit + 1)
        closed = sorted(fetched, key=lambda c: c.open_ms)[:-1]
        return monitor_pb2.GetCandlesResponse(
            candles=[codec.candle_to_proto(replace(c, closed=True)) for c in closed[-request.limit :]]
        )
