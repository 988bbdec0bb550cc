"""The funding-rate arbitrage strategy: pure, deterministic decisions from events.

:class:`Strategy` holds one immutable :class:`StrategyState` and replaces it on every event; it
performs no I/O and reads no clock (every handler takes ``now_ms``). Each handler returns one
:class:`Decision` with a human-readable reason; a decision that trades carries a plan
(:class:`~opensqt.arbitrage.plans.EntryPlan` or :class:`~opensqt.arbitrage.plans.ExitPlan`) for the
executor, and the strategy then waits (single flight) until :meth:`Strategy.on_execution_result`
reports that plan's :class:`~opensqt.arbitrage.plans.Done`. Every plan handed out must be answered
exactly once, also when the executor refuses to run it (answer with ``Outcome.ABORTED``).

Rules (see ``behaviour.md`` §3 and the liquidation guard of §4):

- ``spread = perp_rate - spot_rate`` (the spot rate is 0) and
  ``APR = spread * 365 * 24 / interval_hours``, the interval coming with each funding update
  (falling back to the perp instrument's).
- Flat: APR above ``min_spread_apr + round_trip_fee_apr`` enters positive (long spot, short
  perp); below its negation enters negative (short spot on margin, long perp) when
  ``use_margin``, else holds with that reason.
- Open: exit when the carry the position earns falls below ``exit_spread_apr``. The carry is the
  APR for a positive position and -APR for a negative one, so this covers ``|APR| < exit`` and
  also a funding rate that has flipped against the position (which ``|APR|`` alone would hold,
  paying funding every interval).
- Funding updates are ignored when their ``next_funding_ms`` was already handled, while a plan is
  in flight, or when either leg's data (its last price, or the funding update itself) is older
  than ``max_data_age_ms``.
- Toxic basis, evaluated on price updates while a position is open: ``basis = (perp - spot) /
  spot``; below ``toxic_basis`` for a positive position (above ``-toxic_basis`` for a negative
  one, the mirror image) on ``toxic_count`` consecutive readings exits; a normal reading resets
  the count.
- An exit goes on until the legs are flat: when an exit plan ends with the legs still open (the
  book filled its first leg in part or not at all), the same exit is sent again for what is left
  on a later price, after ``EXIT_RETRY_MS`` (doubling with each attempt). Meanwhile funding
  and basis readings start no exit of their own; the hedge check and the liquidation guard
  still may (an emergency is never weakened to an ordinary exit). A funding exit stops if a new
  funding period says hold; the others go on. What is left below the minimums is a residual.
- Liquidation guard, on every position update of either leg: distance ``(mark - liq) / mark``
  for a long, ``(liq - mark) / mark`` for a short; below ``liquidation_threshold`` exits that leg
  first and its hedge leg after it. A position of size 0 or liquidation price 0 is no risk. While a
  plan is in flight, the emergency exit waits for it and follows at once.

Leg sizes: position updates re-sync the legs (authoritative) except while a plan is in flight,
when the plan owns them; the plan's fills are applied when its result arrives, or the legs as
recorded (every fill of the agent's orders, from the plan and from the order stream) replace
them (:meth:`Strategy.on_execution_result` with ``legs``, :meth:`Strategy.sync_legs`).

Hedge check: a process killed mid-plan, a plan that failed, or a fill the strategy did not expect
(an order of a failed plan that filled after all) may leave one leg filled and its hedge not.
The legs are then checked once, when both legs have a price and no plan is in flight (after a
plan failed with an order whose outcome is unknown, not before ``unknown_order_settle_ms``):
delta-neutral (``|spot + perp| < dust_qty``) or flat, they are kept and managed as usual;
otherwise both are closed to flat (an ``EXIT`` sized to the legs, with a fresh sequence id).
Until then funding updates and the basis are not evaluated.

The gate (:meth:`Strategy.set_gate`, :func:`plan_refusal`): the trading state and the agent's
pause, as the agent last saw them. A plan they would refuse is not handed out: the decision is a
``HOLD`` that ``waits`` and nothing is used up (a funding period stays unhandled, a hedge check
stays armed), so the same decision comes again on a later event once the gate allows it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from opensqt.arbitrage.config import ArbitrageConfig
from opensqt.arbitrage.legs import LegBook, leg_key, position_key
from opensqt.arbitrage.plans import (
    Direction,
    Done,
    EntryPlan,
    ExitPlan,
    Outcome,
    PlanError,
    build_entry_plan,
)
from opensqt.model.enums import TradingStateKind
from opensqt.model.events import FundingUpdate, PositionUpdate, PriceChange
from opensqt.model.money import ZERO
from opensqt.model.resources import FundingRate, Position

__all__ = [
    "EXIT_RETRY_MS",
    "FAILED_PLAN_BACKOFF_MS",
    "SPOT_FUNDING_RATE",
    "Action",
    "Decision",
    "Strategy",
    "StrategyState",
    "basis",
    "funding_apr",
    "liquidation_distance",
    "plan_refusal",
]

SPOT_FUNDING_RATE = ZERO
"""Spot pays no funding; the spread is the perp's rate minus this."""

