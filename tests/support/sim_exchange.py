"""A venue for unit tests of execution logic: the real matching core behind the exchange port,
with faults injected around its calls (raise before, or accept then raise: an ambiguous submit)."""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from opensqt.errors import DuplicateOrder, ExchangeError, InsufficientFunds, InvalidOrder, OrderNotFound
from opensqt.exchange.matching import MatchingCore
from opensqt.exchange.orders import OrderRejected, OrderRequest, RejectReason, UnknownOrder
from opensqt.exchange.port import VenueCapabilities
from opensqt.model import Instrument, MarketType, Order

VENUE, ACCOUNT = "sim", "main"
BTC = Instrument(
    VENUE,
    "BTCUSDT",
    MarketType.PERPETUAL,
    "BTC",
    "USDT",
    Decimal("0.1"),
    Decimal("0.001"),
    Decimal("0.001"),
    Decimal("5"),
    8,
)
ETH = Instrument(VENUE, "ETHUSDT", MarketType.PERPETUAL, "ETH", "USDT", Decimal("0.01"), Decimal("0.001"),
                 Decimal("0.001"), Decimal("5"), 8)  # fmt: skip


@dataclass
class Fault:
    """``after=True``: the call happens at the venue, then the error is raised (ambiguous).
    ``late=True`` (a submit): the error is raised at once, and the request reaches the venue
    only when :meth:`SimExchange.land` says so (a connection dropped mid-request)."""

    error: ExchangeError | None  # None: this call goes through untouched
    after: bool = False
    late: bool = False


@dataclass
class SimExchange:
    core: MatchingCore = field(default_factory=MatchingCore)
    faults: deque[Fault] = field(default_factory=deque)
    create_calls: int = 0
    accepted: list[str] = field(default_factory=list)
    now_ms: int = 1_700_000_000_000
    venue: str = VENUE
    capabilities: VenueCapabilities = field(default_factory=VenueCapabilities)
    in_flight: list[Order] = field(default_factory=list)  # late submits, not at the venue yet

    def __post_init__(self) -> None:
        self.core.add_market(BTC)
        self.core.add_market(ETH)
        self.core.open_account(ACCOUNT, {"USDT": Decimal(100_000)})
        self.core.on_trade(VENUE, BTC.symbol, Decimal(60_000), self.now_ms)
        self.core.on_trade(VENUE, ETH.symbol, Decimal(3_000), self.now_ms)

    def _fault(self) -> Fault | None:
        fault = self.faults.popleft() if self.faults else None
        return fault if fault is not None and fault.error is not None else None

    async def create_order(self, order: Order) -> Order:
        self.create_calls += 1
        fault = self._fault()
        if fault and fault.late:
            self.in_flight.append(order)
            raise fault.error
        if fault and not fault.after:
            raise fault.error
        return self._accept(order, fault)

    def land(self) -> None:
        """The late submits reach the venue now (each accepted or refused as a submit is)."""
        landing, self.in_flight = self.in_flight, []
        for order in landing:
            with contextlib.suppress(DuplicateOrder, InsufficientFunds, InvalidOrder):
                self._accept(order, None)

    def _accept(self, order: Order, fault: Fault | None) -> Order:
        try:
            self.core.submit(OrderRequest.from_order(order, account=ACCOUNT, venue=VENUE), self.now_ms)
        except OrderRejected as exc:
            if exc.reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID:
                raise DuplicateOrder(str(exc)) from exc
            if exc.reason in (RejectReason.INSUFFICIENT_BALANCE, RejectReason.INSUFFICIENT_MARGIN):
                raise InsufficientFunds(str(exc)) from exc
            raise InvalidOrder(str(exc)) from exc
        self.accepted.append(order.client_order_id)
        if fault and fault.error:
            raise fault.error
        placed = self.core.get_order(ACCOUNT, order.client_order_id)
        assert placed is not None
        return placed

    async def fetch_order(
        self, symbol: str, *, client_order_id: str = "", exchange_order_id: str = ""
    ) -> Order:
        fault = self._fault()
        if fault:
            raise fault.error
        order = self.core.get_order(ACCOUNT, client_order_id)
        if order is None:
            raise OrderNotFound(f"no order {client_order_id}")
        return order

    async def cancel_order(
        self, symbol: str, *, client_order_id: str = "", exchange_order_id: str = ""
    ) -> Order:
        fault = self._fault()
        if fault:
            raise fault.error
        try:
            event = self.core.cancel(ACCOUNT, VENUE, symbol, self.now_ms, client_order_id=client_order_id)
        except UnknownOrder as exc:
            raise OrderNotFound(str(exc)) from exc
        return event.order

    async def fetch_open_orders(self, symbol: str = "") -> list[Order]:
        return self.core.open_orders(ACCOUNT, VENUE, symbol)
