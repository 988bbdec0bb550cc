"""The exchange port: what the monitor and the executor need of a venue.

Implemented over ccxt by :class:`opensqt.exchange.ccxt_adapter.CcxtExchange` (the same code
against a real venue and against the paper exchange). Errors raised by implementations are the
:mod:`opensqt.errors` exchange taxonomy, never a library's own exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from opensqt.model import Candle, FundingRate, Instrument, Order, Position, PriceChange

__all__ = ["CANDLE_INTERVAL_MS", "Balance", "ExchangePort", "VenueCapabilities"]

#: Candle intervals the adapters and the monitor's GetCandles know, and their length in ms.
CANDLE_INTERVAL_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}


@dataclass(frozen=True, slots=True)
class VenueCapabilities:
    """What a venue supports, declared once instead of ``if venue == ...`` branches."""

    perpetuals: bool = True
    spot: bool = False
    margin_borrow: bool = False
    post_only: bool = True
    reduce_only: bool = True
    fetch_order_by_client_id: bool = True
    watch_tickers: bool = True
    watch_book_ticker: bool = True
    watch_mark_price: bool = False
    watch_own_orders: bool = True
    watch_positions: bool = False
    max_client_order_id_length: int = 36


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    used: Decimal
    total: Decimal


class ExchangePort(Protocol):
    """One venue account. Symbols are the venue's ids (``BTCUSDT``)."""

    venue: str
    capabilities: VenueCapabilities

    async def load_markets(self, *, reload: bool = False) -> dict[str, Instrument]: ...

    async def create_order(self, order: Order) -> Order:
        """Send ``order`` (its ``client_order_id`` is required). Returns the venue's view of it."""
        ...

    async def cancel_order(
        self, symbol: str, *, client_order_id: str = "", exchange_order_id: str = ""
    ) -> Order: ...

    async def fetch_order(
        self, symbol: str, *, client_order_id: str = "", exchange_order_id: str = ""
    ) -> Order: ...

    async def fetch_open_orders(self, symbol: str = "") -> list[Order]: ...

    async def fetch_recent_orders(self, symbol: str, *, since_ms: int) -> list[Order]:
        """Every order of ``symbol`` created since ``since_ms``, open and final, oldest first
        (all of them: an implementation pages through a venue that answers a limited number).

        The venue filters by creation time: an order created earlier that filled or was
        cancelled since is not in it (look such an order up with :meth:`fetch_order`)."""
        ...

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]: ...

    async def fetch_balances(self) -> dict[str, Balance]: ...

    async def fetch_funding_rate(self, symbol: str) -> FundingRate: ...

    async def fetch_funding_history(
        self, symbol: str, *, since_ms: int = 0, limit: int = 100
    ) -> list[FundingRate]: ...

    async def fetch_candles(self, symbol: str, interval: str, *, limit: int) -> list[Candle]:
        """The venue's latest ``limit`` candles of ``interval``, oldest first; the last one may
        still be forming (``closed`` False)."""
        ...

    async def watch_ticker(self, symbol: str) -> PriceChange: ...

    async def watch_book_ticker(self, symbol: str) -> PriceChange:
        """Best bid and ask as they change; ``price`` is their mid."""
        ...

    async def watch_candles(self, symbol: str, interval: str) -> list[Candle]: ...

    async def watch_mark_price(self, symbol: str) -> FundingRate: ...

    async def watch_orders(self, symbol: str = "") -> list[Order]: ...

    async def close(self) -> None: ...
