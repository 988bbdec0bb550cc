"""MonitorService/GetCandles over a candle source: the newest (forming) candle is dropped, the
rest come oldest first, and bad arguments reach no venue."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from opensqt.clock import TestClock
from opensqt.errors import InvalidArgument, NotStarted
from opensqt.model import Candle
from opensqt.monitors.cache import MarketCache
from opensqt.monitors.service import MonitorServicer
from opensqt.v1 import monitor_pb2


def candle(minute: int) -> Candle:
    price = Decimal(3000 + minute)
    return Candle(symbol="ETHUSDT", interval="1m", open_ms=minute * 60_000, open=price, high=price,
                  low=price, close=price, volume=Decimal(1), closed=False)  # fmt: skip


class Venue:
    def __init__(self, candles: list[Candle]) -> None:
        self.candles = candles
        self.asked: list[tuple[str, str, int]] = []

    async def fetch_candles(self, symbol: str, interval: str, *, limit: int) -> list[Candle]:
        self.asked.append((symbol, interval, limit))
        return self.candles[-limit:][::-1]  # a venue may list them newest first


def servicer(venue: Venue | None) -> MonitorServicer:
    return MonitorServicer(MarketCache(default_venue="paper"), TestClock(), venue)


async def test_the_newest_candle_is_dropped_and_the_rest_come_oldest_first() -> None:
    venue = Venue([candle(m) for m in range(10)])  # minute 9 is the one forming
    context: Any = None
    reply = await servicer(venue).GetCandles(
        monitor_pb2.GetCandlesRequest(symbol="ETHUSDT", interval="1m", limit=3), context
    )
    assert venue.asked == [("ETHUSDT", "1m", 4)]
    assert [c.open_ms for c in reply.candles] == [6 * 60_000, 7 * 60_000, 8 * 60_000]
    assert all(c.closed for c in reply.candles)
    short = await servicer(Venue([candle(0), candle(1)])).GetCandles(
        monitor_pb2.GetCandlesRequest(symbol="ETHUSDT", limit=5), context
    )
    assert [c.open_ms for c in short.candles] == [0]  # less history than asked: what there is


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (monitor_pb2.GetCandlesRequest(symbol="ETHUSDT", limit=0), "limit"),
        (monitor_pb2.GetCandlesRequest(symbol="ETHUSDT", limit=501), "limit"),
        (monitor_pb2.GetCandlesRequest(symbol="ETHUSDT", interval="1d", limit=5), "interval"),
        (monitor_pb2.GetCandlesRequest(symbol="ETH USDT", limit=5), "symbol"),
    ],
)
async def test_bad_arguments_are_refused_before_the_venue_is_asked(
    request_: monitor_pb2.GetCandlesRequest, field: str
) -> None:
    venue = Venue([candle(0)])
    with pytest.raises(InvalidArgument) as refused:
        await servicer(venue).GetCandles(request_, None)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert venue.asked == []


async def test_a_monitor_without_a_venue_says_so() -> None:
    with pytest.raises(NotStarted, match="OPENSQT_SYMBOLS"):
        await servicer(None).GetCandles(monitor_pb2.GetCandlesRequest(symbol="ETHUSDT", limit=5), None)  # type: ignore[arg-type]