_HOURS_PER_YEAR = Decimal(365 * 24)

EXIT_RETRY_MS = (1_000, 60_000)
"""An exit whose plan left the legs open (a thin book filled the first leg in part, or not at
all) is sent again on the first price after the first figure, each further attempt waiting
twice as long, up to the second; it goes on until the legs are flat or what is left cannot be
traded (a residual), and a funding exit also stops when a new funding period says hold."""

ExitKind = str
"""Why an exit runs: ``funding``, ``basis``, ``hedge`` (the hedge check closes unhedged legs) or
``emergency`` (the liquidation guard)."""

FAILED_PLAN_BACKOFF_MS = (1_000, 16_000)
"""After the second FAILED plan in a row the hedge check waits the first figure, doubling with
each further failure up to the second; the first failure's check runs at once. A check that
finds the legs flat or hedged, or any plan that does not fail, starts the count again."""


def funding_apr(rate: Decimal, interval_hours: int) -> Decimal:
    """Annualise a per-interval rate: ``rate * (365 * 24 / interval_hours)``.

    ``0.0003`` every 8 h is ``0.3285``; the same rate every 4 h is ``0.657``.
    """
    if interval_hours <= 0:
        raise ValueError(f"funding interval must be a positive number of hours, got {interval_hours}")
    return rate * _HOURS_PER_YEAR / Decimal(interval_hours)


def basis(spot_price: Decimal, perp_price: Decimal) -> Decimal:
    """``(perp - spot) / spot``: the perp's premium over spot."""
    if spot_price <= 0:
        raise ValueError(f"spot price must be greater than zero, got {spot_price}")
    return (perp_price - spot_price) / spot_price


def liquidation_distance(position: Position, mark_price: Decimal | None = None) -> Decimal | None:
    """Relative distance from the mark price to the liquidation price, on the losing side.

    Longs: ``(mark - liq) / mark``; shorts: ``(liq - mark) / mark``. Negative once the mark is
    past the liquidation price. ``None`` when there is no risk to measure: size 0, liquidation
    price 0, or no mark price. ``mark_price`` overrides the position's own mark.
    """
    mark = mark_price if mark_price is not None else position.mark_price
    if position.size == 0 or position.liquidation_price <= 0 or mark <= 0:
        return None
    if position.size > 0:
        return (mark - position.liquidation_price) / mark
    return (position.liquidation_price - mark) / mark


def _show(value: Decimal) -> str:
    """Six decimals, half away from zero, for reasons (display only)."""
    shown = value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP).normalize()
    return f"{shown:f}"


class Action(StrEnum):
    """What a decision asks for."""

    IGNORE = "IGNORE"
    """The event was gated (not ours, stale, duplicate, in flight); nothing was evaluated."""
    HOLD = "HOLD"
    """Evaluated; nothing to do."""
    ENTER_POSITIVE = "ENTER_POSITIVE"
    ENTER_NEGATIVE = "ENTER_NEGATIVE"
    EXIT = "EXIT"
    EMERGENCY_EXIT = "EMERGENCY_EXIT"


_ENTRIES = frozenset({Action.ENTER_POSITIVE, Action.ENTER_NEGATIVE})


