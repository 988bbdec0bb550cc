"""Order plans for entering and leaving an arbitrage position, as replayable state machines.

A plan is immutable. The executor drives it with :meth:`EntryPlan.next_step` /
:meth:`ExitPlan.next_step`: it passes the results of every step sent so far (in order) and gets
the next :class:`OrderStep` to send, or :class:`Done`. The answer depends only on the plan and the
results, so a durable workflow that crashes can rebuild its position by replaying its recorded
results, and the client order ids it re-derives are the ones it already used.

Entry (spot MARKET first, then the perp):

1. spot MARKET for the planned quantity; a zero fill aborts (nothing to undo);
2. perp MARKET for the spot's *executed* quantity (rounded down to the perp's step);
3. whatever the perp does not hedge (all of the spot on a perp failure, the difference on a
   partial perp fill) is unwound on the spot, retried with a fresh attempt until no tradeable
   quantity is left.

Exit (sized from the actual leg sizes): the first leg (the perp, reduce-only, unless told
otherwise) once; a zero fill aborts with both legs still hedged. Then the second leg, sized to the
whole leg when the first closed fully or to the first leg's executed quantity when it closed
partially, retried with a fresh attempt until no tradeable quantity is left (never abandoned).

Every order of every attempt has its own client order id, see :func:`client_order_id`.
Quantities are rounded down to each instrument's step; a remainder below the instrument's minimum
quantity or minimum notional cannot be traded and is reported as a residual.

A venue that takes a buy's commission from the base asset it receives (Binance spot without
BNB fees) leaves a spot buy short of its quantity: with ``spot_buy_fee`` (the rate) every spot
BUY is sized up so that what it receives covers the quantity wanted (rounded up to the step),
and a step's result reports what it received (see :func:`~opensqt.arbitrage.execution.step_result`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from math import gcd

from opensqt.arbitrage.legs import Fill
from opensqt.model.enums import MarketType, OrderType, Side
from opensqt.model.instrument import Instrument
from opensqt.model.money import ZERO, round_to_step
from opensqt.model.resources import Order

__all__ = [
    "CLIENT_ID_MAX_LENGTH",
    "ClientIdError",
    "Direction",
    "Done",
    "EntryPlan",
    "ExitPlan",
    "OrderStep",
    "Outcome",
    "PlanError",
    "StepKind",
    "StepResult",
    "build_entry_plan",
    "client_order_id",
    "common_step",
    "tradeable_qty",
]

CLIENT_ID_MAX_LENGTH = 36
_CLIENT_ID_RE = re.compile(r"^[.A-Za-z0-9:/_-]+$")
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class PlanError(ValueError):
    """A plan cannot be built, or the results given to it do not fit it."""


class ClientIdError(ValueError):
    """A client order id cannot be formed within the venue's rules."""


class Direction(StrEnum):
    """Which funding the position earns."""

    POSITIVE = "POSITIVE"
    """Long spot, short perp: earns positive funding."""
    NEGATIVE = "NEGATIVE"
    """Short spot (margin borrow), long perp: earns negative funding."""


class StepKind(StrEnum):
    """The role of an order in a plan; the value is its code inside client order ids."""

    ENTRY_SPOT = "es"
    ENTRY_PERP = "ep"
    COMPENSATE_SPOT = "cs"
    EXIT_PERP = "xp"
    EXIT_SPOT = "xs"


class Outcome(StrEnum):
    """How a plan ended."""

    ENTERED = "ENTERED"
    """Both legs opened (the hedged quantity may be below plan after partial fills)."""
    ABORTED = "ABORTED"
    """The first order filled nothing; no leg changed."""
    COMPENSATED = "COMPENSATED"
    """The perp did not fill; the spot fill was unwound."""
    EXITED = "EXITED"
    """Both legs closed (up to untradeable dust)."""
    PARTIAL = "PARTIAL"
    """The first exit leg closed partially; the second was closed by the same quantity."""
    FAILED = "FAILED"
    """The executor could not finish the plan (fills unknown; re-sync from positions)."""


