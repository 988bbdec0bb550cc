"""The live market maker: grid decisions on conflated prices, slots in Redis, orders via the executor.

This is the DurableEngine side of an agent. State transitions go through
:class:`~opensqt.grid.manager.SlotManager` (atomic in Redis); side effects go through the
executor's DBOS workflows (idempotent by client order id). After a crash, a restart loads the
slots, and a PENDING slot's order is re-sent with the same client id: the executor answers with
the order it already placed, so nothing is doubled. Then the slots are reconciled with the
venue's open orders and position (behaviour.md §2, :mod:`opensqt.grid.reconcile`) before the
first price: orders bind to their slots, orders a lost slot still had on the venue are adopted,
this agent's orders of a finished cycle or on a busy slot are cancelled, and a position drift of
5% or more makes the agent reduce-only until an operator resumes it. While it trades, the
venue's position is compared with the slots' every ``position_check_seconds``
(:mod:`opensqt.grid.drift`): the same drift of 5% or more on two settled checks in a row (no
order update in flight on either) makes the agent reduce-only too.

Liquidation guard (behaviour.md §4): a position update of the grid's symbol whose mark price is
closer to its liquidation price than ``liquidation_threshold`` (a fraction of the mark) makes the
agent reduce-only and exits the position at once, through its slots so every fill stays
accounted: every working order is cancelled, each slot's inventory is closed with a
reduce-only IOC limit at ``EXIT_PRICE_BAND`` through the mark, and what the venue then holds
beyond the slots with one more. What an IOC leaves (the market moved past its limit) is closed
by the next update that is still too close.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TracerProvider

from opensqt.clock import Clock
from opensqt.engine.gateway import AccountSnapshot, AccountSource, OrderGateway
from opensqt.engine.service import AgentFigures
from opensqt.errors import (
    InsufficientFunds,
    OpenSQTError,
    PostOnlyRejected,
    Retryable,
    TradingHalted,
)
from opensqt.grid.client_ids import ClientOrderIdError, parse_client_order_id
from opensqt.grid.config import GridConfig, GridMode
from opensqt.grid.drift import DriftVerdict, PositionWatch, unsettled_orders
from opensqt.grid.manager import SlotManager
from opensqt.grid.reconcile import ReconcileReport
from opensqt.grid.strategy import CancelOrder, CancelReason, PlaceOrder, Strategy
from opensqt.model import (
    AlertKind,
    AlertSeverity,
    Instrument,
    InventorySlot,
    Leg,
    LockStatus,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    PositionUpdate,
    PriceChange,
    RiskAlert,
    Side,
    TimeInForce,
    TradingStateKind,
)
from opensqt.model.money import ZERO
from opensqt.risk.liquidation import liquidation_distance
from opensqt.telemetry import ServiceMetrics, get_logger
from opensqt.transport.bus import EventContext

__all__ = [
    "EXIT_PRICE_BAND",
    "LIQUIDATION_REASON",
    "REUSED_ID_AGE_MS",
    "MarketMakerAgent",
    "TradingStateSource",
]

log = get_logger(__name__)

HALTED_FOLLOW_UP_S = 1.0
"""On HALTED the grid evaluates this long after the transition (the executors cancel first)."""

HELD_LOOKUP_EVERY_MS = 30_000
"""A PENDING opening order held while the agent alone reduces is looked up at most this often."""

RESEND_BACKOFF_MS = (100, 2_000)
"""After a send of a slot's order failed without an answer (or was held by the trading state),
it is re-sent no sooner than this: the first wait, doubled per failure up to the second. A
re-send runs inside an evaluation, so an executor that fails every call (restarting, a bug)
must not cost every price tick a round trip per PENDING order."""

LOOKUPS_PER_CHECK = 5
"""A position check looks up at most this many slot orders the venue does not list."""

EXIT_PRICE_BAND = Decimal("0.02")
"""An emergency exit's IOC limits lie this far through the mark price (a fraction of it): they
take what the book offers within 2%, and no worse, in a market that may be falling fast."""

LIQUIDATION_REASON = "liquidation guard"
"""The start of the reducing reason the liquidation guard sets (one reason, however often it trips)."""

REUSED_ID_AGE_MS = 60_000
"""A new order answered with a finished order created this long before the decision reused a
client id: the executor remembers ids for a day and answers a repeat with the order it had."""


class MarketMakerAgent:
    """One trailing-grid agent on one symbol (implements the strategy service's AgentHandle)."""

    kind = "market_maker"

    def __init__(
        self,
        *,
        config: GridConfig,
        instrument: Instrument,
        slots: SlotManager,
        gateway: OrderGateway,
        clock: Clock,
        trading_state: TradingStateSource,
        metrics: ServiceMetrics | None = None,
        account: str = "",
        tracer_provider: TracerProvider | None = None,
        account_source: AccountSource | None = None,
        position_shared: bool = False,
        reconcile_retry_delays: Sequence[float] = (0.5, 1.0, 2.0),
        liquidation_threshold: Decimal = Decimal("0.10"),
        alerts: Callable[[RiskAlert], Awaitable[None]] | None = None,
    ) -> None:
        self.name = config.agent
        self.symbols: tuple[str, ...] = (instrument.symbol,)
        self.paused = False
        self.pause_reason = ""
        # Set when reconciliation at start found what it cannot repair (a position drift, a stray
        # it could not cancel, the venue unreadable): the agent then only reduces, whatever the
        # trading state, until an operator resumes it. Every reason is kept.
        self.reducing_reason = ""
        # Set when start() failed: the agent stays paused with it, whatever Pause or Resume say.
        self.start_error = ""
        # The venue's clock minus this host's, from the latest tick: decisions are timed on the
        # venue's clock, which the orders' creation times are on.
        self._venue_offset_ms = 0
        self._account_source = account_source
        self._position_shared = position_shared
        if not ZERO <= liquidation_threshold < 1:
            raise ValueError(f"liquidation_threshold must be in [0, 1), got {liquidation_threshold}")
        self._liquidation_threshold = liquidation_threshold  # 0: the guard is off
        self._danger: Position | None = None  # the latest update too close to liquidation
        self._exit_task: asyncio.Task[None] | None = None
        # where the agent's own alerts go (the strategy service publishes them for risk to keep)
        self._alerts = alerts
        self._alerting: set[asyncio.Task[None]] = set()
        self._alerts_raised = 0  # numbers the alert ids
        # evaluations and emergency exits take turns: an exit must not race a decision's orders
        self._turn = asyncio.Lock()
        self.emergency_exits = 0
        self._reconcile_retry_delays = tuple(reconcile_retry_delays)
        self._watch = PositionWatch()
        self._held_lookups: dict[str, int] = {}  # client id -> when a held order was looked up
        # client id of a PENDING order whose last send failed -> (not re-sent before, last wait,
        # the trading state as this agent saw it when the executor held the order, else None)
        self._resend_after: dict[str, tuple[int, int, TradingStateKind | None]] = {}
        # client ids whose last cancel the venue answered "unknown order" (see _cancel_unknown)
        self._unknown_at_venue: set[str] = set()
        self._config = config
        self._instrument = instrument
        self._slots = slots
        self._gateway = gateway
        self._clock = clock
        self._trading_state = trading_state
        self._metrics = metrics
        self._account = account
        self._strategy: Strategy | None = None
        self._latest: PriceChange | None = None
        # The span context of the tick that delivered _latest: evaluation runs in its trace, so
        # one trace follows a price from the monitor through strategy to the executor's answer.
        self._latest_trace: SpanContext | None = None
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("opensqt.engine.live")
        self._wake = asyncio.Event()
        # After an order was refused for margin ahead of its decision's cancels: cancels go
        # first until then, and the agent evaluates again once the cancels are done.
        self._cancels_first_until_ms = 0
        self._evaluate_after_cancels = False
        self.evaluations = 0
        self.orders_sent = 0
        self.last_event_ms = 0

    @property
    def position_shared(self) -> bool:
        """The symbol's position on the account is not this grid's alone: it is not read."""
        return self._position_shared

    @property
    def strategy(self) -> Strategy | None:
        """The grid's decision core (``None`` until the first price set its anchor)."""
        return self._strategy

    # --- AgentHandle -----------------------------------------------------------------------

    async def slots(self, symbol: str = "") -> list[InventorySlot]:
        return sorted(self._slots.slots.values(), key=lambda s: s.slot_price)

    async def legs(self) -> list[Leg]:
        return []

    def pause(self, reason: str) -> None:
        if self.start_error:
            return  # it never ran: its reason stays
        self.paused, self.pause_reason = True, reason

    def figures(self) -> AgentFigures:
        price = self._latest.price if self._latest is not None else None
        return AgentFigures(
            working_orders=sum(1 for slot in self._slots.slots.values() if slot.order_status is not None),
            exposure=self._slots.exposure() * price if price is not None else None,
            last_event_ms=self.last_event_ms,
        )

    def resume(self) -> None:
        """Lift an operator's pause and a reduce-only state reconciliation set.

        An agent that failed to start stays paused: it is neither subscribed nor running.
        """
        if self.start_error:
            log.warning("agent_not_started", agent=self.name, reason=self.start_error)
            return
        self.paused, self.pause_reason = False, ""
        self.reducing_reason = ""
        self._watch.acknowledge()  # the drift that alerted, if one did: the operator saw it
        self._wake.set()

    def trading_state_changed(self) -> None:
        """Evaluate now: REDUCING cancels the working buys on the transition, ACTIVE places
        again (the latest price is enough; none yet: nothing to do until one comes).

        HALTED only ``HALTED_FOLLOW_UP_S`` later: every executor cancels all its working orders
        itself at the transition (the grid's own cancels then would only race them at the
        venue); the later evaluation cancels whatever an executor could not (its cancel-all
        failed), even if no price comes."""
        if self._trading_state.current_kind() is TradingStateKind.HALTED:
            asyncio.get_running_loop().call_later(HALTED_FOLLOW_UP_S, self._wake.set)
        else:
            self._wake.set()

    # --- events ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the slots (and anchor), then reconcile them with the venue, before the first price.

        A reconciliation that cannot run leaves the agent reduce-only (``reducing_reason``)
        until an operator resumes it: its slots may not match the venue.
        """
        await self._slots.load()  # a store that cannot be read fails the start (see main.py)
        if self._slots.anchor is not None:
            self._strategy = Strategy(self._config, self._instrument, anchor=self._slots.anchor)
        if self._account_source is None:
            return
        try:
            report = await self.reconcile()
        except Exception as exc:  # one agent's failure must not keep the others from starting
            log.exception("reconcile_crashed", agent=self.name)
            report, error = None, f"{type(exc).__name__}: {exc}"
        else:
            error = "the venue could not be read"
        if report is None:
            self._reduce_only(f"reconciliation at start failed ({error}); check the slots, then Resume")

    def _reduce_only(self, reason: str, kind: AlertKind = AlertKind.AGENT_REDUCING) -> None:
        if reason in self.reducing_reason:
            return
        self.reducing_reason = f"{self.reducing_reason} | {reason}" if self.reducing_reason else reason
        log.error("agent_reduce_only", agent=self.name, reason=reason)
        if self._alerts is None:
            return
        now = self._clock.now_ms()
        self._alerts_raised += 1
        alert = RiskAlert(
            alert_id=f"{self.name}-{kind.value.lower()}-{now}-{self._alerts_raised}",
            kind=kind,
            severity=AlertSeverity.CRITICAL,
            message=f"agent {self.name} on {self._instrument.symbol} is reduce-only: {reason}",
            symbols=(self._instrument.symbol,),
            created_ms=now,
        )
        task = asyncio.create_task(self._alert(alert))
        self._alerting.add(task)
        task.add_done_callback(self._alerting.discard)

    async def _alert(self, alert: RiskAlert) -> None:
        assert self._alerts is not None
        try:
            await self._alerts(alert)
        except Exception as exc:  # the reduce-only state stands; the log and GetStatus show it
            log.error("agent_alert_not_published", agent=self.name, alert_id=alert.alert_id, error=str(exc))

    def _decision_ms(self) -> int:
        """Now on the venue's clock (as far as the latest tick tells; else this host's)."""
        return self._clock.now_ms() + self._venue_offset_ms

    async def reconcile(self) -> ReconcileReport | None:
        """Reconcile the slots with the venue now; ``None`` when the venue could not be read.

        Run it while no order is being sent for this grid (at start, before the order stream is
        consumed). First a consistent read of the open orders and the position; then every slot
        whose order is not open is settled by looking the order up by client id (exact, and
        not subject to the trading state, unlike a re-send); then :func:`reconcile` binds,
        adopts, and lets the position explain what the lookups could not (an order the venue no
        longer knows). The position is read as this grid's only when the grid owns the symbol
        on the account and every lookup answered; when a lookup turned up an unacknowledged
        order (it may have landed, and filled, after the position was read), that order is
        bound or settled and the venue read again (once: after the lookups every order found is
        acknowledged, so a second round cannot turn up another).
        """
        failed = late = False
        snapshot: AccountSnapshot | None = None
        open_orders: list[Order] = []
        for _ in range(2):
            snapshot = await self._read_account()
            if snapshot is None:
                return None
            open_orders = list(snapshot.open_orders)
            failed, late = await self._look_up_missing(open_orders)
            if failed or not late:
                break
            # An unacknowledged order turned up: its fills may be newer than that position.
            # It is bound or settled now, so the next read has it in the orders or the position.
        assert snapshot is not None
        position = None if self._position_shared or failed or late else snapshot.position
        # With no anchor stored (Redis lost it with the slots), a position is rebuilt into slots
        # from its entry price up (behaviour.md §2); the grid is anchored there from then on.
        entry = snapshot.entry_price if position else None
        report = await self._slots.reconcile(
            open_orders,
            position,
            config=self._config,
            instrument=self._instrument,
            anchor=self._instrument.round_price(entry) if entry else None,
        )
        log.info(
            "reconciled",
            agent=self.name,
            symbol=self._instrument.symbol,
            open_orders=len(open_orders),
            bound=len(report.bound),
            adopted=len(report.adopted),
            filled=[str(p) for p in report.filled],
            vanished=[str(p) for p in report.vanished],
            unresolved=[str(p) for p in report.unresolved],
            position_checked=report.position_checked,
            exchange_position=str(report.exchange_position),
            local_position=str(report.local_position),
            corrected=[str(p) for p in report.corrected],
            rebuilt=[str(p) for p in report.rebuilt],
        )
        stray_fills = await self._cancel_strays(report)
        if report.position_checked and position is not None:  # the running check starts from here
            # with what strays filled after the read: that drift made the agent reduce-only too
            self._watch.seed(
                position + stray_fills,
                self._slots.exposure(),
                alerted=report.drift_alert or bool(stray_fills),
            )
        if report.drift_alert:
            reason = (
                f"position drift at start: the venue holds {report.exchange_position}, the slots "
                f"{report.local_position} ({report.drift_ratio:.1%}); check the account, then Resume"
            )
            log.error("reconcile_drift_alert", agent=self.name, reason=reason)
            self._reduce_only(reason, AlertKind.POSITION_DRIFT)
        return report

    async def _read_account(self) -> AccountSnapshot | None:
        """A consistent read of the venue, retried; ``None`` when it stayed unreadable."""
        assert self._account_source is not None
        for delay in (*self._reconcile_retry_delays, None):
            try:
                return await self._account_source.account_snapshot(self._instrument.symbol)
            except OpenSQTError as exc:
                if delay is None:
                    log.error("reconcile_failed", agent=self.name, error=str(exc))
                    return None
                log.warning("reconcile_retry", agent=self.name, error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
        return None

    async def _look_up_missing(self, open_orders: list[Order]) -> tuple[bool, bool]:
        """Settle, by a lookup, every slot whose order is not among ``open_orders``.

        A finished order is applied; an open one (it landed after the read) is bound and added
        to ``open_orders``, so reconciliation takes it as open. Returns
        (a lookup failed, an unacknowledged order turned up). Lookups stop at the first failure:
        the venue is not answering, and the rest is left to the order stream.
        """
        assert self._account_source is not None
        listed = {o.client_order_id for o in open_orders if o.client_order_id}
        listed |= {o.exchange_order_id for o in open_orders if o.exchange_order_id}
        settled, unknown, failed, late = 0, 0, False, False
        for slot in list(self._slots.slots.values()):
            if not slot.has_order or slot.client_order_id in listed or slot.exchange_order_id in listed:
                continue
            try:
                found = await self._account_source.get_order(self._instrument.symbol, slot.client_order_id)
            except OpenSQTError as exc:
                log.warning("reconcile_lookup_failed", agent=self.name,
                            client_order_id=slot.client_order_id, error=str(exc))  # fmt: skip
                failed = True
                break
            if found is None:
                unknown += 1  # never placed (PENDING: re-sent later), or forgotten by the venue
                continue
            unacknowledged = slot.order_status is None
            if unacknowledged and _reused(found, slot.order_requested_ms):
                order = replace(found, symbol=self._instrument.symbol, client_order_id=slot.client_order_id)
                await self._drop_reused(order, found, slot.order_requested_ms)
                continue
            late = late or unacknowledged
            await self._slots.apply_order_update(found)  # binds an open one, settles a final one
            if not found.status.is_final:
                open_orders.append(found)
            settled += 1
        if settled or unknown or failed:
            log.info("reconcile_lookups", agent=self.name, settled=settled, not_found=unknown, failed=failed)
        return failed, late

    def _is_own(self, order: Order) -> bool:
        """Whether ``order``'s client id is a grid id of this agent and symbol."""
        try:
            parts = parse_client_order_id(
                order.client_order_id,
                tick_size=self._instrument.tick_size,
                prefix=self._config.client_id_prefix,
            )
        except ClientOrderIdError:
            return False
        return parts.agent == self.name and parts.symbol == self._instrument.symbol

    async def _cancel_strays(self, report: ReconcileReport) -> Decimal:
        """Cancel this agent's open orders that no slot can track (a finished cycle, a busy slot).

        Orders whose client id is not this agent's grid id are left alone: another agent, or a
        person, may own them on the same account. Returns what the strays executed after the
        venue was read (signed: buys add), which no slot counts.
        """
        own: list[Order] = []
        for order in report.orders_to_cancel:
            if self._is_own(order):
                own.append(order)
            else:
                log.warning(
                    "reconcile_foreign_order",
                    agent=self.name,
                    client_order_id=order.client_order_id,
                    exchange_order_id=order.exchange_order_id,
                )
        return await self._cancel_stray_orders(own, "reconcile_cancel_stray")

    async def _cancel_stray_orders(self, strays: list[Order], event: str) -> Decimal:
        """Cancel these open orders of this agent that no slot tracks; returns what they executed
        after the venue was read (signed: buys add)."""
        late_total = ZERO
        for order in strays:
            log.warning(event, agent=self.name, client_order_id=order.client_order_id)
            try:
                final = await self._gateway.cancel(self._instrument.symbol, order.client_order_id)
            except OpenSQTError as exc:
                # It may fill next to the slot's own order, and no slot would count that fill.
                self._reduce_only(
                    f"stray order {order.client_order_id} could not be cancelled ({exc}); cancel it "
                    "at the venue, then Resume"
                )
                continue
            late = (final.filled_qty if final is not None else ZERO) - order.filled_qty
            if late > 0:  # it traded after the read: inventory no slot counts
                late_total += late if order.side is Side.BUY else -late
                self._reduce_only(
                    f"stray order {order.client_order_id} filled {late} after the venue was read, "
                    "before its cancel; no slot counts it: check the account, then Resume",
                    AlertKind.POSITION_DRIFT,
                )
        return late_total

    async def check_position(self) -> DriftVerdict | None:
        """Compare the venue's position with the slots' once (see :mod:`opensqt.grid.drift`).

        ``None`` when there is nothing to compare: no account source, a position that is not
        this grid's alone (``position_shared``), an agent that did not start, a venue without
        positions, or a venue that could not be read (counted, and tried again next time).
        """
        if self._account_source is None or self._position_shared or self.start_error:
            return None
        revision = self._slots.revision  # any slot change from here on: the reading proves nothing
        try:
            snapshot = await self._account_source.account_snapshot(self._instrument.symbol)
        except OpenSQTError as exc:
            self._count_check("unreadable")
            log.warning("position_check_failed", agent=self.name, error=str(exc))
            return None
        if self._slots.revision == revision:  # no slot changed since before the read
            tracked = {slot.client_order_id for slot in self._slots.slots.values() if slot.client_order_id}
            strays = [o for o in snapshot.open_orders if o.client_order_id not in tracked and self._is_own(o)]
            if strays:  # the periodic reconciler of spec §2: no slot would ever end them
                await self._cancel_stray_orders(strays, "position_check_cancel_stray")
        if snapshot.position is None:
            return None
        unsettled = unsettled_orders(self._slots.slots.values(), snapshot.open_orders)
        settled = not unsettled or await self._unlisted_explain_nothing(unsettled)
        # the slots as they are now, unchanged since before the venue was read (no await follows)
        settled = settled and self._slots.revision == revision
        verdict = self._watch.observe(snapshot.position, self._slots.exposure(), settled=settled)
        reading = verdict.reading
        if not verdict.settled:
            self._count_check("unsettled")  # an order update is on its way: nothing to conclude
            return verdict
        if self._metrics is not None:
            self._metrics.position_drift.labels(self.name).set(float(reading.drift))
        if not verdict.confirmed:
            self._count_check("match" if not reading.drift else "unconfirmed")
            return verdict
        outcome = "alert" if verdict.alert else "acknowledged" if verdict.acknowledged else "drift"
        self._count_check(outcome)
        details = {
            "agent": self.name,
            "exchange_position": str(reading.exchange_position),
            "local_position": str(reading.local_position),
            "ratio": f"{reading.ratio:.4f}",
        }
        if verdict.alert:
            log.error("position_drift_alert", **details)
            self._reduce_only(
                f"position drift while running: the venue holds {reading.exchange_position}, the "
                f"slots {reading.local_position} ({reading.ratio:.1%}) on two checks in a row; "
                "check the account, then Resume",
                AlertKind.POSITION_DRIFT,
            )
            self._wake.set()  # working opening orders go now, not at the next price
        elif not verdict.acknowledged:
            log.warning("position_drift", **details)
        return verdict

    async def _unlisted_explain_nothing(self, client_order_ids: list[str]) -> bool:
        """Whether the venue knows none of these slot orders it did not list (looked up by client
        id, after the position was read): then they explain nothing in it (PENDING orders held
        while paused, HALTED or REDUCING). More than LOOKUPS_PER_CHECK, or a lookup that fails:
        not known, so ``False``. An order found is applied as the order stream would apply it
        (its update was lost, or is on its way: applied twice, it counts once)."""
        assert self._account_source is not None
        if len(client_order_ids) > LOOKUPS_PER_CHECK:
            return False
        unknown = True
        for client_order_id in client_order_ids:
            try:
                found = await self._account_source.get_order(self._instrument.symbol, client_order_id)
            except OpenSQTError as exc:
                log.warning("position_check_lookup_failed", agent=self.name,
                            client_order_id=client_order_id, error=str(exc))  # fmt: skip
                return False
            if found is None:
                continue
            unknown = False
            slot = next((s for s in self._slots.slots.values() if s.client_order_id == client_order_id), None)
            if slot is None or not slot.has_order:
                continue  # it moved on while the lookup was out
            if slot.order_status is None:  # PENDING: bound or settled as a send's answer would be
                await self._apply_answer(self._slot_order(slot), found, slot.order_requested_ms)
            elif not (
                slot.exchange_order_id and found.exchange_order_id != slot.exchange_order_id
            ) and not _reused(
                found, slot.order_requested_ms
            ):  # the slot's own order (a partial fill whose update was lost, too)
                found = replace(found, symbol=self._instrument.symbol, client_order_id=client_order_id)
                await self.on_order_update(OrderUpdate(f"position-check-{client_order_id}", found))
        return unknown

    def _count_check(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.position_checks.labels(self.name, outcome).inc()

    async def watch_position(self, every_s: float) -> None:
        """Run :meth:`check_position` every ``every_s`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.check_position()
            except Exception:  # a bug in one check must not end the watch
                self._count_check("error")
                log.exception("position_check_crashed", agent=self.name)

    async def on_price(self, price: PriceChange, ctx: EventContext) -> None:
        """Conflate: keep only the latest price; the run loop evaluates when it is free."""
        if price.symbol != self._instrument.symbol:
            return
        self.last_event_ms = now = self._clock.now_ms()
        if self._latest is None or price.sequence == 0 or price.sequence >= self._latest.sequence:
            if price.exchange_ms > 0:
                self._venue_offset_ms = price.exchange_ms - now
            self._latest = price
            self._latest_trace = trace.get_current_span().get_span_context()
            self._wake.set()

    async def on_order_update(self, update: OrderUpdate, ctx: EventContext | None = None) -> None:
        order = update.order
        if order.symbol != self._instrument.symbol:
            return
        post_only_rejected = order.post_only and order.status is OrderStatus.EXPIRED and order.filled_qty == 0
        change = await self._slots.on_order_update(update, post_only_rejected=post_only_rejected)
        if change is not None and change.executed_qty and self._metrics is not None:
            self._metrics.fills.labels(order.side.value).inc()
        self.last_event_ms = self._clock.now_ms()
        self._wake.set()

    async def run(self) -> None:
        """Evaluate the latest price whenever something changed, until cancelled (an emergency
        exit under way is cancelled with it)."""
        try:
            await self._run()
        finally:
            if self._exit_task is not None and not self._exit_task.done():
                self._exit_task.cancel()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._latest is None:
                continue
            # Paused, the agent decides nothing, but risk's REDUCING or HALTED still cancels
            # what it has working (its opening orders; all of them when HALTED).
            cancels_only = self.paused
            if cancels_only and self._trading_state.current_kind() is TradingStateKind.ACTIVE:
                continue
            parent = (
                trace.set_span_in_context(NonRecordingSpan(self._latest_trace))
                if self._latest_trace
                else None
            )
            try:
                with self._tracer.start_as_current_span(
                    "evaluate grid",
                    context=parent,
                    attributes={"agent": self.name, "price": str(self._latest.price)},
                ):
                    async with self._turn:
                        await self.evaluate(self._latest.price, cancels_only=cancels_only)
            except OpenSQTError as exc:
                log.error("evaluation_failed", agent=self.name, error=str(exc))
            except Exception:
                log.exception("evaluation_crashed", agent=self.name)

    # --- liquidation guard -----------------------------------------------------------------

    async def on_position(self, update: PositionUpdate, ctx: EventContext | None = None) -> None:
        """The liquidation guard: a position of this grid too close to its liquidation price is
        exited at once, and the agent only reduces until an operator resumes it.

        Only the latest update counts (as with prices): the exit runs in a task of its own, and
        updates that arrive meanwhile are taken, newest only, once it is done."""
        position = update.position
        if (
            position.symbol != self._instrument.symbol
            or position.market_type is not self._instrument.market_type
            or (position.venue and position.venue != self._instrument.venue)
            or self._liquidation_threshold == 0
            or self._position_shared  # not the grid's alone: its other owner guards it
            or self.start_error
        ):
            return
        distance = liquidation_distance(position)
        if distance is None or distance >= self._liquidation_threshold:
            return
        side = "long" if position.size > 0 else "short"
        log.error(
            "liquidation_guard_tripped", agent=self.name, symbol=position.symbol, side=side,
            size=str(position.size), mark=str(position.mark_price),
            liquidation=str(position.liquidation_price), distance=str(distance),
        )  # fmt: skip
        if LIQUIDATION_REASON not in self.reducing_reason:
            self._reduce_only(
                f"{LIQUIDATION_REASON}: {side} {abs(position.size)} at mark {position.mark_price} was "
                f"{distance * 100:.2f}% from liquidation {position.liquidation_price} (threshold "
                f"{self._liquidation_threshold * 100:.2f}%); exiting the position: check, then Resume",
                AlertKind.LIQUIDATION,
            )
        self._danger = position
        if self._exit_task is None or self._exit_task.done():
            self._exit_task = asyncio.create_task(self._exit_latest(), name=f"exit-{self.name}")

    async def _exit_latest(self) -> None:
        """Exit on the latest dangerous update until no newer one is waiting."""
        while (position := self._danger) is not None:
            self._danger = None
            try:
                async with self._turn:  # between two evaluations, never inside one
                    await self._exit(position)
            except Exception:  # the next update still too close tries again
                log.exception("emergency_exit_failed", agent=self.name)
            finally:
                self._wake.set()

    async def _exit(self, position: Position) -> None:
        """Cancel every working order of the grid, close each slot's inventory with a
        reduce-only IOC limit ``EXIT_PRICE_BAND`` through the mark (under the slot's next
        client id: its fills land in the slot), then read the venue and close what it holds
        beyond the slots (a drift, a slot whose order could not be ended) with one more."""
        if self._trading_state.current_kind() is TradingStateKind.HALTED:
            log.error("emergency_exit_halted", agent=self.name, note="HALTED: the executor would refuse it")
            return
        self.emergency_exits += 1
        if self._metrics is not None:
            self._metrics.liquidation_exits.labels(self.name).inc()
        cancels = [
            self._cancel(CancelOrder(slot.slot_price, slot.client_order_id, CancelReason.REDUCING))
            for slot in list(self._slots.slots.values())
            if slot.has_order
        ]
        try:
            await _all(cancels)
        except Exception as exc:  # the slots whose order is still on go without a close below
            log.error("emergency_exit_cancel_failed", agent=self.name, error=f"{type(exc).__name__}: {exc}")
        mark = position.mark_price
        codec = (self._strategy or Strategy(self._config, self._instrument)).codec
        requested: list[tuple[Order, int]] = []  # each slot's exit, PENDING in its slot
        for slot in list(self._slots.slots.values()):
            if slot.position_qty == 0 or slot.has_order:  # an order a cancel did not end stays
                continue
            side = Side.SELL if slot.position_qty > 0 else Side.BUY
            client_order_id = codec.encode(slot.slot_price, side, slot.cycle)
            try:
                requested.append(
                    await self._request_exit(
                        slot.slot_price, side, abs(slot.position_qty), mark, client_order_id
                    )
                )
            except Exception as exc:  # this slot stays as it is; the venue's rest goes below
                log.error("emergency_exit_not_requested", agent=self.name, slot=str(slot.slot_price),
                          error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        try:
            await _all([self._send(order, decided_ms=decided_ms) for order, decided_ms in requested])
        except Exception as exc:  # a PENDING exit is re-sent like any slot order
            log.error("emergency_exit_close_failed", agent=self.name, error=f"{type(exc).__name__}: {exc}")
        await self._exit_rest(mark)

    async def _exit_rest(self, mark: Decimal) -> None:
        """Close what the venue holds beyond the slots' inventory, read now (after the slots'
        closes were answered): one reduce-only IOC, not a slot's."""
        if self._account_source is None:
            return
        try:
            snapshot = await self._account_source.account_snapshot(self._instrument.symbol)
        except OpenSQTError as exc:
            log.error("emergency_exit_unread", agent=self.name, error=str(exc))
            return
        if snapshot.position is None or snapshot.position == 0:
            return
        held = sum((slot.position_qty for slot in self._slots.slots.values()), ZERO)
        rest = snapshot.position - held
        qty = self._instrument.round_qty(abs(rest))
        if qty == 0 or qty < self._instrument.min_qty or (rest > 0) != (snapshot.position > 0):
            return
        side = Side.SELL if rest > 0 else Side.BUY
        client_order_id = f"{self.name}-liq-{self._decision_ms()}"
        order = self._exit_order(side, qty, mark, client_order_id)
        log.warning("emergency_exit_order", agent=self.name, client_order_id=client_order_id,
                    side=side.value, qty=str(qty), price=str(order.price), slots=False)  # fmt: skip
        try:
            await self._gateway.place(order)  # reduce-only: it cannot take the position past flat
        except OpenSQTError as exc:
            log.error(
                "emergency_exit_refused", agent=self.name, client_order_id=client_order_id, error=str(exc)
            )

    def _exit_order(self, side: Side, qty: Decimal, mark: Decimal, client_order_id: str) -> Order:
        through = mark * (1 - EXIT_PRICE_BAND) if side is Side.SELL else mark * (1 + EXIT_PRICE_BAND)
        price = self._instrument.round_price(through, "down" if side is Side.SELL else "up")
        return replace(
            self._limit_order(side, qty, price, client_order_id, post_only=False, reduce_only=True),
            time_in_force=TimeInForce.IOC,
        )

    async def _request_exit(
        self, slot_price: Decimal, side: Side, qty: Decimal, mark: Decimal, client_order_id: str
    ) -> tuple[Order, int]:
        """Record a slot's exit order as PENDING; returns it and when it was decided."""
        order = self._exit_order(side, qty, mark, client_order_id)
        decided_ms = self._decision_ms()
        await self._slots.request_order(
            slot_price, side=side, price=order.price, qty=qty, client_order_id=client_order_id,
            requested_ms=decided_ms, reduce_only=True, post_only=False,
        )  # fmt: skip
        log.warning("emergency_exit_order", agent=self.name, client_order_id=client_order_id,
                    side=side.value, qty=str(qty), price=str(order.price), slots=True)  # fmt: skip
        return order, decided_ms

    # --- decisions -------------------------------------------------------------------------

    async def evaluate(self, price: Decimal, *, cancels_only: bool = False) -> None:
        """Decide at ``price`` and carry it out (``cancels_only``: only the decision's cancels,
        nothing placed or re-sent, as for a paused agent under REDUCING or HALTED)."""
        if self._strategy is None:
            anchor = await self._slots.ensure_anchor(self._instrument.round_price(price))
            self._strategy = Strategy(self._config, self._instrument, anchor=anchor)
        if not cancels_only:
            await self._resend_pending()
        now = self._clock.now_ms()
        self.evaluations += 1
        if self._metrics is not None:
            self._metrics.agent_evaluations.labels(self.name).inc()
        trading_state = self._trading_state.current_kind()
        if self.reducing_reason and trading_state is TradingStateKind.ACTIVE:
            trading_state = TradingStateKind.REDUCING
        actions = self._strategy.on_price(
            price,
            self._slots.slots,
            now_ms=now,
            trading_state=trading_state,
            slots_version=self._slots.revision,
        )
        if cancels_only:
            actions = [a for a in actions if isinstance(a, CancelOrder)]
        await self._carry_out(actions)

    async def _carry_out(self, actions: list[PlaceOrder | CancelOrder]) -> None:
        """Send a decision's orders, then its cancels; each touches its own slot.

        The orders go first, and the cancels once the orders are answered: a trailing grid's
        new near buy must not share the executor and the venue with the cancel of the far one
        (this is the tick-to-order path); the far buy rests one round trip longer. A cancel
        may free the margin an order needs, so:

        * a cancel that makes way for an order at the same price (SUPERSEDED) goes first, and
          the orders after it is done;
        * an order the venue refuses for margin ahead of its decision's cancels is not held
          against the strategy (no margin lock): its slot is freed, the agent evaluates again
          once the cancels are done (the order gets a new client id), and for
          ``margin_lock_ms`` every decision sends its cancels first and its orders after them.
        """
        cancels = [a for a in actions if isinstance(a, CancelOrder)]
        places = [a for a in actions if isinstance(a, PlaceOrder)]
        if not cancels or not places:
            await _all([self._cancel(c) for c in cancels] + [self._place(p) for p in places])
        elif (
            any(c.reason is CancelReason.SUPERSEDED for c in cancels)
            or self._clock.now_ms() < self._cancels_first_until_ms
        ):
            await _all([self._cancel(c) for c in cancels])
            await _all([self._place(p) for p in places])
        else:
            await self._places_then_cancels(places, cancels)

    async def _places_then_cancels(self, places: list[PlaceOrder], cancels: list[CancelOrder]) -> None:
        placed = await asyncio.gather(
            *(self._place(p, cancels_to_follow=True) for p in places), return_exceptions=True
        )
        try:
            await _all([self._cancel(c) for c in cancels])  # whatever became of the orders
        finally:
            if self._evaluate_after_cancels:
                self._evaluate_after_cancels = False
                self._wake.set()
        failures = [o for o in placed if isinstance(o, BaseException)]
        if failures:
            raise failures[0]

    def _order(self, action: PlaceOrder) -> Order:
        return self._limit_order(
            action.side, action.qty, action.price, action.client_order_id,
            post_only=action.post_only, reduce_only=action.reduce_only,
        )  # fmt: skip

    def _limit_order(
        self,
        side: Side,
        qty: Decimal,
        price: Decimal,
        client_order_id: str,
        *,
        post_only: bool,
        reduce_only: bool,
    ) -> Order:
        """A GTC limit order of this grid, as the strategy sends it."""
        return Order(
            symbol=self._instrument.symbol,
            side=side,
            order_type=OrderType.LIMIT,
            quantity=qty,
            price=price,
            client_order_id=client_order_id,
            venue=self._instrument.venue,
            account=self._account,
            market_type=self._instrument.market_type,
            time_in_force=TimeInForce.GTC,
            post_only=post_only,
            reduce_only=reduce_only,
        )

    async def _place(self, action: PlaceOrder, *, cancels_to_follow: bool = False) -> None:
        decided_ms = self._decision_ms()
        await self._slots.request_order(
            action.slot_price, side=action.side, price=action.price, qty=action.qty,
            client_order_id=action.client_order_id, requested_ms=decided_ms,
            reduce_only=action.reduce_only, post_only=action.post_only,
        )  # fmt: skip
        await self._send(self._order(action), cancels_to_follow=cancels_to_follow, decided_ms=decided_ms)

    async def _send(
        self,
        order: Order,
        *,
        cancels_to_follow: bool = False,
        decided_ms: int = 0,
        resend: bool = False,
    ) -> None:
        """Send ``order`` and apply the answer to its slot.

        ``decided_ms`` is when the order was decided (0: unknown). The answer cannot be a
        finished order made well before that: such an answer is an old order of the same client
        id (a slot whose cycles restarted after Redis lost it). Its fills are not this slot's;
        the slot moves on to its next cycle, and the next evaluation decides again with a fresh
        id. ``resend``: the order was left PENDING, so it may be at the venue already.
        """
        failed_before = self._resend_after.pop(order.client_order_id, None)
        try:
            placed = await self._gateway.place(order)
        except PostOnlyRejected:
            await self._slots.record_post_only_reject(order.client_order_id)
            return
        except Retryable as exc:
            # Left PENDING: a later evaluation re-sends it with the same client id (idempotent).
            wait_ms = self._back_off(
                order.client_order_id, failed_before, getattr(exc, "retry_after_s", None)
            )
            log.warning("order_send_retry_later", client_order_id=order.client_order_id, error=str(exc),
                        retry_in_ms=wait_ms)  # fmt: skip
            return
        except InsufficientFunds as exc:
            if cancels_to_follow:
                # Sent ahead of its decision's cancels, which may free the margin it needs.
                log.info("order_refused_before_cancels", client_order_id=order.client_order_id,
                         reason=str(exc))  # fmt: skip
                self._cancels_first_until_ms = self._clock.now_ms() + self._config.margin_lock_ms
                self._evaluate_after_cancels = True
                await self._slots.apply_order_update(replace(order, status=OrderStatus.REJECTED))
                return
            if self._strategy is not None:
                self._strategy.on_margin_error(self._clock.now_ms())
            await self._refused(order, str(exc))
            return
        except TradingHalted as exc:
            if resend:
                # A re-sent order may be at the venue already, and the executor's gate answers
                # before it looks the id up: it stays PENDING until the state lets it through
                # (or its update arrives on the order stream).
                wait_ms = self._back_off(order.client_order_id, failed_before, held=True)
                log.info("order_resend_held", client_order_id=order.client_order_id, reason=str(exc),
                         retry_in_ms=wait_ms)  # fmt: skip
                return
            await self._refused(order, str(exc))
            return
        except OpenSQTError as exc:
            await self._refused(order, str(exc))
            return
        if await self._apply_answer(order, placed, decided_ms):
            self.orders_sent += 1

    def _back_off(self, client_order_id: str, failed_before: tuple[int, int, TradingStateKind | None] | None,
                  retry_after_s: float | None = None, *, held: bool = False) -> int:  # fmt: skip
        """Hold the PENDING order's next send back (RESEND_BACKOFF_MS, or as long as the
        executor asked for); returns the wait in ms. ``held``: the executor's trading state
        refused it; the wait ends early once this agent sees a less strict state than it saw
        then (HALTED -> REDUCING lets a close through, -> ACTIVE everything)."""
        first, longest = RESEND_BACKOFF_MS
        wait_ms = first if failed_before is None else min(longest, 2 * failed_before[1])
        if retry_after_s is not None and retry_after_s > 0:
            wait_ms = max(wait_ms, math.ceil(retry_after_s * 1000))
        seen = self._trading_state.current_kind() if held else None
        self._resend_after[client_order_id] = (self._clock.now_ms() + wait_ms, wait_ms, seen)
        return wait_ms

    async def _apply_answer(self, order: Order, answer: Order, decided_ms: int) -> bool:
        """The venue's view of ``order`` (a send's answer, a lookup): acknowledge and apply it.
        ``False`` when it was an older order of a reused client id (dropped)."""
        if _reused(answer, decided_ms):
            await self._drop_reused(order, answer, decided_ms)
            self._wake.set()
            return False
        await self._slots.acknowledge_order(order.client_order_id, answer.exchange_order_id)
        if answer.status is not OrderStatus.NEW or answer.filled_qty:
            await self._slots.apply_order_update(replace(answer, client_order_id=order.client_order_id))
        return True

    async def _drop_reused(self, order: Order, old: Order, decided_ms: int) -> None:
        """The slot's client id answered with an older order: end the slot's order unfilled."""
        log.error(
            "client_id_reused",
            agent=self.name,
            client_order_id=order.client_order_id,
            old_status=old.status.value,
            old_created_ms=old.created_ms,
            decided_ms=decided_ms,
        )
        await self._slots.apply_order_update(replace(order, status=OrderStatus.CANCELED, filled_qty=ZERO))

    async def _refused(self, order: Order, reason: str) -> None:
        log.warning("order_refused", client_order_id=order.client_order_id, reason=reason)
        await self._slots.apply_order_update(replace(order, status=OrderStatus.REJECTED))

    def _slot_order(self, slot: InventorySlot) -> Order:
        """The slot's working order as the strategy sent it (a slot stored before the flags were
        recorded: closes of long inventory are reduce-only in long mode, nothing is post-only)."""
        assert slot.order_side is not None
        reduce_only = slot.order_reduce_only
        if reduce_only is None:
            reduce_only = self._config.mode is GridMode.LONG and slot.order_side is Side.SELL
        return self._limit_order(
            slot.order_side, slot.order_qty, slot.order_price, slot.client_order_id,
            post_only=bool(slot.order_post_only), reduce_only=reduce_only,
        )  # fmt: skip

    async def _resend_pending(self) -> None:
        now = self._clock.now_ms()
        waiting = self._resend_after
        if waiting:  # forget orders no longer PENDING (answered through the order stream)
            pending_ids = {slot.client_order_id for slot in self._slots.pending()}
            self._resend_after = {cid: wait for cid, wait in waiting.items() if cid in pending_ids}
        strictness = _STRICTNESS[self._trading_state.current_kind()]
        for slot in self._slots.pending():
            if slot.order_side is not None and slot.client_order_id:
                wait = self._resend_after.get(slot.client_order_id)
                eased = wait is not None and wait[2] is not None and strictness < _STRICTNESS[wait[2]]
                if eased and strictness and _opens(slot, slot.order_side):
                    eased = False  # REDUCING still refuses an opening order
                if wait is not None and now < wait[0] and not eased:
                    continue
                order = self._slot_order(slot)
                if self.reducing_reason and _opens(slot, order.side):
                    # This agent alone reduces: the executor, trading ACTIVE, would place it.
                    await self._look_up_held(order, slot.order_requested_ms)
                    continue
                await self._send(order, decided_ms=slot.order_requested_ms, resend=True)

    async def _look_up_held(self, order: Order, decided_ms: int) -> None:
        """A PENDING opening order while the agent is reduce-only: not sent again, only looked up,
        at most every HELD_LOOKUP_EVERY_MS (if it reached the venue, its slot binds it and the
        grid cancels it as it reduces)."""
        now = self._clock.now_ms()
        last = self._held_lookups.get(order.client_order_id)
        if last is not None and now - last < HELD_LOOKUP_EVERY_MS:
            return
        self._held_lookups = {
            cid: at for cid, at in self._held_lookups.items() if now - at < HELD_LOOKUP_EVERY_MS
        }
        self._held_lookups[order.client_order_id] = now
        found = None
        if self._account_source is not None:
            try:
                found = await self._account_source.get_order(self._instrument.symbol, order.client_order_id)
            except OpenSQTError as exc:
                log.warning("order_lookup_failed", agent=self.name, client_order_id=order.client_order_id,
                            error=str(exc))  # fmt: skip
                return
        if found is None:
            log.info("order_resend_held", agent=self.name, client_order_id=order.client_order_id,
                     reason=self.reducing_reason)  # fmt: skip
            return
        await self._apply_answer(order, found, decided_ms)

    async def _cancel(self, action: CancelOrder) -> None:
        try:
            order = await self._gateway.cancel(self._instrument.symbol, action.client_order_id)
        except OpenSQTError as exc:
            log.warning("cancel_failed", client_order_id=action.client_order_id, error=str(exc))
            return
        if order is None:
            await self._cancel_unknown(action)
            return
        self._unknown_at_venue.discard(action.client_order_id)
        if order.status.is_final:
            await self._slots.apply_order_update(order)

    async def _cancel_unknown(self, action: CancelOrder) -> None:
        """The venue knows no order by this id (the executor looked it up too): for a cancel
        that is final (behaviour.md §5). An acknowledged order the venue no longer knows was
        cancelled or expired and purged (a venue keeps the orders that filled). Said once, it
        may be a venue's lag; said again by the next cancel (``cancel_retry_ms`` later), the
        slot's order ends CANCELED with what the slot knows it filled. Without this the slot
        would hold the order, and ask for its cancel, for ever."""
        cid = action.client_order_id
        if cid not in self._unknown_at_venue:
            self._unknown_at_venue.add(cid)
            log.warning(
                "cancel_order_unknown", agent=self.name, client_order_id=cid, note="asked again later"
            )
            return
        self._unknown_at_venue.discard(cid)
        slot = self._slots.slots.get(action.slot_price)
        if slot is None or slot.client_order_id != cid or slot.lock_status is not LockStatus.LOCKED:
            return  # only an acknowledged order: a PENDING one's send may still land
        log.warning("slot_order_unknown_at_venue", agent=self.name, client_order_id=cid,
                    slot=str(slot.slot_price), filled=str(slot.order_filled_qty))  # fmt: skip
        order = replace(self._slot_order(slot), status=OrderStatus.CANCELED, filled_qty=slot.order_filled_qty)
        await self._slots.apply_order_update(order)


_STRICTNESS = {TradingStateKind.ACTIVE: 0, TradingStateKind.REDUCING: 1, TradingStateKind.HALTED: 2}


def _opens(slot: InventorySlot, side: Side) -> bool:
    """Whether an order on ``side`` for ``slot`` opens inventory (not the close of what it holds)."""
    closes_long = slot.position_qty > 0 and side is Side.SELL
    closes_short = slot.position_qty < 0 and side is Side.BUY
    return not (closes_long or closes_short)


def _reused(answer: Order, decided_ms: int) -> bool:
    """``answer`` is a finished order made well before its client id's order was decided."""
    return decided_ms > 0 and answer.status.is_final and 0 < answer.created_ms < decided_ms - REUSED_ID_AGE_MS


async def _all(calls: list[Coroutine[Any, Any, None]]) -> None:
    """Run ``calls`` concurrently, let every one finish, then raise the first failure."""
    if not calls:
        return
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        raise failures[0]


class TradingStateSource(Protocol):
    """Where an agent reads the trading state it obeys (the registry follows risk on NATS)."""

    def current_kind(self) -> TradingStateKind: ...