def plan_refusal(action: Action, trading_state: TradingStateKind, *, paused: bool) -> str:
    """Why a decision's plan may not run now, or ``""`` when it may.

    Entries need ACTIVE and an agent that is not paused. Exits may run while REDUCING; an
    emergency (liquidation) exit runs even when the agent is paused. HALTED refuses everything
    (the executors would refuse the orders anyway).
    """
    if trading_state is TradingStateKind.HALTED:
        return "trading state HALTED: no orders"
    if action in _ENTRIES:
        if trading_state is not TradingStateKind.ACTIVE:
            return f"trading state {trading_state.value}: no new positions"
        if paused:
            return "agent paused: no new positions"
        return ""
    if paused and action is not Action.EMERGENCY_EXIT:
        return "agent paused"
    return ""


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one event: an action, why, and the plan to execute (if any).

    An ``EMERGENCY_EXIT`` without a plan means the exit is deferred until the plan in flight
    completes. ``waits``: a plan was due, but the gate refuses it now (the action is ``HOLD``);
    it is decided again on a later event.
    """

    action: Action
    reason: str
    plan: EntryPlan | ExitPlan | None = None
    waits: bool = False


@dataclass(frozen=True, slots=True)
class StrategyState:
    """Everything the strategy remembers; checkpoint it to resume exactly where it was.

    Attributes:
        legs: the spot and perp legs.
        spot_price, spot_price_ms, perp_price, perp_price_ms: last price of each leg and when.
        last_handled_funding_ms: ``next_funding_ms`` of the last funding update evaluated.
        last_sequence_id: the last plan's sequence id.
        in_flight_sequence: the plan being executed, if any.
        toxic_readings: consecutive toxic basis readings.
        last_basis_check_ms: when the basis was last read.
        emergency_leg: the leg key of a liquidation emergency waiting for the plan in flight.
        hedge_check: why the legs are still to be checked for a hedge ("" when they are not).
        hedge_check_after_ms: not checked before this time.
        failed_plans: plans in a row that ended FAILED (each one's hedge check waits longer).
        exiting: the exit under way until the legs are flat (``EXIT`` or ``EMERGENCY_EXIT``),
            with ``exit_kind`` (:data:`ExitKind`), ``exit_reason``, ``exit_spot_first``,
            ``exit_sequence`` (its latest plan) and ``exit_attempts`` (its plans that ended
            with the legs open); the next attempt not before ``exit_retry_after_ms``.
    """

    legs: LegBook
    spot_price: Decimal = ZERO
    spot_price_ms: int = 0
    perp_price: Decimal = ZERO
    perp_price_ms: int = 0
    last_handled_funding_ms: int = 0
    last_sequence_id: int = 0
    in_flight_sequence: int | None = None
    toxic_readings: int = 0
    last_basis_check_ms: int = 0
    emergency_leg: str | None = None
    hedge_check: str = ""
    hedge_check_after_ms: int = 0
    failed_plans: int = 0
    exiting: Action | None = None
    exit_kind: ExitKind = ""
    exit_sequence: int = 0
    exit_reason: str = ""
    exit_spot_first: bool = False
    exit_attempts: int = 0
    exit_retry_after_ms: int = 0


class Strategy:
    """Funding-rate arbitrage decisions for one spot/perp pair. Pure and deterministic."""

    def __init__(self, config: ArbitrageConfig, state: StrategyState | None = None) -> None:
        self._config = config
        if state is None:
            state = StrategyState(legs=LegBook.for_instruments(config.agent, (config.spot, config.perp)))
        keys = {leg.key for leg in state.legs.legs}
        if keys != {config.spot_key, config.perp_key} or state.legs.agent != config.agent:
            raise ValueError(
                f"state legs {sorted(keys)} of agent {state.legs.agent!r} do not match the config "
                f"({config.spot_key}, {config.perp_key} of {config.agent!r})"
            )
        self._state = state
        self._gate: tuple[TradingStateKind, bool] = (TradingStateKind.ACTIVE, False)

    @classmethod
    def after_restart(
        cls, config: ArbitrageConfig, legs: LegBook, *, last_sequence_id: int = 0, check_after_ms: int = 0
    ) -> Strategy:
        """A strategy resuming with ``legs`` as loaded after a (re)start, armed to check them once
        (not before ``check_after_ms``: a cut plan's order that could not be resolved may still
        fill, and its fill arrives on the order stream).

        ``last_sequence_id`` is the last plan known to have run (a cut plan's), so new plans never
        reuse its client order ids even when the clock reads earlier.
        """
        state = StrategyState(
            legs=legs,
            last_sequence_id=last_sequence_id,
            hedge_check="after a restart",
            hedge_check_after_ms=check_after_ms,
        )
        return cls(config, state)

    def set_gate(self, trading_state: TradingStateKind, *, paused: bool) -> None:
        """The trading state and pause the next decisions obey (see :func:`plan_refusal`)."""
        self._gate = (trading_state, paused)

    @property
    def config(self) -> ArbitrageConfig:
        return self._config

    @property
    def state(self) -> StrategyState:
        """The current state (immutable; safe to checkpoint)."""
        return self._state

    @property
    def in_flight(self) -> bool:
        """True while a plan handed out has not been answered."""
        return self._state.in_flight_sequence is not None

    def is_flat(self) -> bool:
        """True when both legs are below the dust threshold."""
        return self._state.legs.is_flat(self._config.dust_qty)

    def direction(self) -> Direction | None:
        """The open position's direction (from the perp leg, else the spot leg); ``None`` if flat."""
        dust = self._config.dust_qty
        perp_size = self._state.legs.size(self._config.perp_key)
        spot_size = self._state.legs.size(self._config.spot_key)
        if abs(perp_size) >= dust:
            return Direction.POSITIVE if perp_size < 0 else Direction.NEGATIVE
        if abs(spot_size) >= dust:
            return Direction.POSITIVE if spot_size > 0 else Direction.NEGATIVE
        return None

    # -- handlers -------------------------------------------------------------------------------

    def on_funding(self, update: FundingUpdate | FundingRate, now_ms: int) -> Decision:
        """Evaluate entry or exit on a funding update of the perp."""
        funding = update.funding if isinstance(update, FundingUpdate) else update
        perp = self._config.perp
        if funding.symbol != perp.symbol or funding.venue not in ("", perp.venue):
            return Decision(Action.IGNORE, f"funding for {funding.venue}:{funding.symbol} is not our perp")
        if funding.next_funding_ms <= 0:
            return Decision(Action.IGNORE, "funding update without a next funding time")
        if funding.next_funding_ms <= self._state.last_handled_funding_ms:
            return Decision(
                Action.IGNORE,
                f"funding period {funding.next_funding_ms} already handled "
                f"(last {self._state.last_handled_funding_ms})",
            )
        if self._state.in_flight_sequence is not None:
            return Decision(
                Action.IGNORE, f"sequence {self._state.in_flight_sequence} in flight; funding update skipped"
            )
        if self._state.hedge_check:
            return Decision(
                Action.IGNORE,
                f"legs to be checked for a hedge {self._state.hedge_check}; funding update skipped",
            )
        stale = self._stale_reason(now_ms, funding.time_ms)
        if stale:
            return Decision(Action.IGNORE, stale)
        interval = funding.interval_hours if funding.interval_hours > 0 else perp.funding_interval_hours
        if interval <= 0:
            return Decision(Action.IGNORE, "funding update without a funding interval")

        handled = self._state.last_handled_funding_ms
        self._state = replace(self._state, last_handled_funding_ms=funding.next_funding_ms)
        spread = funding.rate - SPOT_FUNDING_RATE
        apr = funding_apr(spread, interval)
        described = f"rate {_show(funding.rate)} per {interval}h = APR {_show(apr)}"
        direction = self.direction()
        if direction is None:
            decision = self._decide_entry(apr, described, now_ms)
        else:
            decision = self._decide_exit_on_funding(direction, apr, described, now_ms)
        if decision.waits:  # the period is not used up: decided again once the gate allows
            self._state = replace(self._state, last_handled_funding_ms=handled)
        return decision

    def on_price(self, update: PriceChange, now_ms: int) -> Decision:
        """Record a leg's price; with a position open, read the basis for the toxic-basis rule."""
        key = leg_key(update.venue, update.symbol)
        if key not in (self._config.spot_key, self._config.perp_key):
            return Decision(Action.IGNORE, f"price for {key} is not one of our legs")
        if not update.price.is_finite() or update.price <= 0:
            return Decision(Action.IGNORE, f"price {update.price} for {key} is not positive")
        price_ms = update.received_ms or update.exchange_ms or now_ms
        if key == self._config.spot_key:
            if price_ms < self._state.spot_price_ms:
                return Decision(Action.IGNORE, f"spot price from {price_ms} is older than the one held")
            self._state = replace(self._state, spot_price=update.price, spot_price_ms=price_ms)
        else:
            if price_ms < self._state.perp_price_ms:
                return Decision(Action.IGNORE, f"perp price from {price_ms} is older than the one held")
            self._state = replace(self._state, perp_price=update.price, perp_price_ms=price_ms)
        checked = self._check_hedge(now_ms)
        if checked is not None:
            return checked
        if self._state.hedge_check:
            return Decision(Action.IGNORE, f"legs to be checked for a hedge {self._state.hedge_check}")
        continued = self._continue_exit(now_ms)
        if continued is not None:
            return continued
        return self._check_basis(now_ms)

    def on_position(self, update: PositionUpdate | Position, now_ms: int) -> Decision:
        """Re-sync the leg (unless a plan is in flight) and apply the liquidation guard."""
        position = update.position if isinstance(update, PositionUpdate) else update
        key = position_key(position)
        if key not in (self._config.spot_key, self._config.perp_key):
            return Decision(Action.IGNORE, f"position {key} is not one of our legs")
        if self._state.in_flight_sequence is None:
            self._state = replace(self._state, legs=self._state.legs.resync(position))

        known_price = self._state.spot_price if key == self._config.spot_key else self._state.perp_price
        mark = position.mark_price if position.mark_price > 0 else known_price
        distance = liquidation_distance(position, mark)
        if distance is None:
            return Decision(
                Action.HOLD,
                f"{key}: no liquidation risk to measure (size {position.size}, "
                f"liquidation price {position.liquidation_price}, mark {mark})",
            )
        threshold = self._config.liquidation_threshold
        if distance >= threshold:
            return Decision(
                Action.HOLD, f"{key}: liquidation distance {_show(distance)} >= threshold {_show(threshold)}"
            )
        reason = (
            f"{key}: liquidation distance {_show(distance)} < threshold {_show(threshold)} "
            f"(mark {mark}, liquidation {position.liquidation_price}, size {position.size})"
        )
        if self._state.in_flight_sequence is not None:
            self._state = replace(self._state, emergency_leg=key)
            return Decision(
                Action.EMERGENCY_EXIT,
                f"{reason}; deferred until sequence {self._state.in_flight_sequence} completes",
            )
        return self._exit(
            Action.EMERGENCY_EXIT, reason, now_ms, kind="emergency", spot_first=key == self._config.spot_key
        )

    def on_execution_result(
        self, done: Done, now_ms: int, *, legs: LegBook | None = None, orders_unknown: bool = False
    ) -> Decision:
        """Take a plan's result: apply its fills to the legs and end the single flight.

        ``legs``: the legs as recorded (every fill of the agent's orders, however it was
        learned); they replace the plan's fills, and when they differ from them (a fill outside
        the plan) the hedge is checked. A ``FAILED`` plan has its hedge checked too; with
        ``orders_unknown`` (an order's outcome could not be learned) not before
        ``unknown_order_settle_ms``.
        """
        in_flight = self._state.in_flight_sequence
        if done.sequence_id != in_flight:
            return Decision(
                Action.IGNORE, f"result for sequence {done.sequence_id}, but the one in flight is {in_flight}"
            )
        planned = self._state.legs
        for fill in done.fills:
            planned = planned.apply_fill(fill if fill.time_ms else replace(fill, time_ms=now_ms))
        recorded = planned if legs is None else self._checked_legs(legs)
        hedge_check, after_ms = self._state.hedge_check, self._state.hedge_check_after_ms
        failed_plans = 0
        if done.outcome is Outcome.FAILED:
            failed_plans = self._state.failed_plans + 1
            hedge_check = "after a failed plan"
            # a failure that repeats (Redis or an executor down) must not loop: the first check
            # is at once, each next one waits twice as long
            first, longest = FAILED_PLAN_BACKOFF_MS
            wait = min(longest, first << (failed_plans - 2)) if failed_plans > 1 else 0
            if orders_unknown:
                wait = max(wait, self._config.unknown_order_settle_ms)
            after_ms = max(after_ms, now_ms + wait)
        elif not hedge_check and self._sizes(recorded) != self._sizes(planned):
            hedge_check = "after a fill outside the plan"
        emergency_leg = self._state.emergency_leg
        exiting, attempts = self._state.exiting, self._state.exit_attempts
        retry_after_ms = 0
        if done.sequence_id != self._state.exit_sequence or recorded.is_flat(self._config.dust_qty):
            exiting, attempts = None, 0
        elif exiting is not None:
            first, longest = EXIT_RETRY_MS
            retry_after_ms = now_ms + min(longest, first << min(attempts, 16))
            attempts += 1
        self._state = replace(
            self._state,
            exiting=exiting,
            exit_attempts=attempts,
            exit_retry_after_ms=retry_after_ms,
            legs=recorded,
            in_flight_sequence=None,
            toxic_readings=0,
            last_basis_check_ms=0,
            emergency_leg=None,
            hedge_check=hedge_check,
            hedge_check_after_ms=after_ms if hedge_check else 0,
            failed_plans=failed_plans,
        )
        summary = f"sequence {done.sequence_id} {done.outcome.value}: {done.reason}"
        if exiting is not None and emergency_leg is None:
            spot_size, perp_size = self._sizes(recorded)
            summary += (
                f"; legs still open (spot {spot_size}, perp {perp_size}): the exit goes on after "
                f"{retry_after_ms - now_ms} ms"
            )
        if emergency_leg is not None and not self.is_flat():
            return self._exit(
                Action.EMERGENCY_EXIT,
                f"{summary}; liquidation emergency on {emergency_leg} still open",
                now_ms,
                kind="emergency",
                spot_first=emergency_leg == self._config.spot_key,
            )
        checked = self._check_hedge(now_ms)
        if checked is not None:
            return replace(checked, reason=f"{summary}; {checked.reason}")
        return Decision(Action.HOLD, summary)

    def sync_legs(self, legs: LegBook, now_ms: int) -> Decision:
        """Follow the legs as recorded after a fill the strategy did not make (an order of an
        earlier plan that filled late); ignored while a plan is in flight (it owns the legs and
        takes them with its result). A change arms the hedge check."""
        if self._state.in_flight_sequence is not None:
            return Decision(
                Action.IGNORE, f"sequence {self._state.in_flight_sequence} in flight; legs follow its result"
            )
        recorded = self._checked_legs(legs)
        if self._sizes(recorded) == self._sizes(self._state.legs):
            self._state = replace(self._state, legs=recorded)
            return Decision(Action.IGNORE, "legs unchanged")
        self._state = replace(
            self._state,
            legs=recorded,
            hedge_check=self._state.hedge_check or "after a fill outside a plan",
        )
        checked = self._check_hedge(now_ms)
        if checked is not None:
            return checked
        return Decision(
            Action.HOLD, f"legs changed outside a plan; hedge to be checked {self._state.hedge_check}"
        )

    # -- rules ----------------------------------------------------------------------------------

    def _decide_entry(self, apr: Decimal, described: str, now_ms: int) -> Decision:
        config = self._config
        threshold = config.entry_threshold_apr
        against = (
            f"threshold {_show(threshold)} (min {_show(config.min_spread_apr)} + "
            f"fees {_show(config.round_trip_fee_apr)})"
        )
        if apr > threshold:
            direction, action = Direction.POSITIVE, Action.ENTER_POSITIVE
            reason = f"flat; {described} > {against}: long spot, short perp"
        elif apr < -threshold:
            if not config.use_margin:
                return Decision(
                    Action.HOLD,
                    f"flat; {described} < -{against}, but use_margin is off: cannot short spot",
                )
            direction, action = Direction.NEGATIVE, Action.ENTER_NEGATIVE
            reason = f"flat; {described} < -{against}: short spot on margin, long perp"
        else:
            return Decision(Action.HOLD, f"flat; |{described}| <= {against}")
        waiting = self._waiting(action, reason)
        if waiting is not None:
            return waiting
        sequence_id = self._next_sequence_id(now_ms)
        try:
            plan = build_entry_plan(
                agent=config.agent,
                sequence_id=sequence_id,
                direction=direction,
                spot=config.spot,
                perp=config.perp,
                spot_price=self._state.spot_price,
                perp_price=self._state.perp_price,
                base_qty=config.order_base_qty,
                quote_notional=config.order_quote_notional,
                spot_buy_fee=config.spot_buy_fee,
            )
        except PlanError as error:
            return Decision(Action.HOLD, f"{reason}; cannot enter: {error}")
        self._start(sequence_id)
        self._state = replace(self._state, exiting=None, exit_attempts=0, exit_retry_after_ms=0)
        return Decision(action, reason, plan)

    def _decide_exit_on_funding(
        self, direction: Direction, apr: Decimal, described: str, now_ms: int
    ) -> Decision:
        carry = apr if direction is Direction.POSITIVE else -apr
        exit_apr = self._config.exit_spread_apr
        hedge = (
            "" if self._state.legs.is_delta_neutral(self._config.dust_qty) else " (legs not delta-neutral)"
        )
        reason = f"{direction.value.lower()} position open{hedge}; {described}, carry {_show(carry)}"
        state = self._state
        if carry < exit_apr:
            if state.exiting is not None:  # the exit under way goes on at its own pace
                return Decision(Action.HOLD, f"{reason} < exit {_show(exit_apr)}; an exit is under way")
            return self._exit(Action.EXIT, f"{reason} < exit {_show(exit_apr)}", now_ms, kind="funding")
        reason = f"{reason} >= exit {_show(exit_apr)}"
        if state.exiting is not None and state.exit_kind == "funding":  # a new period says hold
            reason += f"; the unfinished exit ({state.exit_reason}) is dropped"
            self._state = replace(state, exiting=None, exit_attempts=0, exit_retry_after_ms=0)
        return Decision(Action.HOLD, reason)

    def _check_hedge(self, now_ms: int) -> Decision | None:
        """The one-time hedge check of the legs (see the module's docstring); ``None`` until it
        is due (both leg prices known, no plan in flight, its wait over)."""
        state = self._state
        why = state.hedge_check
        if not why or state.in_flight_sequence is not None or now_ms < state.hedge_check_after_ms:
            return None
        if state.spot_price_ms <= 0 or state.perp_price_ms <= 0:
            return None
        self._state = replace(state, hedge_check="", hedge_check_after_ms=0)
        config = self._config
        spot_size, perp_size = state.legs.size(config.spot_key), state.legs.size(config.perp_key)
        described = f"spot {spot_size}, perp {perp_size}"
        if self.is_flat():
            self._state = replace(self._state, failed_plans=0)
            return Decision(Action.HOLD, f"legs flat {why} ({described})")
        if state.legs.is_delta_neutral(config.dust_qty):
            self._state = replace(self._state, failed_plans=0)
            return Decision(Action.HOLD, f"legs hedged {why}: {described}; kept")
        decision = self._exit(
            Action.EXIT, f"legs unhedged {why}: {described}; closing both", now_ms, kind="hedge"
        )
        if decision.waits:  # still armed: checked again on a later event
            self._state = replace(self._state, hedge_check=why)
        return decision

    def _checked_legs(self, legs: LegBook) -> LegBook:
        keys = {leg.key for leg in legs.legs}
        if keys != {self._config.spot_key, self._config.perp_key} or legs.agent != self._config.agent:
            raise ValueError(
                f"legs {sorted(keys)} of agent {legs.agent!r} do not match the config "
                f"({self._config.spot_key}, {self._config.perp_key} of {self._config.agent!r})"
            )
        return legs

    def _sizes(self, legs: LegBook) -> tuple[Decimal, Decimal]:
        return legs.size(self._config.spot_key), legs.size(self._config.perp_key)

    def _check_basis(self, now_ms: int) -> Decision:
        config = self._config
        direction = self.direction()
        if direction is None:
            if self._state.toxic_readings:
                self._state = replace(self._state, toxic_readings=0)
            return Decision(Action.HOLD, "flat; no basis check")
        if self._state.in_flight_sequence is not None:
            return Decision(
                Action.IGNORE, f"sequence {self._state.in_flight_sequence} in flight; no basis check"
            )
        if self._state.exiting is not None:
            return Decision(Action.IGNORE, "an exit is under way; no basis check")
        stale = self._stale_reason(now_ms, None)
        if stale:
            return Decision(Action.IGNORE, stale)
        last = self._state.last_basis_check_ms
        if config.toxic_check_interval_ms and last and now_ms - last < config.toxic_check_interval_ms:
            return Decision(Action.IGNORE, f"basis read {now_ms - last} ms ago")
        current = basis(self._state.spot_price, self._state.perp_price)
        if direction is Direction.POSITIVE:
            toxic = current < config.toxic_basis
            rule = f"basis {_show(current)} {'<' if toxic else '>='} {_show(config.toxic_basis)}"
        else:
            toxic = current > -config.toxic_basis
            rule = f"basis {_show(current)} {'>' if toxic else '<='} {_show(-config.toxic_basis)}"
        if not toxic:
            self._state = replace(self._state, toxic_readings=0, last_basis_check_ms=now_ms)
            return Decision(Action.HOLD, f"{rule}: not toxic")
        readings = self._state.toxic_readings + 1
        self._state = replace(self._state, toxic_readings=readings, last_basis_check_ms=now_ms)
        reason = f"{rule}: toxic reading {readings} of {config.toxic_count}"
        if readings < config.toxic_count:
            return Decision(Action.HOLD, reason)
        return self._exit(Action.EXIT, reason, now_ms, kind="basis")

    def _continue_exit(self, now_ms: int) -> Decision | None:
        """The next attempt of an exit that left the legs open, once it is due; else ``None``."""
        state = self._state
        if state.exiting is None or state.in_flight_sequence is not None:
            return None
        if self.is_flat():  # flat by a position update or a late fill: nothing left to exit
            self._state = replace(state, exiting=None, exit_attempts=0, exit_retry_after_ms=0)
            return None
        if now_ms < state.exit_retry_after_ms:
            return None
        spot_size, perp_size = self._sizes(state.legs)
        reason = (
            f"{state.exit_reason}; attempt {state.exit_attempts + 1}: spot {spot_size}, perp {perp_size} "
            "still open"
        )
        decision = self._exit(
            state.exiting,
            reason,
            now_ms,
            kind=state.exit_kind,
            spot_first=state.exit_spot_first,
            origin=state.exit_reason,
        )
        if decision.plan is None and not decision.waits:  # what is left cannot be traded
            self._state = replace(self._state, exiting=None, exit_attempts=0, exit_retry_after_ms=0)
            return replace(decision, reason=f"{decision.reason}; the exit ends here")
        return decision

    def _exit(
        self,
        action: Action,
        reason: str,
        now_ms: int,
        *,
        kind: ExitKind,
        spot_first: bool = False,
        origin: str = "",
    ) -> Decision:
        """Start an exit plan (``origin``: the reason of the unfinished exit this one continues).
        An unfinished emergency exit is never weakened: a later ordinary exit runs as it."""
        state = self._state
        if state.exiting is Action.EMERGENCY_EXIT and action is Action.EXIT and not self.is_flat():
            action, kind, spot_first = Action.EMERGENCY_EXIT, "emergency", state.exit_spot_first
        waiting = self._waiting(action, reason)
        if waiting is not None:
            return waiting
        config = self._config
        sequence_id = self._next_sequence_id(now_ms)
        try:
            plan = ExitPlan(
                agent=config.agent,
                sequence_id=sequence_id,
                spot=config.spot,
                perp=config.perp,
                spot_size=self._state.legs.size(config.spot_key),
                perp_size=self._state.legs.size(config.perp_key),
                spot_price=self._state.spot_price,
                perp_price=self._state.perp_price,
                spot_first=spot_first,
                emergency=action is Action.EMERGENCY_EXIT,
                spot_buy_fee=config.spot_buy_fee,
            )
        except PlanError as error:
            return Decision(Action.HOLD, f"{reason}; cannot exit: {error}")
        self._start(sequence_id)
        self._state = replace(
            self._state,
            exiting=action,
            exit_kind=kind,
            exit_sequence=sequence_id,
            exit_reason=origin or reason,
            exit_spot_first=spot_first,
            exit_attempts=state.exit_attempts if state.exiting is not None else 0,
            exit_retry_after_ms=0,
        )
        return Decision(action, reason, plan)

    # -- helpers --------------------------------------------------------------------------------

    def _stale_reason(self, now_ms: int, funding_ms: int | None) -> str:
        """Why the legs' data is too old to act on, or ``""`` when it is fresh."""
        limit = self._config.max_data_age_ms
        for name, seen_ms in (
            ("spot price", self._state.spot_price_ms),
            ("perp price", self._state.perp_price_ms),
        ):
            if seen_ms <= 0:
                return f"no {name} yet"
            if now_ms - seen_ms > limit:
                return f"{name} is {now_ms - seen_ms} ms old (limit {limit})"
        if funding_ms and now_ms - funding_ms > limit:
            return f"funding update is {now_ms - funding_ms} ms old (limit {limit})"
        return ""

    def _waiting(self, action: Action, reason: str) -> Decision | None:
        """A ``HOLD`` that waits when the gate refuses ``action``'s plan now, else ``None``."""
        trading_state, paused = self._gate
        refused = plan_refusal(action, trading_state, paused=paused)
        if not refused:
            return None
        return Decision(Action.HOLD, f"{reason}; {action.value} waits: {refused}", waits=True)

    def _next_sequence_id(self, now_ms: int) -> int:
        """Strictly increasing and at least ``now_ms``, so ids stay unique across a lost state."""
        return max(self._state.last_sequence_id + 1, now_ms)

    def _start(self, sequence_id: int) -> None:
        self._state = replace(
            self._state,
            last_sequence_id=sequence_id,
            in_flight_sequence=sequence_id,
            toxic_readings=0,
            emergency_leg=None,
        )
