"""SimpleEngine: one agent, in memory, in the caller's task, with SQLite checkpoints.

The engine feeds events to an agent adapter (:class:`GridAgent` for the grid market maker,
:class:`ArbitrageAgent` for the funding-rate arbitrage), which runs the pure strategy, applies
its slot or leg transitions and sends orders through a synchronous :class:`~.base.Venue` (the
matching core in a backtest). There are no locks and no background tasks: every handler runs to
completion in the task that calls it, so the state is always consistent between two calls.

Checkpoints (behaviour.md §6): the whole state (agent, engine, and an optional ``extra`` part
such as the simulated venue and the backtest's progress) is one checksummed snapshot in a
:class:`~.checkpoint.CheckpointStore`. :meth:`SimpleEngine.maybe_checkpoint` saves at most once
per ``min_checkpoint_interval_s`` of the injected clock, unless a risk action (a trading-state
change) happened since the last save, which is saved at once. A failed save changes nothing in
memory: the state stays dirty and the next call tries again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

from opensqt.arbitrage import Action as ArbitrageAction
from opensqt.arbitrage import (
    ArbitrageConfig,
    Decision,
    Done,
    EntryPlan,
    ExitPlan,
    Fill,
    Outcome,
    StepResult,
    StrategyState,
)
from opensqt.arbitrage import Strategy as ArbitrageStrategy
from opensqt.clock import Clock, SystemClock
from opensqt.engine.base import OrderRefused, Snapshottable, Venue
from opensqt.engine.checkpoint import CheckpointError, CheckpointStore
from opensqt.exchange.state import decode, encode
from opensqt.grid import CancelOrder, GridConfig, GridMode, PlaceOrder
from opensqt.grid import Strategy as GridStrategy
from opensqt.grid.config import opening_qty
from opensqt.grid.slots import apply_order_update, is_empty, new_slot, request_order
from opensqt.model.enums import LockStatus, OrderStatus, OrderType, Side, TradingStateKind
from opensqt.model.events import FundingUpdate, OrderUpdate, PositionUpdate, PriceChange, TradingState
from opensqt.model.instrument import Instrument
from opensqt.model.money import ZERO
from opensqt.model.resources import Order
from opensqt.model.state import InventorySlot
from opensqt.telemetry import get_logger

__all__ = ["Agent", "ArbitrageAgent", "GridAgent", "QuietBand", "SimpleEngine"]

log = get_logger(__name__)

_FOREVER_MS = 2**62
_MAX_PLAN_STEPS = 32
_BAND_STEPS = 8

QuietBand = tuple[Decimal, Decimal, int]
"""``(low, high, until_ms)``: prices strictly between low and high give no grid action before
``until_ms``, as long as no slot and no trading state changes."""


class Agent(Protocol):
    """What :class:`SimpleEngine` needs of an agent adapter."""

    kind: str

    def on_price(self, update: PriceChange, now_ms: int, venue: Venue) -> None: ...

    def on_order_update(self, update: OrderUpdate, now_ms: int) -> None: ...

    def on_funding(self, update: FundingUpdate, now_ms: int, venue: Venue) -> None: ...

    def on_position(self, update: PositionUpdate, now_ms: int, venue: Venue) -> None: ...

    def set_trading_state(self, state: TradingStateKind) -> None: ...

    def to_state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


class GridAgent:
    """The grid market maker on in-memory slots (behaviour.md §1, §2 "in-memory in backtests").

    Routes order updates to slots in O(1) by client order id, bumps ``slots_version`` on every
    slot change (so the strategy's quiet-zone fast path works), and after an evaluation that asked
    for nothing publishes :attr:`band`, the price interval in which the next evaluations would
    ask for nothing too, so a backtest can skip them.
    """

    kind = "market_maker"

    def __init__(self, config: GridConfig, instrument: Instrument, *, account: str = "") -> None:
        self.config = config
        self.instrument = instrument
        self.account = account
        self.strategy = GridStrategy(config, instrument)
        self.slots: dict[Decimal, InventorySlot] = {}
        self.slots_version = 0
        self.trading_state = TradingStateKind.ACTIVE
        self.band: QuietBand | None = None
        self.orders_sent = 0
        self.cancels_sent = 0
        self.refusals = 0
        self._by_client: dict[str, Decimal] = {}
        self._cancel_asked: set[str] = set()
        self._opening_qty: dict[Decimal, bool] = {}

    # -- events ---------------------------------------------------------------------------------

    def on_price(self, update: PriceChange, now_ms: int, venue: Venue) -> None:
        self.evaluate(update.price, now_ms, venue)

    def evaluate(self, price: Decimal, now_ms: int, venue: Venue) -> None:
        """Run the strategy at ``price`` and carry out its actions."""
        actions = self.strategy.on_price(
            price,
            self.slots,
            now_ms=now_ms,
            trading_state=self.trading_state,
            slots_version=self.slots_version,
        )
        if not actions:
            self.band = self._quiet_band(price, now_ms)
            return
        funds_refused = False
        for action in actions:
            if isinstance(action, CancelOrder):
                self._cancel(action, now_ms, venue)
            elif not funds_refused:
                # after a margin / insufficient-funds refusal nothing more is placed (behaviour.md §1)
                funds_refused = not self._place(action, now_ms, venue)

    def on_order_update(self, update: OrderUpdate, now_ms: int) -> None:
        order = update.order
        slot_price = self._by_client.get(order.client_order_id)
        if slot_price is None:
            return  # stale, duplicate or not ours
        slot = self.slots[slot_price]
        post_only_rejected = order.status is OrderStatus.EXPIRED and order.post_only and order.filled_qty == 0
        self._put(
            apply_order_update(
                slot,
                order.client_order_id,
                order.status,
                order.filled_qty,
                exchange_order_id=order.exchange_order_id,
                post_only_rejected=post_only_rejected,
            )
        )

    def on_funding(self, update: FundingUpdate, now_ms: int, venue: Venue) -> None:
        """The grid does not act on funding."""

    def on_position(self, update: PositionUpdate, now_ms: int, venue: Venue) -> None:
        """The grid's inventory lives on its slots; positions are for observability only."""

    def set_trading_state(self, state: TradingStateKind) -> None:
        if state is not self.trading_state:
            self.trading_state = state
            self.band = None

    # -- state ----------------------------------------------------------------------------------

    def position_qty(self) -> Decimal:
        """Net inventory over all slots (signed)."""
        return sum((slot.position_qty for slot in self.slots.values()), ZERO)

    def to_state(self) -> dict[str, Any]:
        return {
            "anchor": None if self.strategy.anchor is None else str(self.strategy.anchor),
            "margin_locked_until_ms": self.strategy.margin_locked_until_ms,
            "slots": [encode(slot) for slot in self.slots.values()],
            "slots_version": self.slots_version,
            "trading_state": self.trading_state.value,
            "orders_sent": self.orders_sent,
            "cancels_sent": self.cancels_sent,
            "refusals": self.refusals,
        }

    def restore(self, state: dict[str, Any]) -> None:
        anchor = state["anchor"]
        self.strategy = GridStrategy(
            self.config,
            self.instrument,
            anchor=None if anchor is None else Decimal(anchor),
            margin_locked_until_ms=state["margin_locked_until_ms"],
        )
        self.slots = {}
        self._by_client = {}
        self._cancel_asked = set()
        for item in state["slots"]:
            slot = decode(InventorySlot, item)
            self.slots[slot.slot_price] = slot
            if slot.client_order_id:
                self._by_client[slot.client_order_id] = slot.slot_price
        self.slots_version = state["slots_version"]
        self.trading_state = TradingStateKind(state["trading_state"])
        self.orders_sent = state["orders_sent"]
        self.cancels_sent = state["cancels_sent"]
        self.refusals = state["refusals"]
        self.band = None

    # -- internals ------------------------------------------------------------------------------

    def _put(self, slot: InventorySlot) -> None:
        old = self.slots.get(slot.slot_price)
        if old is slot:
            return
        if old is not None and old.client_order_id and old.client_order_id != slot.client_order_id:
            self._by_client.pop(old.client_order_id, None)
            self._cancel_asked.discard(old.client_order_id)
        if slot.client_order_id:
            self._by_client[slot.client_order_id] = slot.slot_price
        self.slots[slot.slot_price] = slot
        self.slots_version += 1
        self.band = None

    def _cancel(self, action: CancelOrder, now_ms: int, venue: Venue) -> None:
        self.cancels_sent += 1
        self._cancel_asked.add(action.client_order_id)
        updates = venue.cancel(self.instrument.symbol, action.client_order_id, now_ms)
        for update in updates:
            self.on_order_update(update, now_ms)
        slot = self.slots.get(action.slot_price)
        if not updates and slot is not None and slot.client_order_id == action.client_order_id:
            # The venue no longer has it: a cancel of an unknown order is final (behaviour.md §5).
            self._put(
                apply_order_update(slot, action.client_order_id, OrderStatus.CANCELED, slot.order_filled_qty)
            )

    def _place(self, action: PlaceOrder, now_ms: int, venue: Venue) -> bool:
        """Send one placement; False when the venue refused it for lack of funds."""
        instrument = self.instrument
        slot = self.slots.get(action.slot_price) or new_slot(
            self.config.agent, instrument.symbol, action.slot_price
        )
        cid = action.client_order_id
        self._put(
            request_order(slot, side=action.side, price=action.price, qty=action.qty, client_order_id=cid)
        )
        order = Order(
            symbol=instrument.symbol,
            side=action.side,
            order_type=OrderType.LIMIT,
            quantity=action.qty,
            price=action.price,
            client_order_id=cid,
            venue=instrument.venue,
            account=self.account,
            market_type=instrument.market_type,
            post_only=action.post_only,
            reduce_only=action.reduce_only,
            created_ms=now_ms,
        )
        self.orders_sent += 1
        try:
            updates = venue.place(order, now_ms)
        except OrderRefused as refused:
            self.refusals += 1
            pending = self.slots[action.slot_price]
            self._put(apply_order_update(pending, cid, OrderStatus.REJECTED, pending.order_filled_qty))
            if refused.insufficient_funds:
                self.strategy.on_margin_error(now_ms)
                self.band = None
                return False
            return True
        for update in updates:
            self.on_order_update(update, now_ms)
        return True

    def _quiet_band(self, price: Decimal, now_ms: int) -> QuietBand:
        """Where the strategy's last no-action answer provably holds (see grid.strategy).

        The strategy's answer depends on the price only through the grid centre G, whether the
        price is beyond G's 0.1·I buffer, and which filled slots are inside the close window
        (``slot ∓ sell_window·I``). Conservatively, the band is the open interval around
        ``price`` in which none of these changes. For a long grid that is ACTIVE, unlocked and
        has no cancel in flight, it reaches further: across buffers and centres as long as every
        level that would become an opening candidate is already taken (or the order budget is
        spent) and no working buy would fall out of the trailing reach. A band is never wider
        than the truth; the backtest's verify mode checks it against the strategy.
        """
        locked_until = self.strategy.margin_locked_until_ms
        locked = now_ms < locked_until
        cancel_in_flight = any(cid in self._by_client for cid in self._cancel_asked)
        if (
            self.config.mode is GridMode.LONG
            and self.trading_state is TradingStateKind.ACTIVE
            and not locked
            and not cancel_in_flight
        ):
            low, high = self._long_band(price)
        else:
            low, high = self._centre_band(price)
        low, high = self._clip_to_close_windows(price, low, high)
        until = locked_until if locked else _FOREVER_MS
        if cancel_in_flight:  # the strategy asks again after cancel_retry_ms
            until = min(until, now_ms + self.config.cancel_retry_ms)
        return low, high, until

    def _centre_band(self, price: Decimal) -> tuple[Decimal, Decimal]:
        interval = self.config.price_interval
        buffer = interval / 10
        half = interval / 2
        centre = self.strategy.centre(price)
        if price > centre + buffer:
            return centre + buffer, centre + half
        if price < centre - buffer:
            return centre - half, centre - buffer
        return centre - buffer, centre + buffer

    def _clip_to_close_windows(self, price: Decimal, low: Decimal, high: Decimal) -> tuple[Decimal, Decimal]:
        reach = self.config.sell_window * self.config.price_interval
        for slot in self.slots.values():
            qty = slot.position_qty
            if qty == 0 or slot.order_side is not None or slot.lock_status is not LockStatus.FREE:
                continue
            threshold = slot.slot_price - reach if qty > 0 else slot.slot_price + reach
            if price >= threshold if qty > 0 else price > threshold:
                low = max(low, threshold)
            else:
                high = min(high, threshold)
        return low, high

    def _long_band(self, price: Decimal) -> tuple[Decimal, Decimal]:
        config = self.config
        interval = config.price_interval
        buffer = interval / 10
        half = interval / 2
        window = config.buy_window
        centre = self.strategy.centre(price)
        slots = self.slots
        working_buys = [s.order_price for s in slots.values() if s.order_side is Side.BUY]
        budget = config.max_open_orders - sum(1 for s in slots.values() if s.order_side is not None)
        # a working buy below G - (buy_window + hysteresis)·I is cancelled: G may rise to g_max
        g_max = min(working_buys) + (window + config.trail_hysteresis) * interval if working_buys else None

        def taken(level: Decimal) -> bool:
            if budget <= 0 or level <= 0:
                return True
            slot = slots.get(level)
            if slot is not None and (
                slot.order_side is not None or slot.lock_status is not LockStatus.FREE or not is_empty(slot)
            ):
                return True
            partner = slots.get(level + interval)
            return (partner is not None and partner.position_qty < 0) or not self._opens(level)

        # upwards: centre G' = centre, centre + I, ...; below its buffer the candidates are
        # G' - k·I (k = 1 .. window-1), above it G' as well
        high = centre + half
        level_centre = centre
        for _ in range(_BAND_STEPS):
            if g_max is not None and level_centre > g_max:
                high = level_centre - half
                break
            if not all(taken(level_centre - k * interval) for k in range(1, window)):
                high = level_centre - half
                break
            if not taken(level_centre):
                high = level_centre + buffer
                break
            high = level_centre + half
            level_centre += interval
        # downwards: each lower centre adds one candidate at the bottom of the window
        low = centre - half
        level_centre = centre - interval
        for _ in range(_BAND_STEPS):
            if not taken(level_centre - (window - 1) * interval):
                break
            low = level_centre - half
            level_centre -= interval
        return low, high

    def _opens(self, level: Decimal) -> bool:
        """Whether an opening BUY at ``level`` and its close would both be tradable."""
        cached = self._opening_qty.get(level)
        if cached is None:
            instrument = self.instrument
            qty = opening_qty(self.config.order_notional, level, instrument.step_size)
            cached = self._opening_qty[level] = self._tradable(level, qty) and self._tradable(
                level + self.config.price_interval, qty
            )
        return cached

    def _tradable(self, price: Decimal, qty: Decimal) -> bool:
        instrument = self.instrument
        if price <= 0 or qty <= 0 or qty < instrument.min_qty:
            return False
        value = price * qty
        return value >= instrument.min_notional and value >= self.config.min_order_value


class ArbitrageAgent:
    """The funding-rate arbitrage: runs its plans at once through the venue's MARKET orders.

    Each plan is driven step by step (:meth:`EntryPlan.next_step`) with the venue's synchronous
    answers, and its :class:`~opensqt.arbitrage.Done` goes back to the strategy.
    """

    kind = "arbitrage_bot"

    def __init__(self, config: ArbitrageConfig, *, account: str = "") -> None:
        self.config = config
        self.account = account
        self.strategy = ArbitrageStrategy(config)
        self.decisions: dict[str, int] = {}
        self.last_reason = ""

    def on_price(self, update: PriceChange, now_ms: int, venue: Venue) -> None:
        self._act(self.strategy.on_price(update, now_ms), now_ms, venue)

    def on_order_update(self, update: OrderUpdate, now_ms: int) -> None:
        """Plans run synchronously; their orders' updates arrive as the venue's answers."""

    def on_funding(self, update: FundingUpdate, now_ms: int, venue: Venue) -> None:
        self._act(self.strategy.on_funding(update, now_ms), now_ms, venue)

    def on_position(self, update: PositionUpdate, now_ms: int, venue: Venue) -> None:
        self._act(self.strategy.on_position(update, now_ms), now_ms, venue)

    def set_trading_state(self, state: TradingStateKind) -> None:
        """The arbitrage strategy has no trading-state rule of its own."""

    def to_state(self) -> dict[str, Any]:
        return {"strategy": encode(self.strategy.state), "decisions": dict(self.decisions)}

    def restore(self, state: dict[str, Any]) -> None:
        self.strategy = ArbitrageStrategy(self.config, decode(StrategyState, state["strategy"]))
        self.decisions = dict(state["decisions"])

    def _act(self, decision: Decision, now_ms: int, venue: Venue) -> None:
        while True:
            if decision.action is not ArbitrageAction.IGNORE:
                self.decisions[decision.action.value] = self.decisions.get(decision.action.value, 0) + 1
            plan = decision.plan
            if plan is None:
                return
            self.last_reason = decision.reason
            decision = self.strategy.on_execution_result(self._execute(plan, now_ms, venue), now_ms)

    def _execute(self, plan: EntryPlan | ExitPlan, now_ms: int, venue: Venue) -> Done:
        """Run ``plan`` at ``now_ms``. A plan that has not finished after ``_MAX_PLAN_STEPS``
        orders (an exit whose orders the venue keeps refusing) ends FAILED with the fills it
        made, as the live agent's does when a step fails: the strategy applies them, checks the
        hedge, and an exit goes on at a later event (the live agent waits between attempts; at
        one instant of a backtest every attempt would meet the same refusal)."""
        results: list[StepResult] = []
        fills: list[Fill] = []
        for _ in range(_MAX_PLAN_STEPS):
            step = plan.next_step(results)
            if isinstance(step, Done):
                return step
            order = replace(step.to_order(), account=self.account, created_ms=now_ms)
            try:
                updates = venue.place(order, now_ms)
            except OrderRefused as refused:
                results.append(StepResult(step.client_order_id, ZERO, error=str(refused), time_ms=now_ms))
                continue
            final = updates[-1].order if updates else order
            results.append(
                StepResult(step.client_order_id, final.filled_qty, final.average_price, time_ms=now_ms)
            )
            if final.filled_qty > 0:
                fills.append(
                    Fill(step.venue, step.symbol, step.side, final.filled_qty, final.average_price, now_ms)
                )
        last = results[-1].error if results else ""
        log.warning("plan_unfinished", workflow=plan.workflow_id, orders=len(results), last_error=last)
        return Done(
            plan.sequence_id,
            Outcome.FAILED,
            f"not finished after {len(results)} orders at one instant (last: {last or 'no error'}); "
            "legs follow the fills made",
            tuple(fills),
        )


class SimpleEngine:
    """One agent, in memory, in one task, with rate-limited checksummed checkpoints.

    Args:
        agent: the agent adapter.
        venue: where orders go.
        store: the checkpoint store; ``None`` for no checkpoints.
        clock: wall time for the save rate limit (never used for trading decisions).
        run_id: identifies the run; a checkpoint of another run is refused.
        extra: state saved and restored with the agent (e.g. the simulated venue).
        min_checkpoint_interval_s: at most one save per this many seconds, unless a risk
            action happened.
    """

    def __init__(
        self,
        agent: GridAgent | ArbitrageAgent,
        venue: Venue,
        *,
        store: CheckpointStore | None = None,
        clock: Clock | None = None,
        run_id: str = "",
        extra: Snapshottable | None = None,
        min_checkpoint_interval_s: float = 0.5,
    ) -> None:
        self.agent = agent
        self.venue = venue
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.run_id = run_id
        # ids the same run had under earlier code (a checkpoint of one resumes; saves use run_id)
        self.earlier_run_ids: frozenset[str] = frozenset()
        self.extra = extra
        self.min_checkpoint_interval_s = min_checkpoint_interval_s
        self.now_ms = 0
        self.trading_state = TradingState(TradingStateKind.ACTIVE, reason="initial")
        self.saves = 0
        self.failed_saves = 0
        self._dirty = False
        self._risk_unsaved = False
        self._last_save: float | None = None
        self.on_checkpoint_error: Callable[[CheckpointError], None] | None = None

    # -- synchronous handlers (the backtester calls these directly) ------------------------------

    def handle_price(self, update: PriceChange) -> None:
        now_ms = self._advance(update.exchange_ms or update.received_ms)
        self.agent.on_price(update, now_ms, self.venue)
        self._dirty = True

    def handle_order_update(self, update: OrderUpdate) -> None:
        now_ms = self._advance(update.order.updated_ms)
        self.agent.on_order_update(update, now_ms)
        self._dirty = True

    def handle_funding(self, update: FundingUpdate) -> None:
        now_ms = self._advance(update.funding.time_ms)
        self.agent.on_funding(update, now_ms, self.venue)
        self._dirty = True

    def handle_position(self, update: PositionUpdate) -> None:
        now_ms = self._advance(update.position.updated_ms)
        self.agent.on_position(update, now_ms, self.venue)
        self._dirty = True

    def set_trading_state(self, state: TradingState) -> None:
        """A risk action: follow the new trading state and checkpoint without waiting."""
        if state.state is self.trading_state.state and state.version <= self.trading_state.version:
            return
        self._advance(state.updated_ms)
        self.trading_state = state
        self.agent.set_trading_state(state.state)
        self._dirty = True
        self._risk_unsaved = True
        self.maybe_checkpoint()

    def touch(self) -> None:
        """Mark the state as changed (e.g. the ``extra`` part moved on)."""
        self._dirty = True

    # -- Engine protocol ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.load_checkpoint()

    async def stop(self) -> None:
        if self.store is not None and self._dirty:
            self.checkpoint()

    async def on_price_update(self, update: PriceChange) -> None:
        self.handle_price(update)
        self.maybe_checkpoint()

    async def on_order_update(self, update: OrderUpdate) -> None:
        self.handle_order_update(update)
        self.maybe_checkpoint()

    async def on_funding_update(self, update: FundingUpdate) -> None:
        self.handle_funding(update)
        self.maybe_checkpoint()

    async def on_position_update(self, update: PositionUpdate) -> None:
        self.handle_position(update)
        self.maybe_checkpoint()

    # -- checkpoints ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON data."""
        return {
            "run_id": self.run_id,
            "kind": self.agent.kind,
            "now_ms": self.now_ms,
            "trading_state": encode(self.trading_state),
            "agent": self.agent.to_state(),
            "extra": None if self.extra is None else self.extra.to_state(),
        }

    def checkpoint(self) -> None:
        """Save now.

        Raises:
            CheckpointError: the save failed; nothing in memory changed.
        """
        if self.store is None:
            raise CheckpointError("this engine has no checkpoint store")
        self.store.save(self.snapshot())
        self._last_save = self.clock.monotonic()
        self._dirty = False
        self._risk_unsaved = False
        self.saves += 1

    def maybe_checkpoint(self) -> bool:
        """Save if the state changed and the rate limit (or a pending risk action) allows.

        A failed save is logged and counted, leaves everything in memory as it was, and is
        retried by a later call. Returns True when a snapshot was written.
        """
        if self.store is None or not self._dirty:
            return False
        if (
            not self._risk_unsaved
            and self._last_save is not None
            and self.clock.monotonic() - self._last_save < self.min_checkpoint_interval_s
        ):
            return False
        try:
            self.checkpoint()
        except CheckpointError as error:
            self.failed_saves += 1
            log.warning("checkpoint_failed", error=str(error), failed_saves=self.failed_saves)
            if self.on_checkpoint_error is not None:
                self.on_checkpoint_error(error)
            return False
        return True

    def load_checkpoint(self) -> bool:
        """Restore the stored snapshot, if any. Returns True when one was loaded.

        Raises:
            CheckpointCorrupted: the stored snapshot fails its checksum (nothing is loaded).
            CheckpointError: the snapshot belongs to another run or another kind of agent.
        """
        if self.store is None:
            return False
        state = self.store.load()
        if state is None:
            return False
        known = state.get("run_id") == self.run_id or state.get("run_id") in self.earlier_run_ids
        if not known or state.get("kind") != self.agent.kind:
            raise CheckpointError(
                f"checkpoint {self.store.path} is of run {state.get('run_id')!r} ({state.get('kind')}), "
                f"not of this run {self.run_id!r} ({self.agent.kind}); refusing to resume from it"
            )
        self.agent.restore(state["agent"])
        if self.extra is not None:
            self.extra.restore(state["extra"])
        self.now_ms = state["now_ms"]
        self.trading_state = decode(TradingState, state["trading_state"])
        self._dirty = False
        self._risk_unsaved = False
        self._last_save = self.clock.monotonic()
        return True

    def _advance(self, event_ms: int) -> int:
        if event_ms > self.now_ms:
            self.now_ms = event_ms
        elif event_ms == 0 and self.now_ms == 0:
            self.now_ms = self.clock.now_ms()
        return self.now_ms
