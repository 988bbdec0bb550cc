"""The paper exchange's perpetual market as the monitor sees it: the real ccxt client with the
dev account's read-only key."""

from __future__ import annotations

from pydantic import SecretStr

from opensqt.exchange.ccxt_adapter import CcxtExchange, CcxtVenueConfig
from opensqt.model import MarketType


def paper_read_venue(paper_url: str) -> CcxtExchange:
    """A ccxt ``binanceusdm`` client of the paper exchange at ``paper_url`` (read-only key)."""
    return CcxtExchange(
        CcxtVenueConfig(
            venue="paper",
            exchange_id="binanceusdm",
            market_type=MarketType.PERPETUAL,
            api_key=SecretStr("paper-main-read-key"),
            api_secret=SecretStr("paper-main-read-secret"),
            rest_url=paper_url,
            ws_url=paper_url.replace("http", "ws"),
        )
    )
