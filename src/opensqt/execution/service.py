"""The executor's gRPC API: every order the system sends.

Each RPC validates its arguments first (INVALID_ARGUMENT naming the field; nothing reaches the
venue), checks the trading-state gate (FAILED_PRECONDITION when halted or reducing), then sends.
Every sequence runs as a DBOS workflow whose id is its idempotency key. A single order is
journaled in DBOS under the same kind of id, either before it is sent (``journal="before"``: the
send is a step of the workflow) or once the venue has answered (``journal="after"``, the
default: the answer is not held up by the journal; the Redis submit mark, set before the send,
is what makes every later attempt look the order up first). What the executor did is published
on ``opensqt.v1.execution.<account>.<symbol>``; fills are authoritative on the monitor's account
stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal, NamedTuple

import grpc
from dbos import DBOS, SetWorkflowID

from opensqt.clock import Clock
from opensqt.errors import (
    ClientOrderIdConflict,
    ExchangeUnavailable,
    InvalidArgument,
    NotFound,
    OpenSQTError,
)
from opensqt.execution import workflows
from opensqt.execution.gate import TradingStateGate
from opensqt.execution.order_executor import OrderExecutor, Placement, conflict, reduces
from opensqt.execution.snapshot import read_account
from opensqt.execution.validation import OrderDraft, validate_order
from opensqt.model import (
    Instrument,
    Order,
    OrderUpdate,
    TradingState,
    TradingStateKind,
)
from opensqt.telemetry import ServiceMetrics, get_logger
from opensqt.transport import codec
from opensqt.transport.authz import identity_of
from opensqt.transport.bus import EventBus, EventContext
from opensqt.transport.redis_keys import EXECUTOR_AUDIT
from opensqt.transport.redis_store import RedisStore, append_audit
from opensqt.transport.subjects import EXECUTION
from opensqt.v1 import executor_pb2, executor_pb2_grpc, resources_pb2

__all__ = ["ExecutorServicer"]

log = get_logger(__name__)

MAX_BATCH = 50
#: The identity whose Halt/Resume pushes may name who asked (risk audits those itself).
RISK_IDENTITY = "risk"
MAX_SEQUENCE_STEPS = 10

_STATUS = {
    workflows.SequenceStatus.COMPLETED: executor_pb2.SEQUENCE_STATUS_COMPLETED,
    workflows.SequenceStatus.COMPENSATED: executor_pb2.SEQUENCE_STATUS_COMPENSATED,
    workflows.SequenceStatus.FAILED: executor_pb2.SEQUENCE_STATUS_FAILED,
    workflows.SequenceStatus.ABORTED: executor_pb2.SEQUENCE_STATUS_ABORTED,
}


def _draft(request: executor_pb2.OrderRequest) -> OrderDraft:
    return OrderDraft(
        symbol=request.symbol,
        client_order_id=request.client_order_id,
        side=codec.SIDE.optional_from_proto(request.side, "order.side"),
        order_type=codec.ORDER_TYPE.optional_from_proto(request.type, "order.type"),
        quantity=request.quantity,
        price=request.price,
        time_in_force=codec.TIME_IN_FORCE.optional_from_proto(request.time_in_force, "order.time_in_force"),
        post_only=request.post_only,
        reduce_only=request.reduce_only,
        market_type=codec.MARKET_TYPE.optional_from_proto(request.market_type, "order.market_type"),
    )


class _Sent(NamedTuple):
    """A placement's result, and whether an earlier request of its client id had sent it."""

    result: workflows.StepResult
    replayed: bool


def _grpc_code(error: OpenSQTError) -> int:
    return int(grpc.StatusCode[error.grpc_code].value[0])


