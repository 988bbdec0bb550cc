"""The live funding-rate arbitrage agent: pure decisions, legs in Redis, orders via two executors.

An executor serves one venue with one market type, so a spot/perp pair needs two: the spot (or
margin) executor and the perpetual one. The agent drives the pure plan
(:class:`~opensqt.arbitrage.plans.EntryPlan` / :class:`~opensqt.arbitrage.plans.ExitPlan`) step by
step: each step is one MARKET order sent through the executor of its leg (a DBOS workflow keyed
by the step's client order id, so a re-send after an ambiguous failure never doubles it), waited
for until final, and its executed quantity is fed back to the plan. The plan holds the rules of
behaviour.md §3: a zero spot fill aborts, the perp follows the spot's executed quantity, an
unhedged spot fill is unwound, an exit's second leg is retried (with back-off) until flat.

Legs (Redis, :class:`~opensqt.arbitrage.manager.LegManager`):

- every executed order of the agent is applied once, keyed by its client order id, from
  whichever reports it first: the plan's step result or the order stream (durable JetStream
  consumer; a fill the agent missed while down arrives there);
- the perpetual leg is re-synced from the venue's position snapshots (authoritative) whenever no
  plan is in flight, and at start from the last snapshot on the position stream.

Every plan handed out by the strategy is answered exactly once: with its outcome, ``ABORTED``
when the trading state or a pause refuses it, ``FAILED`` when a step could not be run or its
order's outcome could not be learned. The strategy then takes the legs as recorded in Redis
(the plan's fills and any the order stream brought) and checks their hedge: an unhedged leg is
closed (after a wait when an order's outcome is unknown, so a late fill is counted first). A
fill that arrives on the order stream while no plan runs (an order of a failed plan that filled
after all) is given to the strategy the same way.

Crash recovery (:mod:`opensqt.arbitrage.journal`): each step is recorded in the plan journal
before its order is sent, and the record is cleared when the plan's Done is taken. A record found
at start names the orders a killed process may have left behind. Each is resolved by its client
order id: looked up on its executor and waited for until final; when the venue has no such order
it is sent again with the same client id, which joins the executor's workflow if that is still
sending it (its answer is then the only one) and otherwise places the step the plan had decided
on. Each executed quantity is applied to the legs once (keyed by client order id, like every
other fill). The strategy then starts armed to check the legs once both prices are known: hedged
or flat legs are kept, unhedged ones are closed (:meth:`Strategy.after_restart`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TracerProvider

from opensqt.arbitrage.config import ArbitrageConfig
from opensqt.arbitrage.execution import (
    fill_of_own_order,
    order_for_step,
    retry_delay_s,
    step_result,
)
from opensqt.arbitrage.journal import InMemoryPlanJournal, PlanJournal, PlanRecord, RecordedStep
from opensqt.arbitrage.legs import Fill, LegBook, position_key
from opensqt.arbitrage.manager import LegManager
from opensqt.arbitrage.plans import Done, EntryPlan, ExitPlan, OrderStep, Outcome, StepResult
from opensqt.arbitrage.strategy import Action, Decision, Strategy, plan_refusal
from opensqt.clock import Clock
from opensqt.engine.live import TradingStateSource
from opensqt.engine.service import AgentFigures
from opensqt.errors import OpenSQTError, Retryable
from opensqt.model import FundingUpdate, InventorySlot, Leg, Order, OrderUpdate, PositionUpdate, PriceChange
from opensqt.model.money import ZERO
from opensqt.telemetry import ServiceMetrics, get_logger
from opensqt.transport.bus import EventContext

__all__ = ["ArbitrageAgent", "PlanGateway", "StepUnknownError"]

log = get_logger(__name__)

Plan = EntryPlan | ExitPlan


class PlanGateway(Protocol):
    """What the agent needs of one executor (see :class:`~opensqt.engine.gateway.ExecutorGateway`)."""

    async def place(self, order: Order) -> Order: ...

    async def cancel(self, symbol: str, client_order_id: str) -> Order | None: ...

    async def get_order(self, symbol: str, client_order_id: str) -> Order | None: ...


class StepUnknownError(OpenSQTError):
    """What a step's order did could not be learned (the executor stayed unreachable)."""


@dataclass(frozen=True, slots=True)
class _Ended:
    """How a plan ended: its result, and whether an order's outcome could not be learned (a step
    raised after its order may have been sent)."""

    done: Done
    orders_unknown: bool = False


