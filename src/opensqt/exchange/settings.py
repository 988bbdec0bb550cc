"""Venue settings shared by the services that reach an exchange (monitor, executor)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from opensqt.exchange.ccxt_adapter import CcxtVenueConfig
from opensqt.model import MarketType

__all__ = ["VenueSettings"]

_MARKET_TYPES = {"spot": MarketType.SPOT, "margin": MarketType.MARGIN, "perpetual": MarketType.PERPETUAL}


class VenueSettings(BaseModel):
    """One venue account. Defaults reach the local paper exchange (``opensqt paper-exchange``).

    For a real venue set ``rest_url``/``ws_url`` to empty and supply the keys through
    ``OPENSQT_SECRETS_DIR`` files (``OPENSQT_VENUE__API_KEY``, ``OPENSQT_VENUE__API_SECRET``).
    The monitor needs only a read-only key.
    """

    model_config = {"extra": "forbid"}

    name: str = Field(default="paper", pattern=r"^[a-z0-9_-]{1,32}$")
    exchange_id: Literal["binanceusdm", "binance"] = "binanceusdm"
    market_type: Literal["spot", "margin", "perpetual"] = "perpetual"
    rest_url: str = "http://127.0.0.1:8090"
    ws_url: str = "ws://127.0.0.1:8090"
    # The paper exchange's development account (opensqt.paper.settings); never a real key.
    api_key: SecretStr | None = SecretStr("paper-main-trade-key")
    api_secret: SecretStr | None = SecretStr("paper-main-trade-secret")
    timeout_ms: int = Field(default=10_000, ge=100)
    funding_interval_hours: int = Field(default=8, ge=1, le=24)

    def ccxt_config(self) -> CcxtVenueConfig:
        return CcxtVenueConfig(
            venue=self.name,
            exchange_id=self.exchange_id,
            market_type=_MARKET_TYPES[self.market_type],
            api_key=self.api_key,
            api_secret=self.api_secret,
            rest_url=self.rest_url or None,
            ws_url=self.ws_url or None,
            timeout_ms=self.timeout_ms,
            default_funding_interval_hours=self.funding_interval_hours,
        )
