"""The backtest's books: what the simulated venue did for the agent, and the venue adapter.

:class:`CoreVenue` is the engine's :class:`~opensqt.engine.base.Venue` over a
:class:`~opensqt.exchange.MatchingCore` account; every event the core produces for the run
(answers to orders, fills from the market's moves, funding) goes through :class:`Ledger`, which
keeps the fills and the totals of the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opensqt.engine.base import OrderRefused
from opensqt.exchange import (
    FundingPayment,
    MatchingCore,
    OrderEvent,
    OrderRejected,
    OrderRequest,
    RejectReason,
    UnknownOrder,
)
from opensqt.model.enums import MarketType, OrderStatus, Side
from opensqt.model.events import OrderUpdate
from opensqt.model.money import ZERO
from opensqt.model.resources import Order

__all__ = ["FILL_COLUMNS", "CoreVenue", "Ledger"]

FILL_COLUMNS = (
    "time_ms",
    "venue",
    "symbol",
    "side",
    "price",
    "qty",
    "fee",
    "fee_asset",
    "liquidity",
    "realized_pnl",
    "client_order_id",
    "order_id",
)

_FUNDS = (RejectReason.INSUFFICIENT_BALANCE, RejectReason.INSUFFICIENT_MARGIN)


@dataclass(slots=True)
class _Holding:
    """Signed size and average entry of one market, as the ledger sees it (for spot PnL)."""

    size: Decimal = ZERO
    entry: Decimal = ZERO


class Ledger:
    """Counts and totals of one backtest, plus every fill (for the fills CSV).

    It also keeps the account's books exactly: :attr:`cash_flow` is what the fills and funding
    moved in the quote asset (``-signed qty * price - fee`` per fill, plus each funding payment)
    and :meth:`size` the signed quantity each market's fills add up to. For a spot market or a
    linear perpetual alike, equity is then ``initial balance + cash_flow + sum(size * price)``:
    only products and sums, so exact, unlike the core's books, whose average entry prices are
    divisions rounded to the Decimal context (28 digits). The run has one quote asset.
    """

    def __init__(self) -> None:
        self.orders = 0
        self.rejected = 0
        self.cancels = 0
        self.expired = 0
        self.maker_fills = 0
        self.taker_fills = 0
        self.round_trips = 0
        self.liquidations = 0
        self.fees = ZERO
        self.realized_pnl = ZERO
        self.funding = ZERO
        self.cash_flow = ZERO
        self.fills: list[list[str]] = []
        self._holdings: dict[str, _Holding] = {}

    def size(self, key: str) -> Decimal:
        """Signed quantity the fills on market ``key`` (``venue:symbol``) add up to."""
        holding = self._holdings.get(key)
        return holding.size if holding is not None else ZERO

    def record(self, events: list[OrderEvent], market_types: dict[str, MarketType]) -> None:
        for event in events:
            order = event.order
            if event.trade is None:
                if order.status is OrderStatus.CANCELED:
                    self.cancels += 1
                elif order.status is OrderStatus.EXPIRED:
                    self.expired += 1
                continue
            trade = event.trade
            key = f"{trade.venue}:{trade.symbol}"
            holding = self._holdings.setdefault(key, _Holding())
            signed = trade.quantity if trade.side is Side.BUY else -trade.quantity
            closing = holding.size != 0 and (holding.size > 0) != (signed > 0)
            realized = event.realized_pnl
            if market_types.get(key) is not MarketType.PERPETUAL:
                realized = self._spot_pnl(holding, trade.side, trade.quantity, trade.price)
            self._move(holding, signed, trade.price)
            if closing:
                self.round_trips += 1
            if event.liquidation:
                self.liquidations += 1
            if trade.is_maker:
                self.maker_fills += 1
            else:
                self.taker_fills += 1
            self.fees += trade.fee
            self.realized_pnl += realized
            self.cash_flow -= signed * trade.price + trade.fee
            self.fills.append(
                [
                    str(trade.time_ms),
                    trade.venue,
                    trade.symbol,
                    trade.side.value,
                    str(trade.price),
                    str(trade.quantity),
                    str(trade.fee),
                    trade.fee_asset,
                    "maker" if trade.is_maker else "taker",
                    str(realized),
                    trade.client_order_id,
                    trade.exchange_order_id,
                ]
            )

    def record_funding(self, payments: list[FundingPayment]) -> None:
        for payment in payments:
            self.funding += payment.amount
            self.cash_flow += payment.amount

    @staticmethod
    def _spot_pnl(holding: _Holding, side: Side, qty: Decimal, price: Decimal) -> Decimal:
        size = holding.size
        if size == 0 or (size > 0) == (side is Side.BUY):
            return ZERO
        closed = min(qty, abs(size))
        return closed * (price - holding.entry) if size > 0 else closed * (holding.entry - price)

    @staticmethod
    def _move(holding: _Holding, signed: Decimal, price: Decimal) -> None:
        size = holding.size
        new = size + signed
        if size == 0 or (size > 0) == (signed > 0):
            holding.entry = (abs(size) * holding.entry + abs(signed) * price) / abs(new)
        elif new == 0:
            holding.entry = ZERO
        elif (new > 0) != (size > 0):
            holding.entry = price
        holding.size = new

    def to_state(self) -> dict[str, Any]:
        return {
            "counts": [
                self.orders,
                self.rejected,
                self.cancels,
                self.expired,
                self.maker_fills,
                self.taker_fills,
                self.round_trips,
                self.liquidations,
            ],
            "fees": str(self.fees),
            "realized_pnl": str(self.realized_pnl),
            "funding": str(self.funding),
            "cash_flow": str(self.cash_flow),
            "fills": self.fills,
            "holdings": {key: [str(h.size), str(h.entry)] for key, h in self._holdings.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        (
            self.orders,
            self.rejected,
            self.cancels,
            self.expired,
            self.maker_fills,
            self.taker_fills,
            self.round_trips,
            self.liquidations,
        ) = state["counts"]
        self.fees = Decimal(state["fees"])
        self.realized_pnl = Decimal(state["realized_pnl"])
        self.funding = Decimal(state["funding"])
        self.fills = [list(row) for row in state["fills"]]
        if "cash_flow" in state:
            self.cash_flow = Decimal(state["cash_flow"])
        else:  # a checkpoint from before it was kept: rebuild it from the fills
            self.cash_flow = self.funding
            for row in self.fills:
                signed = Decimal(row[5]) if row[3] == Side.BUY.value else -Decimal(row[5])
                self.cash_flow -= signed * Decimal(row[4]) + Decimal(row[6])
        self._holdings = {
            key: _Holding(Decimal(size), Decimal(entry)) for key, (size, entry) in state["holdings"].items()
        }


class CoreVenue:
    """The engine's venue port over one account of a :class:`MatchingCore`.

    ``cancel`` looks the order up on ``default_venue`` (the grid trades one market).
    """

    def __init__(self, core: MatchingCore, account: str, ledger: Ledger, *, default_venue: str) -> None:
        self.core = core
        self.account = account
        self.ledger = ledger
        self.default_venue = default_venue
        self.market_types: dict[str, MarketType] = {}

    def register(self, venue: str, symbol: str, market_type: MarketType) -> None:
        self.market_types[f"{venue}:{symbol}"] = market_type

    def place(self, order: Order, now_ms: int) -> list[OrderUpdate]:
        request = OrderRequest.from_order(order, account=self.account)
        self.ledger.orders += 1
        try:
            events = self.core.submit(request, now_ms)
        except OrderRejected as rejected:
            self.ledger.rejected += 1
            raise OrderRefused(str(rejected), insufficient_funds=rejected.reason in _FUNDS) from rejected
        self.ledger.record(events, self.market_types)
        return [event.update for event in events]

    def cancel(self, symbol: str, client_order_id: str, now_ms: int) -> list[OrderUpdate]:
        try:
            event = self.core.cancel(
                self.account, self.default_venue, symbol, now_ms, client_order_id=client_order_id
            )
        except UnknownOrder:
            return []
        self.ledger.record([event], self.market_types)
        return [event.update]

    def absorb(self, events: list[OrderEvent]) -> list[OrderUpdate]:
        """Record events the market's moves caused; return the updates for the engine."""
        self.ledger.record(events, self.market_types)
        return [event.update for event in events if event.order.account == self.account]
