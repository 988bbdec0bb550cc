"""The monitor's gRPC API: the latest price, funding and feed health it has seen."""

from __future__ import annotations

from typing import Any

import grpc

from opensqt.clock import Clock
from opensqt.errors import InvalidArgument, NotFound
from opensqt.monitors.cache import MarketCache
from opensqt.transport import codec
from opensqt.v1 import monitor_pb2, monitor_pb2_grpc

__all__ = ["MonitorServicer"]


def _symbol(raw: str) -> str:
    if not raw:
        raise InvalidArgument("symbol", "is required, e.g. BTCUSDT")
    if not raw.replace("-", "").replace("_", "").isalnum() or len(raw) > 64:
        raise InvalidArgument("symbol", f"{raw!r} is not a venue symbol id ([A-Za-z0-9_-], up to 64 chars)")
    return raw


class MonitorServicer(monitor_pb2_grpc.MonitorServiceServicer):
    """Serves MonitorService from a :class:`MarketCache`."""

    def __init__(self, cache: MarketCache, clock: Clock) -> None:
        self._cache = cache
        self._clock = clock

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