def _base36(number: int) -> str:
    if number < 0:
        raise ClientIdError(f"cannot encode a negative number ({number}) in a client order id")
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
        if number == 0:
            return digits


def client_order_id(
    agent: str,
    sequence_id: int,
    step: StepKind,
    attempt: int,
    *,
    max_length: int = CLIENT_ID_MAX_LENGTH,
) -> str:
    """The client order id of one attempt of one step: ``<agent>-<sequence>-<step><attempt>``.

    Sequence and attempt are base 36 (lowercase); the step is its two-letter code. Neither the
    sequence nor the step part contains a dash, so distinct inputs give distinct ids even when the
    agent does. The id uses only ``[.A-Za-z0-9:/_-]`` and is at most ``min(max_length, 36)`` long.

    Raises:
        ClientIdError: the id would be too long or use a forbidden character.
    """
    text = f"{agent}-{_base36(sequence_id)}-{step.value}{_base36(attempt)}"
    if not _CLIENT_ID_RE.match(text):
        raise ClientIdError(f"client order id {text!r} uses characters outside [.A-Za-z0-9:/_-]")
    limit = min(max_length, CLIENT_ID_MAX_LENGTH)
    if len(text) > limit:
        raise ClientIdError(
            f"client order id {text!r} is {len(text)} characters; the limit is {limit} "
            "(use a shorter agent id)"
        )
    return text


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"{value} is not a finite decimal")
    return exponent


def common_step(first: Decimal, second: Decimal) -> Decimal:
    """The smallest quantity that is a multiple of both steps (their least common multiple)."""
    if first <= 0 or second <= 0:
        raise ValueError(f"steps must be greater than zero, got {first} and {second}")
    shift = max(0, -min(_exponent(first), _exponent(second)))
    first_units = int(first.scaleb(shift))
    second_units = int(second.scaleb(shift))
    units = first_units * second_units // gcd(first_units, second_units)
    multiple = Decimal(units).scaleb(-shift)
    # Prefer a step's own spelling (0.001, not 0.00100) so rounded quantities read naturally.
    return next((step for step in (first, second) if step == multiple), multiple)


def tradeable_qty(instrument: Instrument, qty: Decimal, price: Decimal) -> Decimal:
    """``qty`` rounded down to the step, or 0 when that breaks the instrument's minimums.

    The minimum notional is checked only when ``price`` is known (greater than zero).
    """
    if qty <= 0:
        return ZERO
    rounded = instrument.round_qty(qty)
    if rounded <= 0 or rounded < instrument.min_qty:
        return ZERO
    if price > 0 and rounded * price < instrument.min_notional:
        return ZERO
    return rounded


