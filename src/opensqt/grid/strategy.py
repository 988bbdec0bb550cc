"""The trailing grid market maker (behaviour.md §1): pure and deterministic.

:class:`Strategy` turns a price and the current slots into :data:`Action` values; the engine
sends them and applies the slot transitions of :mod:`opensqt.grid.slots`. Time is an argument,
never read from a clock, and nothing here performs I/O.

Slot keys. A slot is keyed by the price of the order that opens its inventory:

* long inventory (both modes): the BUY price, as §1 requires; the close is a SELL at key + I,
  tracked on the same slot;
* short inventory (neutral mode): the SELL price; the close is a BUY at key - I, tracked on the
  same slot.

So every grid level is one slot whose opening side follows the price (BUY below, SELL above) and
whose inventory sign says which close it needs; a level never wants two opening orders at once.

Choices where §1 is silent:

* Budget: closes and opening orders share ``max_open_orders``; closes are served first, since a
  filled slot without its close is unmanaged inventory. Cancels in flight still count.
* Opening orders must be tradable both ways: the order and its future close must each meet
  min qty, min notional and ``min_order_value``, so no opening order can strand dust.
* Closes are limit orders without post-only (a close that has become marketable takes profit at
  once). Long-mode closes are reduce-only. Neutral-mode closes are not while ACTIVE: a one-way
  account nets every slot into one position, where a reduce-only close is refused whenever the
  net is on the other side.
* Neutral mode: ``buy_window`` is the opening window on both sides (SELLs at G + k*I above the
  price buffer) and ``sell_window`` the close window on both sides (a short slot gets its close
  when ``slot >= P - sell_window*I``); trailing cancels opening SELLs more than
  ``buy_window + trail_hysteresis`` levels above G.
* One order per price and side: no opening order where another slot's close belongs (the short
  keyed one level up, the long one level down), and an opening order already resting where a
  close must go is cancelled (``SUPERSEDED``) and the close follows. Without this a neutral grid
  would trade two units at such a level.
* REDUCING: every working opening order is cancelled (both sides in neutral mode); only closes
  that shrink the agent's net position are placed, reduce-only, up to that net. A neutral close
  sent without reduce-only while ACTIVE stays only where it shrinks the net and fits in what the
  reduce-only closes leave of it (nearest first); the others are cancelled, since a fill could
  grow the position or take it past flat.
* Cancels go to acknowledged (LOCKED) orders only; a PENDING order is cancelled once acknowledged.
  A cancel is asked once and again every ``cancel_retry_ms`` until its order leaves the slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import TypeAlias

from opensqt.grid.client_ids import ClientOrderIdCodec
from opensqt.grid.config import GridConfig, GridConfigError, GridMode, opening_qty
from opensqt.grid.slots import is_empty
from opensqt.model.enums import LockStatus, Side, TradingStateKind
from opensqt.model.instrument import Instrument
from opensqt.model.money import ZERO
from opensqt.model.state import InventorySlot

__all__ = ["Action", "CancelOrder", "CancelReason", "PlaceOrder", "Strategy"]


class CancelReason(StrEnum):
    """Why the strategy asks for a cancel."""

    TRAILING = "TRAILING"
    REDUCING = "REDUCING"
    HALTED = "HALTED"
    MARGIN_LOCK = "MARGIN_LOCK"
    SUPERSEDED = "SUPERSEDED"
    """An opening order makes way for a close at the same price and side (neutral mode)."""


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place a limit order for the slot keyed ``slot_price``.

    Before sending, the engine moves the slot FREE → PENDING with
    :func:`opensqt.grid.slots.request_order` (creating the slot with
    :func:`opensqt.grid.slots.new_slot` when the mapping has none).
    """

    slot_price: Decimal
    side: Side
    price: Decimal
    qty: Decimal
    post_only: bool
    reduce_only: bool
    client_order_id: str


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel the working order ``client_order_id`` of the slot keyed ``slot_price``."""

    slot_price: Decimal
    client_order_id: str
    reason: CancelReason


Action: TypeAlias = PlaceOrder | CancelOrder


@dataclass(frozen=True, slots=True)
class _QuietZone:
    """Where an evaluation produced no action: prices with the same centre and buffer flags whose
    close-window membership is unchanged, until ``valid_until_ms`` (the next cancel retry)."""

    valid_until_ms: int | None
    long_close_min: Decimal | None  # holds while price >= this
    long_close_max: Decimal | None  # holds while price < this
    short_close_min: Decimal | None  # holds while price > this
    short_close_max: Decimal | None  # holds while price <= this

    def holds(self, price: Decimal, now_ms: int) -> bool:
        return (
            (self.valid_until_ms is None or now_ms < self.valid_until_ms)
            and (self.long_close_min is None or price >= self.long_close_min)
            and (self.long_close_max is None or price < self.long_close_max)
            and (self.short_close_min is None or price > self.short_close_min)
            and (self.short_close_max is None or price <= self.short_close_max)
        )


# (centre, centre below the buy buffer, centre above the sell buffer)
_ZoneKey: TypeAlias = tuple[Decimal, bool, bool]
# (slots_version, trading_state, margin_locked): quiet zones are valid only under one stamp
_Stamp: TypeAlias = tuple[int, TradingStateKind, bool]
_MAX_QUIET_ZONES = 64

_Bounds: TypeAlias = tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]


@dataclass(frozen=True, slots=True)
class _Close:
    distance: Decimal
    slot: InventorySlot
    side: Side
    price: Decimal
    qty: Decimal


class _Cancels:
    """The cancels of one evaluation.

    Each order is asked once, then again every ``retry_ms`` while it is still on its slot; the
    record of a request is kept as long as the order is working, so price wobble never re-asks.
    """

    __slots__ = ("actions", "asked", "now_ms", "previous", "requested", "retry_at", "retry_ms")

    def __init__(self, previous: dict[str, int], now_ms: int, retry_ms: int) -> None:
        self.previous = previous
        self.now_ms = now_ms
        self.retry_ms = retry_ms
        self.requested: dict[str, int] = {}
        self.asked: set[str] = set()
        self.actions: list[Action] = []
        self.retry_at: int | None = None

    def keep(self, client_order_id: str) -> None:
        """The order is still working: remember whether it was already asked to cancel."""
        last = self.previous.get(client_order_id)
        if last is not None:
            self.requested[client_order_id] = last

    def request(self, slot: InventorySlot, reason: CancelReason) -> None:
        client_order_id = slot.client_order_id
        if client_order_id in self.asked:
            return
        self.asked.add(client_order_id)
        last = self.previous.get(client_order_id)
        if last is None or self.now_ms - last >= self.retry_ms:
            self.actions.append(CancelOrder(slot.slot_price, client_order_id, reason))
            last = self.now_ms
        self.requested[client_order_id] = last
        deadline = last + self.retry_ms
        if self.retry_at is None or deadline < self.retry_at:
            self.retry_at = deadline


class Strategy:
    """The grid market maker for one agent on one instrument (behaviour.md §1).

    On each price it returns cancels first, then closes, then opening orders. Closes take the order
    budget before opening orders, because a filled slot without its close is unmanaged inventory.

    The object keeps only small state, all of it derived or restorable: the anchor (persist
    :attr:`anchor` and pass it back to the constructor), the margin lock
    (:attr:`margin_locked_until_ms`), which cancels it already asked for (so a cancel is sent once
    and retried every ``cancel_retry_ms`` until the order leaves its slot), and, when the caller
    passes ``slots_version``, the price zones known to need no action under that version.

    Args:
        config: the grid parameters.
        instrument: tick, step, minimums, symbol and client id length limit.
        anchor: the persisted anchor; ``None`` fixes it at the first price (rounded to tick).
        margin_locked_until_ms: a persisted margin lock, epoch ms.

    Raises:
        GridConfigError: the interval is not a multiple of the tick size, or the anchor is off tick.
        ClientOrderIdError: client order ids cannot fit the venue's length limit.
    """

    __slots__ = (
        "_anchor",
        "_buffer",
        "_cancel_requested",
        "_codec",
        "_config",
        "_instrument",
        "_interval",
        "_margin_locked_until_ms",
        "_neutral",
        "_opening_qty",
        "_quiet",
        "_quiet_stamp",
        "_sell_reach",
        "_trail_reach",
    )

    def __init__(
        self,
        config: GridConfig,
        instrument: Instrument,
        *,
        anchor: Decimal | None = None,
        margin_locked_until_ms: int = 0,
    ) -> None:
        interval = config.price_interval
        if interval % instrument.tick_size != 0:
            raise GridConfigError(
                "price_interval",
                f"{interval} is not a multiple of {instrument.symbol} tick size {instrument.tick_size}",
            )
        if anchor is not None and (
            not anchor.is_finite() or anchor <= 0 or not instrument.is_on_tick(anchor)
        ):
            raise GridConfigError("anchor", f"must be a positive price on tick, got {anchor}")
        self._config = config
        self._instrument = instrument
        self._interval = interval
        self._buffer = interval / 10
        self._trail_reach = (config.buy_window + config.trail_hysteresis) * interval
        self._sell_reach = config.sell_window * interval
        self._neutral = config.mode is GridMode.NEUTRAL
        self._codec = ClientOrderIdCodec.for_instrument(
            instrument,
            agent=config.agent,
            prefix=config.client_id_prefix,
            price_digits=config.client_id_price_digits,
            cycle_digits=config.client_id_cycle_digits,
        )
        # Carry the tick's exponent so level prices print like the venue's prices (2998.00).
        self._anchor = None if anchor is None else instrument.round_price(anchor)
        self._margin_locked_until_ms = margin_locked_until_ms
        self._cancel_requested: dict[str, int] = {}
        self._quiet: dict[_ZoneKey, _QuietZone] = {}
        self._quiet_stamp: _Stamp | None = None
        # (level, side) -> opening quantity, or None when that level cannot be traded
        self._opening_qty: dict[tuple[Decimal, Side], Decimal | None] = {}

    @property
    def config(self) -> GridConfig:
        """The grid parameters."""
        return self._config

    @property
    def instrument(self) -> Instrument:
        """The instrument traded."""
        return self._instrument

    @property
    def anchor(self) -> Decimal | None:
        """The grid anchor (fixed at the first price); persist it to restore the same grid."""
        return self._anchor

    @property
    def margin_locked_until_ms(self) -> int:
        """Epoch ms until which nothing is placed after a margin error (0 when never locked)."""
        return self._margin_locked_until_ms

    @property
    def codec(self) -> ClientOrderIdCodec:
        """The client order id codec of this agent and instrument."""
        return self._codec

    def client_order_id(self, slot_price: Decimal, side: Side, cycle: int) -> str:
        """The client order id of an order of ``side`` for ``slot_price`` in ``cycle``."""
        return self._codec.encode(slot_price, side, cycle)

    def centre(self, price: Decimal) -> Decimal:
        """Grid centre ``G = anchor + round_half_up((P - anchor) / I) * I``.

        Raises:
            ValueError: no anchor yet (no price seen and none restored).
        """
        anchor = self._anchor
        if anchor is None:
            raise ValueError("the grid has no anchor yet: call on_price first or pass anchor=")
        return self._centre(anchor, price)

    def on_margin_error(self, now_ms: int) -> None:
        """A margin / insufficient-funds error: cancel opening orders and place nothing for a while."""
        self._margin_locked_until_ms = max(self._margin_locked_until_ms, now_ms + self._config.margin_lock_ms)
        self._quiet_stamp = None

    def on_price(
        self,
        price: Decimal,
        slots: Mapping[Decimal, InventorySlot],
        *,
        now_ms: int,
        trading_state: TradingStateKind = TradingStateKind.ACTIVE,
        slots_version: int | None = None,
    ) -> list[Action]:
        """Decide what to do at ``price``.

        Args:
            price: the latest price.
            slots: every slot of this agent and instrument, keyed by slot price.
            now_ms: the current time, epoch ms (drives the margin lock and cancel retries).
            trading_state: ACTIVE, REDUCING or HALTED, from risk.
            slots_version: optional; a number the caller changes whenever any slot in ``slots``
                changes (e.g. a counter bumped on every slot write). With it, a price that crosses
                no decision boundary returns at once without looking at the slots. Leave it
                ``None`` when no such counter exists.

        Returns:
            Cancels, then closes, then opening orders. The same inputs give the same actions; the
            engine applies :func:`~opensqt.grid.slots.request_order` before sending a placement.
        """
        if not price.is_finite() or price <= 0:
            raise ValueError(f"price must be positive, got {price}")
        anchor = self._anchor
        if anchor is None:
            anchor = self._anchor = self._instrument.round_price(price)
        margin_locked = now_ms < self._margin_locked_until_ms
        if slots_version is None:
            return self._evaluate(anchor, price, slots, trading_state, margin_locked, now_ms)[0]
        stamp = (slots_version, trading_state, margin_locked)
        if stamp == self._quiet_stamp:
            zone = self._quiet.get(self._zone_key(anchor, price))
            if zone is not None and zone.holds(price, now_ms):
                return []
        else:
            self._quiet.clear()
            self._quiet_stamp = stamp
        actions, quiet = self._evaluate(anchor, price, slots, trading_state, margin_locked, now_ms)
        if quiet is not None:
            if len(self._quiet) >= _MAX_QUIET_ZONES:
                self._quiet.clear()
            self._quiet[self._zone_key(anchor, price)] = quiet
        return actions

    # -- internals ---------------------------------------------------------------------------

    def _centre(self, anchor: Decimal, price: Decimal) -> Decimal:
        interval = self._interval
        steps = ((price - anchor) / interval).to_integral_value(rounding=ROUND_HALF_UP)
        return anchor + steps * interval

    def _zone_key(self, anchor: Decimal, price: Decimal) -> _ZoneKey:
        centre = self._centre(anchor, price)
        return (centre, centre < price - self._buffer, centre > price + self._buffer)

    def _evaluate(
        self,
        anchor: Decimal,
        price: Decimal,
        slots: Mapping[Decimal, InventorySlot],
        trading_state: TradingStateKind,
        margin_locked: bool,
        now_ms: int,
    ) -> tuple[list[Action], _QuietZone | None]:
        """Full decision. Returns the actions, and when there are none, where that stays true."""
        centre = self._centre(anchor, price)
        halted = trading_state is TradingStateKind.HALTED
        reducing = trading_state is TradingStateKind.REDUCING
        trail_low = centre - self._trail_reach
        trail_high = centre + self._trail_reach
        cancels = _Cancels(self._cancel_requested, now_ms, self._config.cancel_retry_ms)
        placements: list[Action] = []
        close_slots: list[InventorySlot] = []
        working = 0
        net = ZERO
        closing_buys = ZERO
        closing_sells = ZERO
        unflagged: list[InventorySlot] = []  # REDUCING, neutral: working closes sent without reduce-only

        for slot in slots.values():
            qty = slot.position_qty
            net += qty
            side = slot.order_side
            if side is None:
                if qty != 0 and slot.lock_status is LockStatus.FREE:
                    close_slots.append(slot)
                continue
            working += 1
            cancels.keep(slot.client_order_id)
            closing = (qty > 0 and side is Side.SELL) or (qty < 0 and side is Side.BUY)
            if closing:
                if side is Side.BUY:
                    closing_buys += slot.order_qty - slot.order_filled_qty
                else:
                    closing_sells += slot.order_qty - slot.order_filled_qty
            # A PENDING order may not have reached the exchange yet: cancel it once acknowledged.
            if slot.lock_status is not LockStatus.LOCKED:
                continue
            if halted:
                cancels.request(slot, CancelReason.HALTED)
            elif closing:
                if reducing and self._neutral and not slot.order_reduce_only:
                    unflagged.append(slot)
                continue
            elif reducing:
                cancels.request(slot, CancelReason.REDUCING)
            elif margin_locked:
                cancels.request(slot, CancelReason.MARGIN_LOCK)
            elif (side is Side.BUY and slot.order_price < trail_low) or (
                side is Side.SELL and slot.order_price > trail_high
            ):
                cancels.request(slot, CancelReason.TRAILING)

        if unflagged:
            self._cancel_growing_closes(unflagged, price, net, closing_buys, closing_sells, cancels)

        bounds: _Bounds = (None, None, None, None)
        if not (halted or margin_locked):
            budget = self._config.max_open_orders - working
            room: Decimal | None = None
            if reducing:
                # Only closes that shrink the agent's net position, and no more than it.
                if net > 0:
                    room = net - closing_sells
                elif net < 0:
                    room = -net - closing_buys
                else:
                    room = ZERO
            budget, bounds = self._place_closes(
                price, slots, close_slots, budget, net, room, cancels, placements
            )
            if not reducing and budget > 0:
                self._place_openings(placements, price, centre, slots, budget)
        self._cancel_requested = cancels.requested

        actions = cancels.actions + placements
        if actions:
            return actions, None
        return actions, _QuietZone(cancels.retry_at, *bounds)

    @staticmethod
    def _cancel_growing_closes(
        unflagged: list[InventorySlot],
        price: Decimal,
        net: Decimal,
        closing_buys: Decimal,
        closing_sells: Decimal,
        cancels: _Cancels,
    ) -> None:
        """REDUCING in neutral mode: a close sent without reduce-only while ACTIVE is kept only
        where its fill shrinks the net position, and no more than the net than all the kept
        closes together; the others are cancelled (a fill could grow the position or take it
        past flat), and a later evaluation closes within the net, reduce-only."""
        unflagged_qty = {Side.BUY: ZERO, Side.SELL: ZERO}
        for slot in unflagged:
            assert slot.order_side is not None
            unflagged_qty[slot.order_side] += slot.order_qty - slot.order_filled_qty
        reduce_side = Side.SELL if net > 0 else Side.BUY if net < 0 else None
        flagged = (closing_sells if reduce_side is Side.SELL else closing_buys) - unflagged_qty.get(
            reduce_side or Side.BUY, ZERO
        )
        room = abs(net) - flagged  # left after the reduce-only closes, which the venue caps
        for slot in sorted(unflagged, key=lambda s: (abs(s.order_price - price), s.slot_price)):
            remaining = slot.order_qty - slot.order_filled_qty
            if slot.order_side is reduce_side and remaining <= room:
                room -= remaining
            else:
                cancels.request(slot, CancelReason.REDUCING)

    def _place_closes(
        self,
        price: Decimal,
        slots: Mapping[Decimal, InventorySlot],
        close_slots: list[InventorySlot],
        budget: int,
        net: Decimal,
        reducing_room: Decimal | None,
        cancels: _Cancels,
        placements: list[Action],
    ) -> tuple[int, _Bounds]:
        """Closes for slots with inventory and no order, inside the sell window, nearest first.

        Returns the budget left and the price bounds within which the window membership of every
        candidate stays as it is now (for the quiet zones).
        """
        interval = self._interval
        sell_reach = self._sell_reach
        instrument = self._instrument
        long_min: Decimal | None = None
        long_max: Decimal | None = None
        short_min: Decimal | None = None
        short_max: Decimal | None = None
        eligible: list[_Close] = []
        for slot in close_slots:
            qty = slot.position_qty
            slot_price = slot.slot_price
            if qty > 0:
                side = Side.SELL
                close_price = instrument.round_price(slot_price + interval)
                close_qty = instrument.round_qty(qty)
            else:
                side = Side.BUY
                close_price = instrument.round_price(slot_price - interval)
                close_qty = instrument.round_qty(-qty)
            if not self._tradable(close_price, close_qty):
                continue  # dust: it stays on the slot until it can be sold
            if qty > 0:
                threshold = slot_price - sell_reach  # in the window while price >= threshold
                if price < threshold:
                    long_max = threshold if long_max is None else min(long_max, threshold)
                    continue
                long_min = threshold if long_min is None else max(long_min, threshold)
            else:
                threshold = slot_price + sell_reach  # in the window while price <= threshold
                if price > threshold:
                    short_min = threshold if short_min is None else max(short_min, threshold)
                    continue
                short_max = threshold if short_max is None else min(short_max, threshold)
            eligible.append(_Close(abs(slot_price - price), slot, side, close_price, close_qty))
        bounds = (long_min, long_max, short_min, short_max)
        if not eligible or budget <= 0:
            return budget, bounds

        eligible.sort(key=lambda close: (close.distance, close.slot.slot_price))
        reduce_side = None if reducing_room is None else Side.SELL if net > 0 else Side.BUY
        room = reducing_room if reducing_room is not None else ZERO
        for close in eligible:
            if budget <= 0:
                break
            if reducing_room is not None and (net == 0 or close.side is not reduce_side or close.qty > room):
                continue
            # One order per price and side: an opening order resting at the close's price (on the
            # slot keyed there) gives way; the close follows once that cancel is confirmed.
            partner = slots.get(close.price)
            if (
                partner is not None
                and partner.order_side is close.side
                and partner.order_price == close.price
            ):
                if partner.lock_status is LockStatus.LOCKED:
                    cancels.request(partner, CancelReason.SUPERSEDED)
                continue
            if reducing_room is not None:
                room -= close.qty
                reduce_only = True
            else:
                # In neutral mode the exchange nets every slot into one position, where a
                # reduce-only close would be refused whenever the net is on the other side.
                reduce_only = not self._neutral and close.side is Side.SELL
            slot = close.slot
            placements.append(
                PlaceOrder(
                    slot_price=slot.slot_price,
                    side=close.side,
                    price=close.price,
                    qty=close.qty,
                    post_only=False,
                    reduce_only=reduce_only,
                    client_order_id=self._codec.encode(slot.slot_price, close.side, slot.cycle),
                )
            )
            budget -= 1
        return budget, bounds

    def _place_openings(
        self,
        actions: list[Action],
        price: Decimal,
        centre: Decimal,
        slots: Mapping[Decimal, InventorySlot],
        budget: int,
    ) -> None:
        interval = self._interval
        window = self._config.buy_window
        below = price - self._buffer
        candidates: list[tuple[Decimal, Side]] = []
        for k in range(window):
            level = centre - k * interval
            if level <= 0:
                break
            if level < below:
                candidates.append((level, Side.BUY))
        if self._neutral:
            above = price + self._buffer
            for k in range(window):
                level = centre + k * interval
                if level > above:
                    candidates.append((level, Side.SELL))
            candidates.sort(key=lambda candidate: (abs(candidate[0] - price), candidate[1] is Side.SELL))
        max_rejects = self._config.post_only_max_rejects
        for level, side in candidates:
            if budget <= 0:
                return
            slot = slots.get(level)
            if slot is not None and (
                slot.order_side is not None or slot.lock_status is not LockStatus.FREE or not is_empty(slot)
            ):
                continue
            # One order per price and side: where another slot's close already sits (a BUY
            # closing the short keyed one level up, a SELL closing the long one level down),
            # opening there too would double the position change at that level.
            partner = slots.get(level + interval if side is Side.BUY else level - interval)
            if partner is not None and (
                partner.position_qty < 0 if side is Side.BUY else partner.position_qty > 0
            ):
                continue
            qty = self._opening_quantity(level, side)
            if qty is None:
                continue
            cycle = 0 if slot is None else slot.cycle
            rejects = 0 if slot is None else slot.post_only_rejects
            actions.append(
                PlaceOrder(
                    slot_price=level,
                    side=side,
                    price=level,
                    qty=qty,
                    post_only=rejects < max_rejects,
                    reduce_only=False,
                    client_order_id=self._codec.encode(level, side, cycle),
                )
            )
            budget -= 1

    def _opening_quantity(self, level: Decimal, side: Side) -> Decimal | None:
        """``notional / level`` rounded to the step, or None when the order or its close is untradable."""
        key = (level, side)
        cache = self._opening_qty
        if key in cache:
            return cache[key]
        qty = opening_qty(self._config.order_notional, level, self._instrument.step_size)
        close_price = level + self._interval if side is Side.BUY else level - self._interval
        result = qty if self._tradable(level, qty) and self._tradable(close_price, qty) else None
        cache[key] = result
        return result

    def _tradable(self, price: Decimal, qty: Decimal) -> bool:
        instrument = self._instrument
        if price <= 0 or qty <= 0 or qty < instrument.min_qty:
            return False
        value = price * qty
        return value >= instrument.min_notional and value >= self._config.min_order_value
