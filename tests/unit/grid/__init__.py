"""Shared builders for the grid tests: the worked example's instrument and config, and a tiny
in-memory engine stand-in (:class:`Book`) that applies actions with the pure slot transitions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from opensqt.grid import Action, CancelOrder, GridConfig, PlaceOrder, Strategy
from opensqt.grid import slots as slot_ops
from opensqt.model import (
    Instrument,
    InventorySlot,
    MarketType,
    OrderStatus,
    PositionStatus,
    TradingStateKind,
)

D = Decimal

ETH = Instrument(
    venue="binance",
    symbol="ETHUSDT",
    market_type=MarketType.PERPETUAL,
    base="ETH",
    quote="USDT",
    tick_size=D("0.01"),
    step_size=D("0.001"),
    min_qty=D("0.001"),
    min_notional=D("5"),
)


def make_config(**overrides: Any) -> GridConfig:
    """The worked example's parameters (I 2, notional 30, windows 3/3, min value 6), overridable."""
    values: dict[str, Any] = {
        "price_interval": D("2"),
        "order_notional": D("30"),
        "buy_window": 3,
        "sell_window": 3,
        "max_open_orders": 10,
        "min_order_value": D("6"),
        "agent": "mm",
    }
    values.update(overrides)
    return GridConfig(**values)


WORKED_EXAMPLE_ANCHOR = D("3000")


def make_strategy(anchor: Decimal | None = WORKED_EXAMPLE_ANCHOR, **overrides: Any) -> Strategy:
    return Strategy(make_config(**overrides), ETH, anchor=anchor)


class Book:
    """Holds the slots like an engine would and applies actions to them."""

    def __init__(self, agent: str = "mm", symbol: str = "ETHUSDT") -> None:
        self.agent = agent
        self.symbol = symbol
        self.slots: dict[Decimal, InventorySlot] = {}
        self.version = 0
        self._exchange_ids = 0

    def _set(self, slot: InventorySlot) -> None:
        if self.slots.get(slot.slot_price) is not slot:
            self.slots[slot.slot_price] = slot
            self.version += 1

    def slot(self, price: str | Decimal) -> InventorySlot:
        return self.slots[D(price)]

    def put(self, slot: InventorySlot) -> None:
        self._set(slot)

    def place(self, action: PlaceOrder, *, acknowledge: bool = True) -> None:
        slot = self.slots.get(action.slot_price) or slot_ops.new_slot(
            self.agent, self.symbol, action.slot_price
        )
        slot = slot_ops.request_order(
            slot, side=action.side, price=action.price, qty=action.qty, client_order_id=action.client_order_id
        )
        if acknowledge:
            self._exchange_ids += 1
            slot = slot_ops.acknowledge_order(slot, action.client_order_id, f"ex{self._exchange_ids}")
        self._set(slot)

    def apply(self, actions: Iterable[Action], *, confirm_cancels: bool = True) -> None:
        for action in actions:
            if isinstance(action, PlaceOrder):
                self.place(action)
            elif confirm_cancels:
                self.confirm_cancel(action)

    def confirm_cancel(self, action: CancelOrder) -> None:
        slot = self.slots[action.slot_price]
        self._set(
            slot_ops.apply_order_update(
                slot, action.client_order_id, OrderStatus.CANCELED, slot.order_filled_qty
            )
        )

    def update(self, price: str | Decimal, status: OrderStatus, cumulative: str | Decimal) -> None:
        slot = self.slots[D(price)]
        self._set(slot_ops.apply_order_update(slot, slot.client_order_id, status, D(cumulative)))

    def fill(self, price: str | Decimal) -> None:
        slot = self.slots[D(price)]
        self.update(price, OrderStatus.FILLED, slot.order_qty)

    def holding(self, price: str | Decimal, qty: str) -> None:
        """Put a FREE slot holding ``qty`` (signed) at ``price`` directly."""
        slot = self.slots.get(D(price)) or slot_ops.new_slot(self.agent, self.symbol, D(price))
        status = PositionStatus.FILLED if D(qty) != 0 else PositionStatus.EMPTY
        self._set(replace(slot, position_qty=D(qty), position_status=status, version=slot.version + 1))

    def working(self) -> dict[Decimal, InventorySlot]:
        return {price: slot for price, slot in self.slots.items() if slot.has_order}


def step(
    strategy: Strategy,
    book: Book,
    price: str,
    *,
    now_ms: int = 0,
    state: TradingStateKind = TradingStateKind.ACTIVE,
    apply: bool = True,
) -> list[Action]:
    """One price tick: ask the strategy, then apply its actions to the book."""
    actions = strategy.on_price(D(price), book.slots, now_ms=now_ms, trading_state=state)
    if apply:
        book.apply(actions)
    return actions


def places(actions: Iterable[Action]) -> list[tuple[str, str, str, str]]:
    """Placements as (side, slot, price, qty) strings, for readable literal assertions."""
    return [
        (a.side.value, str(a.slot_price), str(a.price), str(a.qty))
        for a in actions
        if isinstance(a, PlaceOrder)
    ]


def cancels(actions: Iterable[Action]) -> list[tuple[str, str]]:
    """Cancels as (client order id, reason) pairs."""
    return [(a.client_order_id, a.reason.value) for a in actions if isinstance(a, CancelOrder)]