@dataclass(frozen=True, slots=True)
class OrderStep:
    """One MARKET order the executor must send (and wait for), with its unique client order id."""

    kind: StepKind
    attempt: int
    client_order_id: str
    venue: str
    symbol: str
    market_type: MarketType
    side: Side
    quantity: Decimal
    reduce_only: bool = False

    @property
    def is_compensation(self) -> bool:
        """True for an order that undoes an earlier step of the same plan."""
        return self.kind is StepKind.COMPENSATE_SPOT

    def to_order(self) -> Order:
        """The order to send, as a domain :class:`Order` (MARKET, price 0)."""
        return Order(
            symbol=self.symbol,
            side=self.side,
            order_type=OrderType.MARKET,
            quantity=self.quantity,
            client_order_id=self.client_order_id,
            venue=self.venue,
            market_type=self.market_type,
            reduce_only=self.reduce_only,
        )


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step achieved: its cumulative executed quantity (0 on a failure).

    ``average_price`` 0 means unknown (the plan's reference price is used); ``error`` describes a
    failure for the reasons; ``time_ms`` is when the order finished (exchange time when known).
    """

    client_order_id: str
    filled_qty: Decimal
    average_price: Decimal = ZERO
    error: str = ""
    time_ms: int = 0

    def __post_init__(self) -> None:
        if not self.filled_qty.is_finite() or self.filled_qty < 0:
            raise PlanError(
                f"{self.client_order_id}: filled quantity must not be negative, got {self.filled_qty}"
            )
        if not self.average_price.is_finite() or self.average_price < 0:
            raise PlanError(
                f"{self.client_order_id}: average price must not be negative, got {self.average_price}"
            )


@dataclass(frozen=True, slots=True)
class Done:
    """A plan's end: its outcome, a human-readable reason, and every fill it made, in order."""

    sequence_id: int
    outcome: Outcome
    reason: str
    fills: tuple[Fill, ...] = ()


class _Replay:
    """Hands out the recorded results one step at a time and checks that they fit the plan."""

    def __init__(self, sequence_id: int, results: Sequence[StepResult]) -> None:
        self._sequence_id = sequence_id
        self._results = results
        self._next = 0
        self.fills: list[Fill] = []

    def take(self, step: OrderStep, reference_price: Decimal) -> StepResult | None:
        if self._next >= len(self._results):
            return None
        result = self._results[self._next]
        if result.client_order_id != step.client_order_id:
            raise PlanError(
                f"result #{self._next} is for {result.client_order_id!r}, but the plan's step "
                f"#{self._next} is {step.client_order_id!r}"
            )
        if result.filled_qty > step.quantity:
            raise PlanError(
                f"{step.client_order_id}: filled {result.filled_qty}, more than the ordered {step.quantity}"
            )
        self._next += 1
        if result.filled_qty > 0:
            price = result.average_price if result.average_price > 0 else reference_price
            self.fills.append(
                Fill(step.venue, step.symbol, step.side, result.filled_qty, price, result.time_ms)
            )
        return result

    def done(self, outcome: Outcome, reason: str) -> Done:
        if self._next != len(self._results):
            raise PlanError(
                f"sequence {self._sequence_id} ended after {self._next} steps "
                f"but got {len(self._results)} results"
            )
        return Done(self._sequence_id, outcome, reason, tuple(self.fills))


def _failure_note(result: StepResult) -> str:
    return f" ({result.error})" if result.error else ""


def _check_client_ids(agent: str, sequence_id: int, instruments: Sequence[Instrument]) -> None:
    """Fail at construction, not mid-plan, when the ids cannot fit (every step code is 2 long)."""
    if sequence_id < 0:
        raise PlanError(f"sequence id must not be negative, got {sequence_id}")
    for instrument in instruments:
        client_order_id(
            agent, sequence_id, StepKind.ENTRY_SPOT, 0, max_length=instrument.max_client_order_id_length
        )


@dataclass(frozen=True, slots=True)
class EntryPlan:
    """Open a hedged position: spot MARKET first, then the perp for what the spot filled.

    Attributes:
        agent: agent id (client order id prefix).
        sequence_id: this plan's id, unique per agent; also the workflow id's suffix.
        direction: POSITIVE buys spot and sells the perp; NEGATIVE sells spot on margin and buys
            the perp.
        spot, perp: the instruments.
        spot_qty: planned spot quantity, on the grid of both steps.
        spot_price, perp_price: reference prices for minimum-notional checks and for fills that
            report no average price.
        spot_buy_fee: the commission rate a spot buy pays in the base asset (0: none).
    """

    agent: str
    sequence_id: int
    direction: Direction
    spot: Instrument
    perp: Instrument
    spot_qty: Decimal
    spot_price: Decimal
    perp_price: Decimal
    spot_buy_fee: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.spot_price <= 0 or self.perp_price <= 0:
            raise PlanError(f"reference prices must be positive, got {self.spot_price} and {self.perp_price}")
        if self.spot_qty <= 0 or not self.spot.is_on_step(self.spot_qty):
            raise PlanError(
                f"spot quantity {self.spot_qty} must be positive and on step {self.spot.step_size}"
            )
        _check_client_ids(self.agent, self.sequence_id, (self.spot, self.perp))

    @property
    def workflow_id(self) -> str:
        """Idempotency key of the plan's durable workflow: ``<agent>-<sequence>``."""
        return f"{self.agent}-{_base36(self.sequence_id)}"

    @property
    def spot_side(self) -> Side:
        """BUY for a positive entry, SELL (short) for a negative one."""
        return Side.BUY if self.direction is Direction.POSITIVE else Side.SELL

    @property
    def spot_market_type(self) -> MarketType:
        """MARGIN for a short spot leg (borrowed), else the spot instrument's market type."""
        return MarketType.MARGIN if self.direction is Direction.NEGATIVE else self.spot.market_type

    def next_step(self, results: Sequence[StepResult]) -> OrderStep | Done:
        """The next order to send given the results of every order sent so far, or :class:`Done`."""
        replay = _Replay(self.sequence_id, results)
        spot_step = self._spot_step(StepKind.ENTRY_SPOT, 0, self.spot_side, self.spot_qty)
        spot_result = replay.take(spot_step, self.spot_price)
        if spot_result is None:
            return spot_step
        spot_filled = spot_result.filled_qty
        if spot_filled == 0:
            return replay.done(
                Outcome.ABORTED,
                f"spot {self.spot_side.value} {self.spot_qty} filled nothing{_failure_note(spot_result)}; "
                "no perp order sent, nothing to undo",
            )
        spot_fill_price = spot_result.average_price if spot_result.average_price > 0 else self.spot_price

        perp_filled = ZERO
        hedge_qty = tradeable_qty(self.perp, spot_filled, self.perp_price)
        if hedge_qty > 0:
            perp_step = OrderStep(
                kind=StepKind.ENTRY_PERP,
                attempt=0,
                client_order_id=self._client_id(StepKind.ENTRY_PERP, 0, self.perp),
                venue=self.perp.venue,
                symbol=self.perp.symbol,
                market_type=self.perp.market_type,
                side=self.spot_side.opposite,
                quantity=hedge_qty,
            )
            perp_result = replay.take(perp_step, self.perp_price)
            if perp_result is None:
                return perp_step
            perp_filled = perp_result.filled_qty
            perp_note = (
                f"perp {perp_step.side.value} {hedge_qty} filled {perp_filled}{_failure_note(perp_result)}"
            )
        else:
            perp_note = f"spot fill {spot_filled} is below the perp's minimum; no perp order sent"

        unhedged = spot_filled - perp_filled
        compensated = ZERO
        attempt = 0
        while (remaining := tradeable_qty(self.spot, unhedged - compensated, spot_fill_price)) > 0:
            step = self._spot_step(StepKind.COMPENSATE_SPOT, attempt, self.spot_side.opposite, remaining)
            result = replay.take(step, spot_fill_price)
            if result is None:
                return step
            compensated += result.filled_qty
            attempt += 1
        residual = unhedged - compensated
        reason = f"spot filled {spot_filled} of {self.spot_qty}; {perp_note}"
        if compensated > 0:
            reason += f"; unwound {compensated} spot in {attempt} attempt(s)"
        if residual > 0:
            reason += f"; {residual} spot unhedged, below the tradeable minimum"
        outcome = Outcome.ENTERED if perp_filled > 0 else Outcome.COMPENSATED
        return replay.done(outcome, reason)

    def _client_id(self, kind: StepKind, attempt: int, instrument: Instrument) -> str:
        return client_order_id(
            self.agent, self.sequence_id, kind, attempt, max_length=instrument.max_client_order_id_length
        )

    def _spot_step(self, kind: StepKind, attempt: int, side: Side, qty: Decimal) -> OrderStep:
        return OrderStep(
            kind=kind,
            attempt=attempt,
            client_order_id=self._client_id(kind, attempt, self.spot),
            venue=self.spot.venue,
            symbol=self.spot.symbol,
            market_type=self.spot_market_type,
            side=side,
            quantity=_gross(self.spot, qty, self.spot_buy_fee) if side is Side.BUY else qty,
        )


def build_entry_plan(
    *,
    agent: str,
    sequence_id: int,
    direction: Direction,
    spot: Instrument,
    perp: Instrument,
    spot_price: Decimal,
    perp_price: Decimal,
    base_qty: Decimal | None = None,
    quote_notional: Decimal | None = None,
    spot_buy_fee: Decimal = ZERO,
) -> EntryPlan:
    """Size an entry: ``base_qty``, or ``quote_notional / spot_price``, rounded down to a grid both
    instruments accept (so a full spot fill is hedged exactly). ``spot_buy_fee``: the rate of
    a commission a spot buy pays in the base asset (the buy is sized up by it).

    Raises:
        PlanError: no size or two sizes given, or the size breaks either instrument's minimums.
    """
    if spot_price <= 0 or perp_price <= 0:
        raise PlanError(f"reference prices must be positive, got {spot_price} and {perp_price}")
    if base_qty is not None and quote_notional is None:
        wanted = base_qty
    elif quote_notional is not None and base_qty is None:
        wanted = quote_notional / spot_price
    else:
        raise PlanError("give exactly one of base_qty and quote_notional")
    grid = common_step(spot.step_size, perp.step_size)
    qty = round_to_step(wanted, grid, mode="down") if wanted > 0 else ZERO
    if qty <= 0 or tradeable_qty(spot, qty, spot_price) != qty:
        raise PlanError(
            f"entry size {wanted} rounds to {qty} on step {grid}, below the spot minimums "
            f"(min qty {spot.min_qty}, min notional {spot.min_notional} at {spot_price})"
        )
    if tradeable_qty(perp, qty, perp_price) != qty:
        raise PlanError(
            f"entry size {qty} is below the perp minimums "
            f"(min qty {perp.min_qty}, min notional {perp.min_notional} at {perp_price})"
        )
    return EntryPlan(
        agent=agent,
        sequence_id=sequence_id,
        direction=direction,
        spot=spot,
        perp=perp,
        spot_qty=qty,
        spot_price=spot_price,
        perp_price=perp_price,
        spot_buy_fee=spot_buy_fee,
    )


def _gross(instrument: Instrument, wanted: Decimal, fee: Decimal) -> Decimal:
    """A buy's quantity so that, less a commission of ``fee`` in the base asset, it receives at
    least ``wanted`` (rounded up to the step); ``wanted`` itself without such a fee."""
    if fee <= 0:
        return wanted
    if not fee < 1:
        raise PlanError(f"a commission rate must be below 1, got {fee}")
    return round_to_step(wanted / (1 - fee), instrument.step_size, mode="up")


@dataclass(frozen=True, slots=True)
class _ExitLeg:
    name: str
    instrument: Instrument
    size: Decimal
    kind: StepKind
    market_type: MarketType
    reduce_only: bool
    price: Decimal

    @property
    def close_side(self) -> Side:
        return Side.SELL if self.size > 0 else Side.BUY

    def tradeable(self, qty: Decimal) -> Decimal:
        return tradeable_qty(self.instrument, qty, self.price)


@dataclass(frozen=True, slots=True)
class ExitPlan:
    """Close a position sized to the *actual* leg sizes (signed, from positions).

    The perp closes first (reduce-only), then the spot; ``spot_first`` reverses the order (for an
    emergency on the spot leg). ``spot_price`` / ``perp_price`` are reference prices: of the
    fills the executor records, and the spot's for its minimum-notional check (0: unknown, not
    checked; the perp's reduce-only close is exempt from it). ``emergency`` only labels the plan.
    ``spot_buy_fee``: the rate of a commission a spot buy pays in the base asset (a spot close
    that buys, of a short on margin, is sized up by it so the loan is repaid).

    Raises:
        PlanError: neither leg has a tradeable quantity.
    """

    agent: str
    sequence_id: int
    spot: Instrument
    perp: Instrument
    spot_size: Decimal
    perp_size: Decimal
    spot_price: Decimal = ZERO
    perp_price: Decimal = ZERO
    spot_first: bool = False
    emergency: bool = False
    spot_buy_fee: Decimal = ZERO

    def __post_init__(self) -> None:
        _check_client_ids(self.agent, self.sequence_id, (self.spot, self.perp))
        if all(leg.tradeable(abs(leg.size)) == 0 for leg in self._legs()):
            raise PlanError(
                f"nothing to exit: spot {self.spot_size} and perp {self.perp_size} "
                "are below the tradeable minimums"
            )

    @property
    def workflow_id(self) -> str:
        """Idempotency key of the plan's durable workflow: ``<agent>-<sequence>``."""
        return f"{self.agent}-{_base36(self.sequence_id)}"

    def _legs(self) -> tuple[_ExitLeg, _ExitLeg]:
        spot_margin = self.spot_size < 0 or self.spot.market_type is MarketType.MARGIN
        # reduce-only: exempt from the minimum notional (Binance's -4164 says "unless you choose
        # reduce only"), so a small rest of the perp is closed, never left without its hedge
        perp = _ExitLeg(
            "perp", self.perp, self.perp_size, StepKind.EXIT_PERP, MarketType.PERPETUAL, True, ZERO
        )
        spot = _ExitLeg(
            "spot",
            self.spot,
            self.spot_size,
            StepKind.EXIT_SPOT,
            MarketType.MARGIN if spot_margin else self.spot.market_type,
            False,
            self.spot_price,
        )
        return (spot, perp) if self.spot_first else (perp, spot)

    def _step(self, leg: _ExitLeg, attempt: int, qty: Decimal) -> OrderStep:
        return OrderStep(
            kind=leg.kind,
            attempt=attempt,
            client_order_id=client_order_id(
                self.agent,
                self.sequence_id,
                leg.kind,
                attempt,
                max_length=leg.instrument.max_client_order_id_length,
            ),
            venue=leg.instrument.venue,
            symbol=leg.instrument.symbol,
            market_type=leg.market_type,
            side=leg.close_side,
            quantity=_gross(leg.instrument, qty, self.spot_buy_fee)
            if leg.kind is StepKind.EXIT_SPOT and leg.close_side is Side.BUY
            else qty,
            reduce_only=leg.reduce_only,
        )

    def next_step(self, results: Sequence[StepResult]) -> OrderStep | Done:
        """The next order to send given the results of every order sent so far, or :class:`Done`."""
        replay = _Replay(self.sequence_id, results)
        first, second = self._legs()

        first_qty = first.tradeable(abs(first.size))
        first_filled = ZERO
        first_closed = True
        notes: list[str] = []
        if first_qty > 0:
            step = self._step(first, 0, first_qty)
            result = replay.take(step, first.price)
            if result is None:
                return step
            first_filled = result.filled_qty
            if first_filled == 0:
                return replay.done(
                    Outcome.ABORTED,
                    f"{first.name} close {step.side.value} {first_qty} filled nothing"
                    f"{_failure_note(result)}; {second.name} left open, both legs unchanged",
                )
            first_closed = first.tradeable(abs(first.size) - first_filled) == 0
            notes.append(f"{first.name} closed {first_filled} of {abs(first.size)}")
        else:
            notes.append(f"{first.name} {first.size} below the tradeable minimum, skipped")

        target = abs(second.size) if first_closed else min(abs(second.size), first_filled)
        closed = ZERO
        attempt = 0
        while (remaining := second.tradeable(target - closed)) > 0:
            step = self._step(second, attempt, remaining)
            result = replay.take(step, second.price)
            if result is None:
                return step
            closed += result.filled_qty
            attempt += 1
        notes.append(f"{second.name} closed {closed} of {abs(second.size)} in {attempt} attempt(s)")
        residual = abs(second.size) - closed
        if first_closed and residual > 0:
            notes.append(f"{residual} {second.name} left below the tradeable minimum")
        outcome = Outcome.EXITED if first_closed else Outcome.PARTIAL
        return replay.done(outcome, "; ".join(notes))
