"""The monitor's latest view of the market: prices, funding and feed health. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from opensqt.model import FundingRate, PriceChange

__all__ = ["FeedStatus", "MarketCache"]


@dataclass(slots=True)
class FeedStatus:
    """Health of one feed (ticker, candles, funding, account) of one symbol."""

    feed: str
    venue: str
    symbol: str
    connected: bool = False
    last_event_ms: int = 0
    reconnects: int = 0
    last_error: str = ""
    stale_after_ms: int = 30_000

    def is_stale(self, now_ms: int) -> bool:
        return not self.connected or now_ms - self.last_event_ms > self.stale_after_ms


@dataclass(slots=True)
class MarketCache:
    """Latest price and funding per (venue, symbol), and the status of every feed."""

    default_venue: str
    prices: dict[tuple[str, str], PriceChange] = field(default_factory=dict)
    funding: dict[tuple[str, str], FundingRate] = field(default_factory=dict)
    feeds: dict[tuple[str, str, str], FeedStatus] = field(default_factory=dict)

    def on_price(self, price: PriceChange) -> bool:
        """Keep ``price`` unless it is older than the one held. Returns True when kept."""
        key = (price.venue, price.symbol)
        held = self.prices.get(key)
        if held is not None and price.sequence and price.sequence <= held.sequence:
            return False
        self.prices[key] = price
        return True

    def on_funding(self, funding: FundingRate) -> None:
        self.funding[(funding.venue, funding.symbol)] = funding

    def latest_price(self, symbol: str, venue: str = "") -> PriceChange | None:
        return self.prices.get((venue or self.default_venue, symbol))

    def latest_funding(self, symbol: str, venue: str = "") -> FundingRate | None:
        return self.funding.get((venue or self.default_venue, symbol))

    def feed(self, feed: str, symbol: str, venue: str = "") -> FeedStatus:
        key = (feed, venue or self.default_venue, symbol)
        status = self.feeds.get(key)
        if status is None:
            status = self.feeds[key] = FeedStatus(feed=feed, venue=key[1], symbol=symbol)
        return status