class ArbitrageAgent:
    """One spot/perp funding-rate arbitrage (implements the strategy service's AgentHandle).

    Args:
        config: the pair and thresholds; its instruments come from the two executors.
        legs: the agent's legs in Redis.
        spot_gateway, perp_gateway: the executors of the spot and the perpetual venue.
        trading_state: where the agent reads the trading state it obeys.
        settle_timeout_s: how long a step's order may stay working before it is cancelled.
        send_attempts: sends of one order (same client id) on retryable errors before looking
            it up.
        journal: where the running plan's steps are recorded for a restart (default: in memory,
            which survives nothing).
    """

    kind = "arbitrage_bot"

    def __init__(
        self,
        *,
        config: ArbitrageConfig,
        legs: LegManager,
        spot_gateway: PlanGateway,
        perp_gateway: PlanGateway,
        clock: Clock,
        trading_state: TradingStateSource,
        metrics: ServiceMetrics | None = None,
        account: str = "",
        tracer_provider: TracerProvider | None = None,
        settle_timeout_s: float = 10.0,
        send_attempts: int = 5,
        journal: PlanJournal | None = None,
    ) -> None:
        if legs.agent != config.agent:
            raise ValueError(f"legs of agent {legs.agent!r} given to agent {config.agent!r}")
        self.name = config.agent
        self.symbols: tuple[str, ...] = tuple(dict.fromkeys((config.spot.symbol, config.perp.symbol)))
        self.paused = False
        self.pause_reason = ""
        self.reducing_reason = ""  # the arbitrage bot has no reconciliation drift of its own
        # Set when start() failed: the agent stays paused with it, whatever Pause or Resume say.
        self.start_error = ""
        self._config = config
        self._legs = legs
        self._gateways: dict[str, PlanGateway] = {
            config.spot.venue: spot_gateway,
            config.perp.venue: perp_gateway,
        }
        self._leg_keys = frozenset({config.spot_key, config.perp_key})
        self._clock = clock
        self._trading_state = trading_state
        self._metrics = metrics
        self._account = account
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(
            "opensqt.engine.arbitrage_live"
        )
        self._settle_timeout_s = settle_timeout_s
        self._send_attempts = max(1, send_attempts)
        self._journal = journal if journal is not None else InMemoryPlanJournal(config.agent)
        self._strategy: Strategy | None = None
        self._plans: asyncio.Queue[tuple[Plan, Action, SpanContext | None]] = asyncio.Queue()
        self._held_funding: FundingUpdate | None = None
        self._latest_funding: FundingUpdate | None = None
        self.plans_started = 0
        self.plans_done: dict[str, int] = {}
        self.orders_sent = 0
        self.last_decision = ""
        self.last_event_ms = 0
        self._perp_price: Decimal | None = None
        # client order id -> a fill of a plan's step that Redis refused (retried after the plan)
        self._unrecorded: dict[str, Fill] = {}

    # --- AgentHandle -----------------------------------------------------------------------

    async def slots(self, symbol: str = "") -> list[InventorySlot]:
        return []

    async def legs(self) -> list[Leg]:
        return [self._legs.legs[key] for key in sorted(self._legs.legs) if key in self._leg_keys]

    def pause(self, reason: str) -> None:
        if self.start_error:
            return  # it never ran: its reason stays
        self.paused, self.pause_reason = True, reason
        log.info("agent_paused", agent=self.name, reason=reason)

    def figures(self) -> AgentFigures:
        """Its orders are market orders (none rests); exposure is the legs' net at the perp's price."""
        net = sum((leg.size for key, leg in self._legs.legs.items() if key in self._leg_keys), ZERO)
        price = self._perp_price
        return AgentFigures(
            working_orders=0,
            exposure=net * price if price is not None else None,
            last_event_ms=self.last_event_ms,
        )

    def resume(self) -> None:
        if self.start_error:
            log.warning("agent_not_started", agent=self.name, reason=self.start_error)
            return
        self.paused, self.pause_reason = False, ""
        log.info("agent_resumed", agent=self.name)
        held, self._held_funding = self._held_funding, None
        if held is not None and self._strategy is not None:
            self._take(self.strategy.on_funding(held, self._clock.now_ms()))

    # --- start -----------------------------------------------------------------------------

    @property
    def strategy(self) -> Strategy:
        """The decision core, its gate set to the trading state and pause as they are now (so
        it hands out no plan they would refuse)."""
        if self._strategy is None:
            raise RuntimeError(f"agent {self.name} has not started")
        self._strategy.set_gate(self._trading_state.current_kind(), paused=self.paused)
        return self._strategy

    async def start(self) -> None:
        """Load the legs from Redis (creating them flat), resolve the orders of a plan a killed
        process left behind, and seed the strategy with the legs, armed to check their hedge."""
        config = self._config
        await self._legs.load()
        spot = await self._legs.ensure_leg(config.spot.venue, config.spot.symbol, config.spot.market_type)
        perp = await self._legs.ensure_leg(config.perp.venue, config.perp.symbol, config.perp.market_type)
        last_sequence_id = 0
        check_after_ms = 0
        record = await self._journal.load()
        if record is not None:
            last_sequence_id = record.sequence_id
            if not await self._recover(record):
                # an order of the cut plan may still fill: its fill comes on the order stream
                check_after_ms = self._clock.now_ms() + config.unknown_order_settle_ms
        spot = self._legs.leg(spot.key) or spot
        perp = self._legs.leg(perp.key) or perp
        self._strategy = Strategy.after_restart(
            config,
            LegBook(self.name, (spot, perp)),
            last_sequence_id=last_sequence_id,
            check_after_ms=check_after_ms,
        )
        self._show_legs()
        if self._metrics is not None:
            for outcome in Outcome:  # every series from 0, so a first FAILED shows in increase()
                self._metrics.arbitrage_plans.labels(self.name, outcome.value)
        log.info(
            "arbitrage_agent_loaded",
            agent=self.name,
            spot=config.spot_key,
            perp=config.perp_key,
            spot_size=str(spot.size),
            perp_size=str(perp.size),
        )

    async def _recover(self, record: PlanRecord) -> bool:
        """Resolve every step of a cut plan by its client order id and count its fills once;
        whether every step was resolved."""
        log.warning("plan_recovering", agent=self.name, workflow=record.workflow_id,
                    steps=[recorded.step.client_order_id for recorded in record.steps])  # fmt: skip
        unresolved: list[str] = []
        for recorded in record.steps:
            step = recorded.step
            try:
                result = await self._resolve_step(step)
            except OpenSQTError as exc:
                log.error("plan_step_unresolved", agent=self.name, client_order_id=step.client_order_id,
                          error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                unresolved.append(step.client_order_id)
                continue
            log.info("plan_step_recovered", agent=self.name, client_order_id=step.client_order_id,
                     venue=step.venue, side=step.side.value, qty=str(step.quantity),
                     filled=str(result.filled_qty), note=result.error)  # fmt: skip
            if result.filled_qty > 0:
                fill = self._fill(step, result, recorded.reference_price)
                await self._record_fill(fill, step.client_order_id, source="recovery")
        if unresolved:
            # kept for the next start; the order stream still reports their fills meanwhile
            log.error("plan_recovery_incomplete", agent=self.name, workflow=record.workflow_id,
                      unresolved=unresolved)  # fmt: skip
            return False
        await self._journal.clear()
        log.info("plan_recovered", agent=self.name, workflow=record.workflow_id, steps=len(record.steps))
        return True

    async def _resolve_step(self, step: OrderStep) -> StepResult:
        """What a step of a cut plan executed, once its order is final.

        The venue's answer by client id comes first. When the venue has no such order, that is
        not proof there will never be one (the executor's workflow outlives this process and may
        still be sending it), so the order is sent again with the same client id: the executor
        then answers with that workflow's result, or places the step if it never left here.
        """
        gateway = self._gateways[step.venue]
        for attempt in range(self._send_attempts):
            try:
                found = await gateway.get_order(step.symbol, step.client_order_id)
            except Retryable as exc:
                log.warning("step_lookup_retry", client_order_id=step.client_order_id, error=str(exc))
                await asyncio.sleep(retry_delay_s(attempt + 1))
                continue
            if found is not None:
                return step_result(
                    step, await self._settle(gateway, found), buy_fee=self._buy_fee(step.venue)
                )
            return await self._run_step(step)
        raise StepUnknownError(f"{step.client_order_id}: the executor stayed unreachable")

    # --- events ----------------------------------------------------------------------------

    async def on_price(self, price: PriceChange, ctx: EventContext) -> None:
        if f"{price.venue}:{price.symbol}" not in self._leg_keys:
            return
        strategy = self.strategy
        now = self.last_event_ms = self._clock.now_ms()
        if f"{price.venue}:{price.symbol}" == self._config.perp_key:
            self._perp_price = price.price
        self._take(strategy.on_price(price, now))
        # The monitor publishes funding only when it changes: an update that came before both
        # legs had a price was gated, so offer it again. Once its period is handled the strategy
        # ignores it at once.
        self._offer_latest_funding(now)

    def _offer_latest_funding(self, now_ms: int) -> None:
        latest = self._latest_funding
        if latest is None or self.paused or self._strategy is None:
            return
        strategy = self.strategy
        if not strategy.in_flight:
            decision = strategy.on_funding(latest, now_ms)
            if decision.action is not Action.IGNORE:
                self._take(decision)

    def trading_state_changed(self) -> None:
        """A decision the old state refused (it waited, e.g. a funding exit while HALTED) is
        offered again now, not at the next price."""
        self._offer_latest_funding(self._clock.now_ms())

    async def on_funding(self, update: FundingUpdate, ctx: EventContext) -> None:
        self.last_event_ms = self._clock.now_ms()
        self._latest_funding = update
        if self.paused:
            # evaluated on resume: a pause must not use up the funding period
            self._held_funding = update
            return
        self._take(self.strategy.on_funding(update, self._clock.now_ms()))

    async def on_position(self, update: PositionUpdate, ctx: EventContext) -> None:
        position = update.position
        if position_key(position) not in self._leg_keys:
            return
        if not self.strategy.in_flight:
            # a plan in flight owns the legs; its fills are applied as they come
            try:
                await self._legs.resync([position])
            except Exception as exc:  # the liquidation guard below must still run
                log.error("leg_resync_failed", agent=self.name, leg=position_key(position),
                          error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            else:
                # the venue's position holds those fills: applying them again would count twice
                key = position_key(position)
                self._unrecorded = {cid: f for cid, f in self._unrecorded.items() if f.key != key}
                self._show_legs()
        # the gate as it is after the await (an emergency exit must see the state of now)
        self._take(self.strategy.on_position(update, self._clock.now_ms()))

    async def on_order_update(self, update: OrderUpdate, ctx: EventContext | None = None) -> None:
        """Count a final order of this agent on its leg (once per client order id)."""
        order = update.order
        fill = fill_of_own_order(order, self.name, self._leg_keys, buy_fee=self._buy_fee(order.venue))
        if fill is None:
            return
        now = self.last_event_ms = self._clock.now_ms()
        changed = await self._record_fill(fill, order.client_order_id, source="order_stream")
        self._unrecorded.pop(order.client_order_id, None)  # Redis has it now
        if changed and self._strategy is not None and not self._strategy.in_flight:
            # a fill no plan reported (a failed plan's order that filled after all): the
            # strategy follows the recorded legs and checks their hedge
            self._take(self.strategy.sync_legs(self._leg_book(), now))

    # --- decisions -------------------------------------------------------------------------

    def _take(self, decision: Decision) -> None:
        """Log a decision; queue its plan, or answer it ABORTED when it may not run now."""
        if decision.action in (Action.IGNORE, Action.HOLD):
            log.debug("arbitrage_decision", agent=self.name, action=decision.action.value,
                      reason=decision.reason)  # fmt: skip
        else:
            log.info("arbitrage_decision", agent=self.name, action=decision.action.value,
                     reason=decision.reason)  # fmt: skip
        self.last_decision = f"{decision.action.value}: {decision.reason}"
        plan = decision.plan
        if plan is None:
            return
        refused = plan_refusal(decision.action, self._trading_state.current_kind(), paused=self.paused)
        if refused:
            log.warning("plan_refused", agent=self.name, sequence=plan.sequence_id,
                        action=decision.action.value, reason=refused)  # fmt: skip
            self._count_outcome(Outcome.ABORTED)
            done = Done(plan.sequence_id, Outcome.ABORTED, refused)
            self._take(self.strategy.on_execution_result(done, self._clock.now_ms()))
            return
        self.plans_started += 1
        parent = trace.get_current_span().get_span_context()
        self._plans.put_nowait((plan, decision.action, parent if parent.is_valid else None))

    async def run(self) -> None:
        """Execute queued plans one at a time, answering each exactly once, until cancelled."""
        while True:
            plan, action, parent = await self._plans.get()
            context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent else None
            with self._tracer.start_as_current_span(
                "execute arbitrage plan",
                context=context,
                attributes={"agent": self.name, "action": action.value, "workflow": plan.workflow_id},
            ):
                log.info("plan_started", agent=self.name, action=action.value, workflow=plan.workflow_id)
                ended = await self._execute(plan)
                done = ended.done
                self._count_outcome(done.outcome)
                log.info("plan_done", agent=self.name, workflow=plan.workflow_id,
                         outcome=done.outcome.value, reason=done.reason)  # fmt: skip
                await self._forget_plan(plan)
                await self._record_pending()
                result = self.strategy.on_execution_result(
                    done, self._clock.now_ms(), legs=self._leg_book(), orders_unknown=ended.orders_unknown
                )
                self._take(result)

    # --- execution -------------------------------------------------------------------------

    def _leg_book(self) -> LegBook:
        """The agent's two legs as recorded (Redis): every fill of its orders, counted once, and
        the fills Redis could not record yet."""
        legs = tuple(self._legs.legs[key] for key in (self._config.spot_key, self._config.perp_key))
        book = LegBook(self.name, legs)
        for fill in self._unrecorded.values():
            book = book.apply_fill(fill)
        return book

    async def _record_pending(self) -> None:
        """Try again to record the fills Redis refused (each once, by client order id)."""
        for client_order_id, fill in list(self._unrecorded.items()):
            try:
                await self._record_fill(fill, client_order_id, source="retry")
            except Exception as exc:
                log.error("leg_fill_not_recorded", agent=self.name, client_order_id=client_order_id,
                          error=f"{type(exc).__name__}: {exc}", pending=len(self._unrecorded))  # fmt: skip
                return
            del self._unrecorded[client_order_id]

    async def _execute(self, plan: Plan) -> _Ended:
        """Drive ``plan`` to its end. Never raises (but for cancellation): a failure is FAILED."""
        results: list[StepResult] = []
        fills: list[Fill] = []
        sending = False
        try:
            while True:
                following = plan.next_step(results)
                if isinstance(following, Done):
                    return _Ended(following)
                step = following
                delay = retry_delay_s(step.attempt)
                if delay:
                    await asyncio.sleep(delay)
                reference = plan.spot_price if step.venue == self._config.spot.venue else plan.perp_price
                # no send without its record: a restart must find every order that may exist
                await self._journal.record_step(
                    plan.workflow_id, plan.sequence_id, RecordedStep(len(results), step, reference)
                )
                sending = True
                result = await self._run_step(step)
                sending = False
                results.append(result)
                if result.filled_qty > 0:
                    fill = self._fill(step, result, reference)
                    fills.append(fill)
                    # kept until Redis has it: the strategy counts it meanwhile (_leg_book)
                    self._unrecorded[step.client_order_id] = fill
                    await self._record_fill(fill, step.client_order_id, source="plan")
                    # (the order stream's copy may have recorded it, and retired it, meanwhile)
                    self._unrecorded.pop(step.client_order_id, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("plan_failed", agent=self.name, workflow=plan.workflow_id, error=str(exc),
                      steps=len(results), order_unknown=sending)  # fmt: skip
            done = Done(
                plan.sequence_id,
                Outcome.FAILED,
                f"{type(exc).__name__}: {exc} after {len(results)} step(s); legs follow the venue",
                tuple(fills),
            )
            # Whatever a step raised once its order may have been sent (a look-up or cancel
            # that failed while settling it, an answer that could not be read), that order's
            # outcome is unknown.
            return _Ended(done, orders_unknown=sending)

    def _buy_fee(self, venue: str) -> Decimal:
        """The commission rate a buy on ``venue`` pays in the base asset (spot only)."""
        return self._config.spot_buy_fee if venue == self._config.spot.venue else ZERO

    @staticmethod
    def _fill(step: OrderStep, result: StepResult, reference_price: Decimal) -> Fill:
        """The fill a step's executed quantity made (at the reference price when the venue
        reported no average)."""
        price = result.average_price if result.average_price > 0 else reference_price
        return Fill(step.venue, step.symbol, step.side, result.filled_qty, price, result.time_ms)

    async def _forget_plan(self, plan: Plan) -> None:
        """Clear the plan's record now that its Done is taken (a failure only costs a restart a
        look-up of orders already counted)."""
        try:
            await self._journal.clear()
        except Exception as exc:
            log.error("plan_record_not_cleared", agent=self.name, workflow=plan.workflow_id, error=str(exc))

    async def _run_step(self, step: OrderStep) -> StepResult:
        """Send one step's order (re-sent with the same client id on retryable errors), wait
        until it is final, and report what it executed."""
        gateway = self._gateways[step.venue]
        order = order_for_step(step, self._account)
        log.info("step_sending", agent=self.name, client_order_id=step.client_order_id,
                 venue=step.venue, side=step.side.value, qty=str(step.quantity),
                 reduce_only=order.reduce_only)  # fmt: skip
        for attempt in range(self._send_attempts):
            try:
                placed = await gateway.place(order)
            except Retryable as exc:
                log.warning("step_send_retry", client_order_id=step.client_order_id, error=str(exc))
                await asyncio.sleep(retry_delay_s(attempt + 1))
                continue
            except OpenSQTError as exc:
                self._count_order("rejected")
                log.warning("step_refused", client_order_id=step.client_order_id,
                            error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                return step_result(step, None, f"{type(exc).__name__}: {exc}")
            self._count_order("accepted")
            self.orders_sent += 1
            return step_result(step, await self._settle(gateway, placed), buy_fee=self._buy_fee(step.venue))
        # every send was ambiguous or refused as unavailable: the order may exist, so ask for it
        try:
            found = await gateway.get_order(step.symbol, step.client_order_id)
        except OpenSQTError as exc:
            raise StepUnknownError(f"{step.client_order_id}: sends and lookup failed ({exc})") from exc
        if found is None:
            # Not proof it was never placed: the executor's workflow for this client id may
            # still be sending it. The plan stops here (a next step, or a retry under a new id,
            # could double it); a late fill arrives on the order stream.
            raise StepUnknownError(
                f"{step.client_order_id}: every send failed and the venue does not list it yet"
            )
        return step_result(step, await self._settle(gateway, found), buy_fee=self._buy_fee(step.venue))

    async def _settle(self, gateway: PlanGateway, order: Order) -> Order:
        """The order once final; a MARKET order still working after the timeout is cancelled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settle_timeout_s
        current = order
        while not current.status.is_final:
            if loop.time() > deadline:
                cancelled = await gateway.cancel(current.symbol, current.client_order_id)
                if cancelled is not None and cancelled.status.is_final:
                    return cancelled
                found = await gateway.get_order(current.symbol, current.client_order_id)
                if found is not None and found.status.is_final:
                    return found
                raise StepUnknownError(f"{current.client_order_id} is still {current.status.value}")
            await asyncio.sleep(0.05)
            try:
                found = await gateway.get_order(current.symbol, current.client_order_id)
            except Retryable:
                continue
            if found is not None:
                current = found
        return current

    async def _record_fill(self, fill: Fill, client_order_id: str, *, source: str) -> bool:
        """Apply ``fill`` to its leg once (by client order id); whether it changed the leg."""
        instrument = self._config.spot if fill.venue == self._config.spot.venue else self._config.perp
        change = await self._legs.apply_fill(
            fill, event_id=client_order_id, market_type=instrument.market_type
        )
        if not change.changed or change.after is None:
            return False
        self._show_legs()
        if self._metrics is not None:
            self._metrics.fills.labels(fill.side.value).inc()
        log.info("leg_fill_recorded", agent=self.name, leg=fill.key, client_order_id=client_order_id,
                 side=fill.side.value, qty=str(fill.quantity), price=str(fill.price),
                 size=str(change.after.size), source=source)  # fmt: skip
        return True

    def _count_order(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.orders.labels("place", result).inc()

    def _count_outcome(self, outcome: Outcome) -> None:
        self.plans_done[outcome.value] = self.plans_done.get(outcome.value, 0) + 1
        if self._metrics is not None:
            self._metrics.arbitrage_plans.labels(self.name, outcome.value).inc()

    def _show_legs(self) -> None:
        """The recorded leg sizes as gauges (spot + perp is the unhedged exposure)."""
        if self._metrics is None:
            return
        for leg, key in (("spot", self._config.spot_key), ("perp", self._config.perp_key)):
            recorded = self._legs.leg(key)
            if recorded is not None:
                self._metrics.arbitrage_leg_size.labels(self.name, leg).set(float(recorded.size))
