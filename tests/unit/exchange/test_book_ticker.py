"""The book ticker as the price feed: the mid of a two-sided quote, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from opensqt.exchange.ccxt_adapter import CcxtExchange, CcxtVenueConfig
from opensqt.model import Instrument, MarketType

UNIFIED = "BTC/USDT:USDT"


def adapter_with(quotes: list[dict[str, Any]]) -> CcxtExchange:
    """The real ccxt.pro Binance client, its stream replaced by ``quotes`` in order."""
    adapter = CcxtExchange(
        CcxtVenueConfig(venue="binance", exchange_id="binanceusdm", market_type=MarketType.PERPETUAL)
    )
    # as load_markets leaves them, without the REST call
    adapter._instruments["BTCUSDT"] = Instrument(
        venue="binance",
        symbol="BTCUSDT",
        market_type=MarketType.PERPETUAL,
        base="BTC",
        quote="USDT",
        tick_size=Decimal("0.1"),
        step_size=Decimal("0.001"),
    )
    adapter._unified["BTCUSDT"] = UNIFIED
    pushed: Iterator[dict[str, Any]] = iter(quotes)

    async def watch_bids_asks(symbols: list[str]) -> dict[str, Any]:
        assert symbols == [UNIFIED]
        return {UNIFIED: next(pushed)}

    adapter.client.watch_bids_asks = watch_bids_asks
    return adapter


async def test_the_price_is_the_exact_mid_of_bid_and_ask() -> None:
    quote = {"bid": "30000.1", "ask": "30000.4", "timestamp": 1_700_000_000_123}
    change = await adapter_with([quote]).watch_book_ticker("BTCUSDT")

    assert (change.bid, change.ask, change.price) == (
        Decimal("30000.1"),
        Decimal("30000.4"),
        Decimal("30000.25"),
    )
    assert change.exchange_ms == 1_700_000_000_123
    assert (change.venue, change.symbol) == ("binance", "BTCUSDT")


@pytest.mark.parametrize(
    "bad",
    [
        {"bid": None, "ask": "30000.4"},  # no bids
        {"bid": "30000.1", "ask": "0"},  # no asks
        {"bid": "30000.5", "ask": "30000.4"},  # crossed
    ],
)
async def test_a_quote_without_two_sides_is_skipped(bad: dict[str, Any]) -> None:
    good = {"bid": "29999.9", "ask": "30000.0"}
    change = await adapter_with([bad, good]).watch_book_ticker("BTCUSDT")

    assert change.price == Decimal("29999.95")


def test_the_capability_follows_ccxt() -> None:
    assert adapter_with([]).capabilities.watch_book_ticker is True