class ExecutorServicer(executor_pb2_grpc.ExecutorServiceServicer):
    """Serves ExecutorService for one venue account."""

    def __init__(
        self,
        *,
        executor_id: str,
        venue: str,
        account: str,
        gate: TradingStateGate,
        clock: Clock,
        metrics: ServiceMetrics,
        executor: OrderExecutor | None = None,
        instruments: dict[str, Instrument] | None = None,
        bus: EventBus | None = None,
        journal: Literal["after", "before"] = "after",
        audit: RedisStore | None = None,
    ) -> None:
        self.executor_id = executor_id
        self.journal = journal
        self.venue = venue
        self.account = account
        self.gate = gate
        self._clock = clock
        self._metrics = metrics
        self.executor = executor
        self.instruments: dict[str, Instrument] = instruments if instruments is not None else {}
        self._bus = bus
        self._audit_store = audit  # operators' direct Halt/Resume/CancelAll (EXECUTOR_AUDIT)
        self._started_ms = clock.now_ms()
        self.orders_placed = 0
        self.orders_rejected = 0
        self.last_state_trace_id = ""
        self._background: set[asyncio.Task[None]] = set()
        # Workflows this process started and whose result is not in yet: a gRPC call cancelled
        # at shutdown leaves its workflow running, and DBOS must not be torn down under it.
        self._inflight: set[asyncio.Future[Any]] = set()
        # Placements this process is sending (journal "after"), by client id: a second call for
        # the same id joins the first instead of racing it to the venue.
        self._sending: dict[str, asyncio.Future[workflows.StepResult]] = {}
        self._publish_gauge()

    def _result_of(self, handle: Any) -> asyncio.Future[Any]:
        """The workflow's result, tracked until it is in (shielded from the caller's cancel)."""
        result: asyncio.Future[Any] = asyncio.ensure_future(handle.get_result())
        self._inflight.add(result)
        result.add_done_callback(self._inflight.discard)
        return asyncio.shield(result)

    async def drain(self, within: float = 3.0) -> int:
        """Wait (at most ``within`` s) for the workflows still running; returns how many did not
        finish (DBOS recovers those at the next start, from their journal)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        logged = False
        # a send that finishes starts its journal record: wait for those too
        while pending := set(self._inflight) | set(self._background):
            if not logged:
                log.info("draining_workflows", count=len(pending))
                logged = True
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("workflows_left_running", count=len(pending), note="recovered at the next start")
                return len(pending)
            await asyncio.wait(pending, timeout=remaining)
        if self.executor is not None:  # submit marks settled after the answers (best effort)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.executor.settled(), max(0.0, deadline - loop.time()))
        return 0

    # --- trading state ---------------------------------------------------------------------

    def _publish_gauge(self) -> None:
        for kind in TradingStateKind:
            self._metrics.trading_state.labels(kind.value).set(1 if kind is self.gate.state.state else 0)

    async def on_trading_state(self, state: TradingState, ctx: EventContext) -> None:
        """Follow risk's trading state from NATS; HALTED also cancels every working order."""
        await self._follow(state, ctx.trace_id)

    async def watch_durable_state(
        self, read: Callable[[], Awaitable[TradingState]], interval_seconds: float
    ) -> None:
        """Read risk's durable trading state (Redis) every ``interval_seconds`` and follow it when
        it is newer than the state held, or stricter whatever its version: the backstop for a
        broadcast and a push that both missed this executor (a NATS outage, a stale registry
        entry), and a halt even when risk's version went back (its Redis lost the state) or an
        operator resumed this executor directly (resume through risk); such a stricter state
        that is not newer on two reads in a row. Until cancelled; a failed read is tried again."""
        failing = False
        stricter_seen: TradingState | None = None
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                state = await read()
            except Exception as exc:
                if not failing:
                    log.warning("trading_state_unread", error=f"{type(exc).__name__}: {exc}")
                failing = True
                continue
            failing = False
            held = self.gate.state
            # A stricter state that is not newer is followed on the second read in a row only:
            # a read answered just before risk wrote a newer state, whose push came in first,
            # must not undo it.
            older_but_stricter = state.version <= held.version and self.gate.stricter(state)
            confirmed = older_but_stricter and stricter_seen == state
            stricter_seen = state if older_but_stricter else None
            if state.version > held.version or confirmed:
                log.warning("trading_state_caught_up", state=state.state.value, version=state.version,
                            held=held.state.value, held_version=held.version)  # fmt: skip
                try:
                    await self._follow(state, "", force=True)
                except Exception:  # logged; the gate holds the state either way
                    log.exception("trading_state_follow_failed", state=state.state.value)

    async def _follow(self, state: TradingState, trace_id: str, *, force: bool = False) -> None:
        if not self.gate.apply(state, force=force):
            return
        self.last_state_trace_id = trace_id
        self._publish_gauge()
        log.info(
            "trading_state_followed", state=state.state.value, version=state.version, set_by=state.set_by
        )
        if state.state is TradingStateKind.HALTED:
            await self._cancel_working("trading state HALTED")

    async def _cancel_working(self, reason: str) -> int:
        if self.executor is None:
            return 0
        try:
            cancelled = await self.executor.cancel_all()
        except OpenSQTError as exc:
            log.error("halt_cancel_failed", reason=reason, error=str(exc))
            return 0
        for order in cancelled:
            self._metrics.orders.labels("cancel", "accepted").inc()
            await self._publish(order, reason)
        log.warning("working_orders_cancelled", count=len(cancelled), reason=reason)
        return len(cancelled)

    # --- helpers ---------------------------------------------------------------------------

    def _ready(self) -> OrderExecutor:
        if self.executor is None or not self.instruments:
            raise ExchangeUnavailable(f"{self.venue} markets are not loaded yet; try again shortly")
        return self.executor

    def _report(self, order: Order, reason: str = "") -> None:
        """Publish what happened in the background: the caller's answer does not wait for
        JetStream's acknowledgement (a stop drains these before the bus closes)."""
        task = asyncio.ensure_future(self._publish(order, reason))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish(self, order: Order, reason: str = "") -> None:
        if self._bus is None:
            return
        update = OrderUpdate(
            event_id=f"exec-{order.client_order_id}-{order.status.value}-{order.filled_qty}",
            order=order,
            reason=reason,
            source="executor",
        )
        try:
            subject = EXECUTION.subject(account=self.account, symbol=order.symbol)
            await self._bus.publish(EXECUTION, subject, update, msg_id=update.event_id)
        except Exception as exc:  # publishing is a report, never a reason to fail an order
            log.warning("execution_publish_failed", error=str(exc))

    def _validate(self, request: executor_pb2.OrderRequest, prefix: str) -> Order:
        if not request.symbol and not request.client_order_id:
            raise InvalidArgument(prefix, "is required")
        order = validate_order(
            _draft(request), self.instruments, venue=self.venue, account=self.account, field_prefix=prefix
        )
        self.gate.check(reduce_only=reduces(order))
        return order

    async def _journaled_send(self, order: Order) -> _Sent:
        """journal="before": the send is a step of the order's DBOS workflow. A workflow of this
        id started by an earlier request answers with that request's result (a replay)."""
        request = uuid.uuid4().hex
        with SetWorkflowID(workflows.order_workflow_id(self.venue, self.account, order.client_order_id)):
            handle = await DBOS.start_workflow_async(
                workflows.place_order_workflow, self.executor_id, order, request
            )
        result: workflows.StepResult = await self._result_of(handle)
        return _Sent(result, replayed=result.replayed or result.request != request)

    async def _send_then_journal(self, order: Order) -> _Sent:
        """journal="after": send now (OrderExecutor: submit mark, budget, lookup before any
        repeat), answer, and journal the venue's answer in DBOS in the background. A call for
        a client id this process is sending joins that send (a replay)."""
        running = self._sending.get(order.client_order_id)
        joined = running is not None
        if running is None:
            running = asyncio.ensure_future(workflows.guarded_place(self.executor_id, order))
            self._sending[order.client_order_id] = running
            self._inflight.add(running)

            def finished(done: asyncio.Future[workflows.StepResult]) -> None:
                self._inflight.discard(done)
                self._sending.pop(order.client_order_id, None)
                if not done.cancelled() and done.exception() is None:
                    result = done.result()
                    # a conflict is not this order's answer: the id's order is an earlier one
                    if result.error_type != ClientOrderIdConflict.__name__:
                        self._journal(order, result)

            running.add_done_callback(finished)
        # shielded: a caller that goes away (deadline, shutdown) does not cut a send in half
        result = await asyncio.shield(running)
        return _Sent(result, replayed=joined or result.replayed)

    def _journal(self, order: Order, result: workflows.StepResult) -> None:
        async def record() -> None:
            try:
                workflow_id = workflows.order_workflow_id(self.venue, self.account, order.client_order_id)
                with SetWorkflowID(workflow_id):
                    handle = await DBOS.start_workflow_async(
                        workflows.record_order_workflow, self.executor_id, order, result
                    )
                await handle.get_result()
            except Exception as exc:  # the order is at the venue either way; say the journal missed it
                self._metrics.journal_failures.inc()
                log.error("order_journal_failed", client_order_id=order.client_order_id, error=str(exc))

        task = asyncio.ensure_future(record())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _place(self, order: Order) -> Placement:
        started = time.perf_counter()
        if self.journal == "before":
            result, replayed = await self._journaled_send(order)
        else:
            result, replayed = await self._send_then_journal(order)
        self._metrics.order_latency.labels("place").observe(time.perf_counter() - started)
        if result.ok and result.order is not None and replayed:
            refusal = conflict(order, result.order)
            if refusal is not None:  # an earlier request of this id, for another order
                result = workflows.StepResult(None, type(refusal).__name__, str(refusal))
        if result.error_type == ClientOrderIdConflict.__name__:
            # The id's order at the venue is an earlier request's: no REJECTED update for it.
            self.orders_rejected += 1
            self._metrics.orders.labels("place", "conflict").inc()
            self._metrics.order_rejects.labels(result.error_type).inc()
            log.warning("client_order_id_conflict", client_order_id=order.client_order_id,
                        error=result.error_message)  # fmt: skip
            raise workflows.error_from_result(result)
        if not result.ok or result.order is None:
            self.orders_rejected += 1
            self._metrics.orders.labels("place", "rejected").inc()
            self._metrics.order_rejects.labels(result.error_type or "unknown").inc()
            rejected = Order(
                symbol=order.symbol,
                side=order.side,
                order_type=order.order_type,
                quantity=order.quantity,
                price=order.price,
                client_order_id=order.client_order_id,
                venue=self.venue,
                account=self.account,
                market_type=order.market_type,
                status=order.status.REJECTED,
            )
            self._report(rejected, f"{result.error_type}: {result.error_message}")
            raise workflows.error_from_result(result)
        if replayed:
            self._metrics.orders.labels("place", "replayed").inc()
            log.info("order_replayed", client_order_id=order.client_order_id,
                     status=result.order.status.value)  # fmt: skip
        else:
            self.orders_placed += 1
            self._metrics.orders.labels("place", "accepted").inc()
        self._report(result.order)
        return Placement(result.order, replayed)

    # --- RPCs ------------------------------------------------------------------------------

    async def PlaceOrder(
        self, request: executor_pb2.PlaceOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.PlaceOrderResponse:
        self._ready()
        if not request.HasField("order"):
            raise InvalidArgument("order", "is required")
        order = self._validate(request.order, "order")
        placed = await self._place(order)
        return executor_pb2.PlaceOrderResponse(
            order=codec.order_to_proto(placed.order), replayed=placed.replayed
        )

    async def PlaceOrders(
        self, request: executor_pb2.PlaceOrdersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.PlaceOrdersResponse:
        self._ready()
        if not request.orders:
            raise InvalidArgument("orders", "is empty")
        if len(request.orders) > MAX_BATCH:
            raise InvalidArgument("orders", f"has {len(request.orders)} orders; at most {MAX_BATCH} per call")
        ids = [o.client_order_id for o in request.orders]
        if len(set(ids)) != len(ids):
            raise InvalidArgument("orders", "client_order_id values must be unique within a batch")

        async def one(index: int, raw: executor_pb2.OrderRequest) -> executor_pb2.OrderResult:
            try:
                placed = await self._place(self._validate(raw, f"orders[{index}]"))
            except OpenSQTError as exc:
                return executor_pb2.OrderResult(code=_grpc_code(exc), message=str(exc))
            return executor_pb2.OrderResult(
                order=codec.order_to_proto(placed.order), code=0, replayed=placed.replayed
            )

        results = await asyncio.gather(*(one(i, o) for i, o in enumerate(request.orders)))
        return executor_pb2.PlaceOrdersResponse(results=results)

    def _ref(self, symbol: str, ref: str, client_order_id: str, exchange_order_id: str) -> None:
        if not symbol:
            raise InvalidArgument("symbol", "is required")
        if symbol not in self.instruments:
            raise InvalidArgument("symbol", f"unknown symbol {symbol!r} on {self.venue}")
        if ref is None or not (client_order_id or exchange_order_id):
            raise InvalidArgument("order_ref", "give client_order_id or exchange_order_id")

    async def CancelOrder(
        self, request: executor_pb2.CancelOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.CancelOrderResponse:
        executor = self._ready()
        self._ref(
            request.symbol,
            request.WhichOneof("order_ref") or "",
            request.client_order_id,
            request.exchange_order_id,
        )
        started = time.perf_counter()
        result = await executor.cancel(
            request.symbol,
            client_order_id=request.client_order_id,
            exchange_order_id=request.exchange_order_id,
        )
        self._metrics.order_latency.labels("cancel").observe(time.perf_counter() - started)
        self._metrics.orders.labels("cancel", "final" if result.already_final else "accepted").inc()
        if result.order is not None and not result.already_final:
            await self._publish(result.order, "cancelled on request")
        return executor_pb2.CancelOrderResponse(
            order=codec.order_to_proto(result.order) if result.order else None,
            already_final=result.already_final,
        )

    async def CancelAll(
        self, request: executor_pb2.CancelAllRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.CancelAllResponse:
        executor = self._ready()
        if request.symbol and request.symbol not in self.instruments:
            raise InvalidArgument("symbol", f"unknown symbol {request.symbol!r} on {self.venue}")
        if request.side == resources_pb2.SIDE_SELL:
            raise InvalidArgument("side", "CancelAll takes SIDE_BUY or both sides (SIDE_UNSPECIFIED)")
        cancelled = await executor.cancel_all(
            request.symbol, buys_only=request.side == resources_pb2.SIDE_BUY
        )
        caller = identity_of(context) or "unknown"
        reason = request.reason or f"cancel all by {caller}"
        for order in cancelled:
            self._metrics.orders.labels("cancel", "accepted").inc()
            await self._publish(order, reason)
        buys_only = request.side == resources_pb2.SIDE_BUY
        await self._audit(
            caller,
            "cancel_all",
            reason,
            symbol=request.symbol or "*",
            buys_only=buys_only,
            cancelled=len(cancelled),
        )
        return executor_pb2.CancelAllResponse(cancelled=[codec.order_to_proto(o) for o in cancelled])

    async def _audit(self, caller: str, action: str, reason: str, **extra: Any) -> None:
        """Record an operator's direct action on this executor (risk's pushes are in risk's own
        audit log). A failed write is logged; the action stands either way."""
        if self._audit_store is None or caller == RISK_IDENTITY:
            return
        try:
            await append_audit(self._audit_store, EXECUTOR_AUDIT, action=action, identity=caller,
                               reason=reason, now_ms=self._clock.now_ms(), executor=self.executor_id,
                               **extra)  # fmt: skip
        except Exception as exc:
            log.error(
                "executor_audit_failed", action=action, identity=caller, error=f"{type(exc).__name__}: {exc}"
            )

    @staticmethod
    def _requester(request_by: str, context: grpc.aio.ServicerContext[Any, Any]) -> tuple[str, str]:
        """(caller, who asked): the caller's certificate identity, and for risk's pushes the
        identity risk names (the operator who asked risk); anyone else speaks for itself."""
        caller = identity_of(context) or "unknown"
        return caller, (request_by or caller) if caller == RISK_IDENTITY else caller

    async def ExecuteSequence(
        self, request: executor_pb2.ExecuteSequenceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.ExecuteSequenceResponse:
        self._ready()
        if not request.sequence_id:
            raise InvalidArgument("sequence_id", "is required (it is the idempotency key)")
        if not request.steps:
            raise InvalidArgument("steps", "is empty")
        if len(request.steps) > MAX_SEQUENCE_STEPS:
            raise InvalidArgument("steps", f"at most {MAX_SEQUENCE_STEPS} steps")
        specs: list[workflows.StepSpec] = []
        seen: set[str] = set()
        for index, step in enumerate(request.steps):
            prefix = f"steps[{index}]"
            if not step.step_id or step.step_id in seen:
                raise InvalidArgument(f"{prefix}.step_id", "is required and must be unique")
            if step.size_from_step and (step.size_from_step not in seen or request.parallel):
                raise InvalidArgument(
                    f"{prefix}.size_from_step",
                    f"{step.size_from_step!r} is not an earlier step of a sequential run",
                )
            order = self._validate(step.order, f"{prefix}.order")
            specs.append(
                workflows.StepSpec(step.step_id, order, step.compensate_on_failure, step.size_from_step)
            )
            seen.add(step.step_id)
        with SetWorkflowID(workflows.sequence_workflow_id(self.venue, self.account, request.sequence_id)):
            handle = await DBOS.start_workflow_async(
                workflows.sequence_workflow, self.executor_id, request.sequence_id, specs, request.parallel
            )
        outcome: workflows.SequenceOutcome = await self._result_of(handle)
        steps = []
        for done in outcome.steps:
            result = done.result
            error = workflows.error_from_result(result) if not result.ok else None
            if result.order is not None:
                await self._publish(result.order)
            if done.compensation is not None:
                await self._publish(done.compensation, f"compensation of {done.step_id}")
            steps.append(
                executor_pb2.StepResult(
                    step_id=done.step_id,
                    order=codec.order_to_proto(result.order) if result.order else None,
                    code=_grpc_code(error) if error else 0,
                    message=str(error) if error else done.compensation_error,
                    compensation=codec.order_to_proto(done.compensation) if done.compensation else None,
                )
            )
        return executor_pb2.ExecuteSequenceResponse(
            sequence_id=outcome.sequence_id, status=_STATUS[outcome.status], steps=steps
        )

    async def GetOrder(
        self, request: executor_pb2.GetOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.GetOrderResponse:
        executor = self._ready()
        self._ref(
            request.symbol,
            request.WhichOneof("order_ref") or "",
            request.client_order_id,
            request.exchange_order_id,
        )
        if request.client_order_id:
            order = await executor.lookup(request.symbol, request.client_order_id)
        else:
            order = await executor.exchange.fetch_order(
                request.symbol, exchange_order_id=request.exchange_order_id
            )
        if order is None:
            raise NotFound(f"no order {request.client_order_id!r} on {self.venue}:{request.symbol}")
        return executor_pb2.GetOrderResponse(order=codec.order_to_proto(order))

    async def GetAccountSnapshot(
        self, request: executor_pb2.GetAccountSnapshotRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.GetAccountSnapshotResponse:
        executor = self._ready()
        if not request.symbol:
            raise InvalidArgument("symbol", "is required (one of this executor's instruments)")
        instrument = self.instruments.get(request.symbol)
        if instrument is None:
            raise InvalidArgument("symbol", f"unknown on {self.venue}: {request.symbol}")
        read = await read_account(executor.exchange, instrument, account=self.account)
        return executor_pb2.GetAccountSnapshotResponse(
            open_orders=[codec.order_to_proto(o) for o in read.open_orders],
            position=codec.position_to_proto(read.position) if read.position is not None else None,
            fetched_ms=self._clock.now_ms(),
        )

    async def ListInstruments(
        self, request: executor_pb2.ListInstrumentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.ListInstrumentsResponse:
        self._ready()
        unknown = [s for s in request.symbols if s not in self.instruments]
        if unknown:
            raise InvalidArgument("symbols", f"unknown on {self.venue}: {', '.join(unknown)}")
        wanted = request.symbols or sorted(self.instruments)
        return executor_pb2.ListInstrumentsResponse(
            instruments=[codec.instrument_to_proto(self.instruments[s]) for s in wanted]
        )

    async def GetStatus(
        self, request: executor_pb2.GetExecutorStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.GetExecutorStatusResponse:
        working = 0
        if self.executor is not None and self.instruments:
            try:
                working = len(await self.executor.exchange.fetch_open_orders())
            except OpenSQTError:
                working = 0
        return executor_pb2.GetExecutorStatusResponse(
            executor_id=self.executor_id,
            venue=self.venue,
            account=self.account,
            trading_state=codec.trading_state_to_proto(self.gate.state),
            orders_placed=self.orders_placed,
            orders_rejected=self.orders_rejected,
            working_orders=working,
            started_ms=self._started_ms,
        )

    def _forced_state(
        self, target: TradingStateKind, reason: str, identity: str, version: int
    ) -> TradingState:
        held = self.gate.state
        state = TradingState(
            state=target,
            reason=reason,
            set_by=identity,
            updated_ms=self._clock.now_ms(),
            version=version or held.version,
        )
        if version:
            # risk's push: as its NATS message would be (TradingStateGate.apply). The same
            # change already arrived (NATS and the push race), or an older, looser one arrived
            # late (a late Resume must not undo a newer Halt): nothing changes.
            if not self.gate.apply(state):
                if target is not held.state:
                    log.warning("stale_state_push_ignored", state=target.value, version=version,
                                held=held.state.value, held_version=held.version)  # fmt: skip
                return held
        else:  # an operator's direct call: applied as asked, until risk decides a newer state
            self.gate.apply(state, force=True)
        self._publish_gauge()
        return state

    async def Halt(
        self, request: executor_pb2.HaltExecutorRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.HaltExecutorResponse:
        if request.state in (0, codec.TRADING_STATE_KIND.to_proto(TradingStateKind.HALTED)):
            target = TradingStateKind.HALTED
        elif request.state == codec.TRADING_STATE_KIND.to_proto(TradingStateKind.REDUCING):
            target = TradingStateKind.REDUCING
        else:
            raise InvalidArgument("state", "Halt takes HALTED or REDUCING; use Resume to go back to ACTIVE")
        caller, identity = self._requester(request.requested_by, context)
        state = self._forced_state(
            target, request.reason or f"halted by {identity}", identity, request.version
        )
        if self.gate.state.state is target:
            log.warning("executor_halted", state=target.value, set_by=identity, reason=state.reason)
        # only when this executor is HALTED now: a late HALTED push risk has since undone is not
        halted = self.gate.state.state is TradingStateKind.HALTED
        cancelled = await self._cancel_working(state.reason) if halted else 0
        await self._audit(caller, "halt", state.reason, state=target.value, cancelled=cancelled)
        return executor_pb2.HaltExecutorResponse(
            trading_state=codec.trading_state_to_proto(self.gate.state), cancelled_orders=cancelled
        )

    async def Resume(
        self, request: executor_pb2.ResumeExecutorRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.ResumeExecutorResponse:
        caller, identity = self._requester(request.requested_by, context)
        state = self._forced_state(
            TradingStateKind.ACTIVE, request.reason or f"resumed by {identity}", identity, request.version
        )
        if self.gate.state.state is TradingStateKind.ACTIVE:
            log.info("executor_resumed", set_by=identity, reason=state.reason)
        await self._audit(caller, "resume", state.reason)
        return executor_pb2.ResumeExecutorResponse(
            trading_state=codec.trading_state_to_proto(self.gate.state)
        )
