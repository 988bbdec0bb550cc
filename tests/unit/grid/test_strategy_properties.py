"""Invariants over random price paths with a simulated exchange.

The exchange fills a resting BUY when the price is at or below it and a SELL when the price is at
or above it; a non-post-only order that is marketable when placed fills at once. Random events
add partial fills, post-only rejections, margin errors, slow cancels and trading-state changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opensqt.grid import CancelOrder, GridMode, PlaceOrder, Strategy
from opensqt.grid import slots as slot_ops
from opensqt.model import InventorySlot, LockStatus, OrderStatus, Side, TradingStateKind
from tests.unit.grid import ETH, D, make_config

EVENTS = ("none", "none", "none", "partial", "reject", "margin", "slow_cancel", "state")
STATES = (
    TradingStateKind.ACTIVE,
    TradingStateKind.ACTIVE,
    TradingStateKind.REDUCING,
    TradingStateKind.HALTED,
)


@dataclass(frozen=True)
class Scenario:
    mode: GridMode
    buy_window: int
    sell_window: int
    max_open_orders: int
    trail_hysteresis: int
    post_only_max_rejects: int
    order_notional: Decimal
    moves: list[tuple[int, str, int]]


scenarios = st.builds(
    Scenario,
    mode=st.sampled_from(list(GridMode)),
    buy_window=st.integers(1, 5),
    sell_window=st.integers(1, 4),
    max_open_orders=st.integers(1, 10),
    trail_hysteresis=st.integers(0, 2),
    post_only_max_rejects=st.integers(0, 3),
    order_notional=st.sampled_from([D("20"), D("30"), D("100")]),
    moves=st.lists(
        st.tuples(st.integers(-450, 450), st.sampled_from(EVENTS), st.integers(0, len(STATES) - 1)),
        min_size=10,
        max_size=80,
    ),
)


class Exchange:
    """Slots plus a matching stand-in; tracks what the exchange executed."""

    def __init__(self) -> None:
        self.slots: dict[Decimal, InventorySlot] = {}
        self.version = 0
        self.net = D("0")  # executed buys minus executed sells
        self.ids = 0

    def set(self, slot: InventorySlot) -> None:
        if self.slots.get(slot.slot_price) is not slot:
            self.slots[slot.slot_price] = slot
            self.version += 1

    def execute(self, slot: InventorySlot, status: OrderStatus, cumulative: Decimal) -> None:
        delta = cumulative - slot.order_filled_qty
        if delta > 0:
            self.net += delta if slot.order_side is Side.BUY else -delta
        self.set(slot_ops.apply_order_update(slot, slot.client_order_id, status, cumulative))

    def match(self, price: Decimal) -> None:
        for slot in list(self.slots.values()):
            if slot.lock_status is not LockStatus.LOCKED or slot.order_side is None:
                continue
            crosses = slot.order_price >= price if slot.order_side is Side.BUY else slot.order_price <= price
            if crosses:
                self.execute(slot, OrderStatus.FILLED, slot.order_qty)

    def partial(self) -> None:
        for slot in sorted(self.slots.values(), key=lambda s: s.slot_price):
            if slot.lock_status is LockStatus.LOCKED and slot.order_side is not None:
                half = ETH.round_qty(slot.order_qty / 2)
                if half > slot.order_filled_qty:
                    self.execute(slot, OrderStatus.PARTIALLY_FILLED, half)
                    return


def check_placement(action: PlaceOrder, price: Decimal, strategy: Strategy) -> None:
    ETH.check_order(action.price, action.qty)
    assert action.price * action.qty >= strategy.config.min_order_value
    if action.post_only:
        # a post-only order that would cross would be rejected: never send one
        assert action.price < price if action.side is Side.BUY else action.price > price
    parts = strategy.codec.decode(action.client_order_id)
    assert (parts.slot_price, parts.side, parts.symbol, parts.agent) == (
        action.slot_price,
        action.side,
        "ETHUSDT",
        "mm",
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios)
def test_grid_invariants_hold_on_random_paths(scenario: Scenario) -> None:
    config = make_config(
        mode=scenario.mode,
        buy_window=scenario.buy_window,
        sell_window=scenario.sell_window,
        max_open_orders=scenario.max_open_orders,
        trail_hysteresis=scenario.trail_hysteresis,
        post_only_max_rejects=scenario.post_only_max_rejects,
        order_notional=scenario.order_notional,
        margin_lock_ms=1_000,
        cancel_retry_ms=300,
    )
    strategy = Strategy(config, ETH)
    twin = Strategy(config, ETH)  # same decisions without the slots_version fast path
    exchange = Exchange()
    price = D("3000.00")
    state = TradingStateKind.ACTIVE
    seen_ids: set[str] = set()

    reasons: set[str] = set()
    unconfirmed: set[str] = set()  # cancels asked for and not yet confirmed by the exchange
    for index, (move, event_kind, state_index) in enumerate(scenario.moves):
        now_ms = index * 100
        price = max(D("100.00"), price + move * ETH.tick_size)
        exchange.match(price)
        if event_kind == "partial":
            exchange.partial()
        elif event_kind == "margin":
            strategy.on_margin_error(now_ms)
            twin.on_margin_error(now_ms)
        elif event_kind == "state":
            state = STATES[state_index]
        margin_locked = now_ms < strategy.margin_locked_until_ms

        actions = strategy.on_price(
            price, exchange.slots, now_ms=now_ms, trading_state=state, slots_version=exchange.version
        )
        assert actions == twin.on_price(price, exchange.slots, now_ms=now_ms, trading_state=state)

        reasons.update(a.reason.value for a in actions if isinstance(a, CancelOrder))
        reasons.update("close" for a in actions if isinstance(a, PlaceOrder) and a.price != a.slot_price)
        touched = [action.slot_price for action in actions]
        assert len(touched) == len(set(touched)), "two actions for one slot"
        for action in actions:
            if isinstance(action, CancelOrder):
                slot = exchange.slots[action.slot_price]
                assert slot.client_order_id == action.client_order_id
                assert slot.lock_status is LockStatus.LOCKED
                if event_kind == "slow_cancel":
                    unconfirmed.add(action.client_order_id)
                else:
                    exchange.set(
                        slot_ops.apply_order_update(
                            slot, action.client_order_id, OrderStatus.CANCELED, slot.order_filled_qty
                        )
                    )
                continue
            assert state is not TradingStateKind.HALTED
            assert not margin_locked
            if state is TradingStateKind.REDUCING:
                assert action.reduce_only
            check_placement(action, price, strategy)
            assert action.client_order_id not in seen_ids, "client order id reused"
            seen_ids.add(action.client_order_id)
            slot = exchange.slots.get(action.slot_price) or slot_ops.new_slot(
                "mm", "ETHUSDT", action.slot_price
            )
            slot = slot_ops.request_order(
                slot,
                side=action.side,
                price=action.price,
                qty=action.qty,
                client_order_id=action.client_order_id,
            )
            if event_kind == "reject" and action.post_only:
                exchange.set(slot_ops.record_post_only_reject(slot, action.client_order_id))
                continue
            exchange.ids += 1
            exchange.set(slot_ops.acknowledge_order(slot, action.client_order_id, f"ex{exchange.ids}"))
        exchange.match(price)  # marketable closes fill at once

        working = [slot for slot in exchange.slots.values() if slot.has_order]
        assert len(working) <= config.max_open_orders
        buys = [slot.order_price for slot in working if slot.order_side is Side.BUY]
        sells = [slot.order_price for slot in working if slot.order_side is Side.SELL]
        if buys and sells:
            assert max(buys) < min(sells)
        assert len(set(buys)) == len(buys), "two buys at one price"
        assert len(set(sells)) == len(sells), "two sells at one price"
        assert sum((slot.position_qty for slot in exchange.slots.values()), D("0")) == exchange.net
        for key, slot in exchange.slots.items():
            assert key == slot.slot_price
            assert (slot.position_qty == 0) == slot_ops.is_empty(slot)
            if scenario.mode is GridMode.LONG:
                assert slot.position_qty >= 0
        # REDUCING / HALTED: what may still work is closes (REDUCING) and orders whose cancel
        # was asked for and is not confirmed yet (it is retried, not re-sent at every tick)
        if state is not TradingStateKind.ACTIVE:
            lingering = [
                slot
                for slot in working
                if slot.client_order_id not in unconfirmed
                and (state is TradingStateKind.HALTED or not slot_ops.is_closing_order(slot))
            ]
            assert lingering == []
    for reason in sorted(reasons):
        event(f"saw {reason}")


@settings(max_examples=100, deadline=None)
@given(
    moves=st.lists(st.integers(-300, 300), min_size=1, max_size=80),
    mode=st.sampled_from(list(GridMode)),
)
def test_working_buys_never_lag_more_than_window_plus_hysteresis_below_centre(
    moves: list[int], mode: GridMode
) -> None:
    """Price wanders (no fills): after each tick every working BUY is inside the trailing band."""
    config = make_config(mode=mode, buy_window=3, trail_hysteresis=1, max_open_orders=50)
    strategy = Strategy(config, ETH, anchor=D("3000.00"))
    exchange = Exchange()
    price = D("3000.00")
    for index, move in enumerate(moves):
        price += move * ETH.tick_size
        for action in strategy.on_price(price, exchange.slots, now_ms=index):
            if isinstance(action, PlaceOrder):
                slot = exchange.slots.get(action.slot_price) or slot_ops.new_slot(
                    "mm", "ETHUSDT", action.slot_price
                )
                slot = slot_ops.request_order(
                    slot,
                    side=action.side,
                    price=action.price,
                    qty=action.qty,
                    client_order_id=action.client_order_id,
                )
                exchange.set(slot_ops.acknowledge_order(slot, action.client_order_id, "x"))
            else:
                slot = exchange.slots[action.slot_price]
                exchange.set(
                    slot_ops.apply_order_update(slot, slot.client_order_id, OrderStatus.CANCELED, D(0))
                )
        centre = strategy.centre(price)
        for slot in exchange.slots.values():
            if slot.order_side is Side.BUY:
                levels_below = (centre - slot.order_price) / config.price_interval
                assert levels_below <= config.buy_window + config.trail_hysteresis
