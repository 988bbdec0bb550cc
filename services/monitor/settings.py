"""Monitor settings (env prefix ``OPENSQT_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from opensqt.config import GrpcSettings, ServiceSettings
from opensqt.exchange.settings import VenueSettings


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
    position_poll_seconds: float = Field(default=2.0, gt=0)
    stale_after_ms: int = Field(default=30_000, gt=0)
