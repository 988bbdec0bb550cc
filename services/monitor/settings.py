"""Monitor settings (env prefix ``OPENSQT_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from opensqt.config import GrpcSettings, ServiceSettings
from opensqt.exchange.settings import VenueSettings
from opensqt.monitors.feeds import PriceFeed


class MonitorSettings(ServiceSettings):
    identity: str = "monitor"
    grpc: GrpcSettings = GrpcSettings(port=50051, probe_port=8081)
    account: str = Field(default="main", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # A read-only key is enough for the monitor (default: the paper exchange's read-only key).
    venue: VenueSettings = VenueSettings(
        api_key=SecretStr("paper-main-read-key"), api_secret=SecretStr("paper-main-read-secret")
    )
    # Symbols to watch (tickers, candles, funding); empty: feeds off (the API still serves).
    symbols: tuple[str, ...] = ()
    candle_interval: str = "1m"
    # Prices from the book ticker (mid of best bid and ask, pushed on every change) or the
    # ticker (last trade; Binance's ticker stream is a 24 h summary pushed at intervals, not on
    # every trade: too slow to quote on).
    price_feed: PriceFeed = "book_ticker"
    position_poll_seconds: float = Field(default=2.0, gt=0)
    # After an order update, once the stream has been quiet this long, ask the venue over REST
    # what changed meanwhile (an update can sit in ccxt.pro's cache until the next one); 0: never.
    order_quiet_resync_seconds: float = Field(default=1.0, ge=0)
    # With no order update at all for this long, the same REST read (a lost push); 0: never.
    order_idle_resync_seconds: float = Field(default=60.0, ge=0)
    # Funding is published when its rate or next funding time changes, and unchanged at least
    # this often (so a consumer's freshness limit is met after a restart or a halt); 0: only on
    # a change.
    funding_refresh_seconds: float = Field(default=30.0, ge=0)
    stale_after_ms: int = Field(default=30_000, gt=0)
