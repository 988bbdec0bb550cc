"""The risk service's gRPC API: the durable trading state and operator controls.

A state change is written to Redis first (durable: an executor that starts later reads it),
recorded in the audit log with who did it, broadcast on NATS (JetStream, de-duplicated by
version) so every executor follows at once, then pushed to every registered executor over mTLS
gRPC, whose acknowledgements the caller gets back.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from opensqt.clock import Clock
from opensqt.errors import InvalidArgument
from opensqt.execution.registry import ExecutorEntry
from opensqt.model import RiskAlert, TradingState, TradingStateKind
from opensqt.risk.fanout import ExecutorFanout, PushResult
from opensqt.telemetry import ServiceMetrics, get_logger
from opensqt.transport import codec
from opensqt.transport.authz import identity_of
from opensqt.transport.bus import EventBus
from opensqt.transport.redis_keys import ALERTS
from opensqt.transport.redis_store import RedisStore, StateGuard, TradingStateStore
from opensqt.transport.subjects import RISK_ALERT, RISK_STATE
from opensqt.v1 import events_pb2, risk_pb2, risk_pb2_grpc

__all__ = ["RiskServicer", "TradingStateController"]

log = get_logger(__name__)

MAX_ALERTS = 1000


#: Longest the audit record and the NATS broadcast of a state change wait for the executors'
#: acknowledgements (a dead executor's push waits for its deadline; the broadcast does not).
BROADCAST_WAIT_S = 0.05


async def _no_executors() -> list[ExecutorEntry]:
    return []


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a discarded future's outcome as seen (no 'exception never retrieved' warning)."""
    if not future.cancelled():
        future.exception()


class TradingStateController:
    """Changes the trading state: Redis, audit, NATS, then the push to every executor."""

    def __init__(
        self,
        store: RedisStore,
        bus: EventBus,
        clock: Clock,
        metrics: ServiceMetrics,
        fanout: ExecutorFanout | None = None,
    ) -> None:
        self._redis = store
        self._states = TradingStateStore(store)
        self._bus = bus
        self._clock = clock
        self._metrics = metrics
        self._fanout = fanout

    async def current(self) -> TradingState:
        return await self._states.get()

    def _show(self, kind: TradingStateKind) -> None:
        """``opensqt_trading_state``: 1 for the current state, 0 for the others."""
        for each in TradingStateKind:
            self._metrics.trading_state.labels(each.value).set(1 if each is kind else 0)

    async def reassert(self) -> TradingState:
        """At start: show the durable state in the gauge, broadcast it again and push it to
        every live executor.

        A risk killed between its Redis write and the broadcast would otherwise leave executors
        on the older state. Repeats are harmless: JetStream drops a message id it has stored,
        executors ignore a version they already hold."""
        state = await self._states.get()
        self._show(state.state)
        if state.version == 0:
            return state  # never changed: executors start in the same default
        await self._bus.publish(RISK_STATE, RISK_STATE.subject(), state, msg_id=f"risk-state-{state.version}")
        acks = await self._fanout.push(state) if self._fanout is not None else []
        log.info(
            "trading_state_reasserted",
            state=state.state.value,
            version=state.version,
            executors=len(acks),
            acknowledged=sum(1 for ack in acks if ack.acknowledged),
        )
        return state

    async def change(
        self,
        target: TradingStateKind,
        *,
        reason: str,
        set_by: str,
        action: str,
        guard: StateGuard = "",
        expected_version: int = 0,
    ) -> tuple[TradingState, list[PushResult]]:
        """Set ``target``; returns the new state and each executor's acknowledgement.

        With a ``guard`` (what automatic decisions use; see :meth:`TradingStateStore.set_guarded`)
        the write happens only if the state held in Redis at that moment allows it; otherwise
        nothing is pushed or broadcast, and the state held is returned with no acknowledgement."""
        started = time.perf_counter()
        now = self._clock.now_ms()
        # who to push to is read while the state is written (two independent Redis round trips)
        executors = asyncio.ensure_future(
            self._fanout.live() if self._fanout is not None else _no_executors()
        )
        try:
            written, state = await self._states.set_guarded(
                target, reason=reason, set_by=set_by, now_ms=now, guard=guard,
                expected_version=expected_version,
            )  # fmt: skip
        except BaseException:
            executors.cancel()
            executors.add_done_callback(_retrieve)
            raise
        if not written:
            executors.cancel()
            executors.add_done_callback(_retrieve)
            log.warning(
                "trading_state_kept",
                wanted=target.value,
                action=action,
                held=state.state.value,
                held_set_by=state.set_by,
                version=state.version,
            )
            return state, []
        # The durable write came first. The push is what makes every executor refuse: it goes
        # out alone, and the audit record and the broadcast (the path for strategies, and for an
        # executor the push cannot reach) follow once every executor has acknowledged or after
        # BROADCAST_WAIT_S, whichever is first; on two cores, publishing to JetStream while the
        # executors answer doubled the time to the last acknowledgement.
        pushed = asyncio.ensure_future(self._push(state, executors))
        try:
            await asyncio.wait([pushed], timeout=BROADCAST_WAIT_S)
            log.warning(
                "trading_state_changed",
                state=target.value,
                version=state.version,
                set_by=set_by,
                reason=reason,
            )
            self._show(target)
            await asyncio.gather(
                self._states.audit(
                    action=action,
                    identity=set_by,
                    reason=reason,
                    now_ms=now,
                    state=target.value,
                    version=state.version,
                ),
                self._bus.publish(
                    RISK_STATE, RISK_STATE.subject(), state, msg_id=f"risk-state-{state.version}"
                ),
            )
        except BaseException:
            # the audit or the broadcast failed (or the caller went away): the push runs on
            # regardless, and its own outcome must not hide this error
            pushed.add_done_callback(_retrieve)
            raise
        acks, pushed_at = await pushed
        elapsed = pushed_at - started  # decision -> every executor acknowledged
        if acks and all(ack.acknowledged for ack in acks):
            self._metrics.state_propagation.labels(target.value).observe(elapsed)
        log.info(
            "trading_state_propagated",
            state=target.value,
            version=state.version,
            executors=len(acks),
            acknowledged=sum(1 for ack in acks if ack.acknowledged),
            elapsed_ms=round(elapsed * 1000, 2),
        )
        return state, acks

    async def _push(
        self, state: TradingState, executors: asyncio.Future[list[ExecutorEntry]]
    ) -> tuple[list[PushResult], float]:
        """Push ``state``; returns the acknowledgements and when the last one came in."""
        if self._fanout is None:
            return [], time.perf_counter()
        try:
            live: list[ExecutorEntry] | None = await executors
        except Exception as exc:  # read it again in push (and fail there, after the broadcast)
            log.warning("executor_registry_read_failed", error=str(exc))
            live = None
        acks = await self._fanout.push(state, live)
        return acks, time.perf_counter()

    async def record_alert(self, alert: RiskAlert) -> None:
        """Keep the alert (capped) and publish it."""
        payload = codec.risk_alert_to_proto(alert).SerializeToString()
        await self._redis.client.xadd(
            self._redis.writable(ALERTS), {"pb": payload}, maxlen=10_000, approximate=True
        )
        await self._bus.publish(
            RISK_ALERT, RISK_ALERT.subject(), alert, msg_id=f"risk-alert-{alert.alert_id}"
        )

    async def list_alerts(self, limit: int, since_ms: int) -> list[RiskAlert]:
        entries: Any = await self._redis.client.xrevrange(self._redis.readable(ALERTS), count=limit)
        alerts: list[RiskAlert] = []
        for _entry_id, fields in entries:
            alert = codec.risk_alert_from_proto(events_pb2.RiskAlert.FromString(fields[b"pb"]))
            if alert.created_ms >= since_ms:
                alerts.append(alert)
        return alerts


def _acks(results: list[PushResult]) -> list[risk_pb2.ExecutorAck]:
    return [
        risk_pb2.ExecutorAck(
            executor_id=r.executor_id,
            address=r.address,
            acknowledged=r.acknowledged,
            error=r.error,
            cancelled_orders=r.cancelled_orders,
        )
        for r in results
    ]


def _halt_target(value: int) -> TradingStateKind:
    if value in (0, codec.TRADING_STATE_KIND.to_proto(TradingStateKind.HALTED)):
        return TradingStateKind.HALTED
    if value == codec.TRADING_STATE_KIND.to_proto(TradingStateKind.REDUCING):
        return TradingStateKind.REDUCING
    raise InvalidArgument("state", "Halt takes HALTED or REDUCING; use Resume to go back to ACTIVE")


def _reason(raw: str, why: str) -> str:
    reason = raw.strip()
    if not reason:
        raise InvalidArgument("reason", f"is required: say why {why} (it goes to the audit log)")
    return reason


class RiskServicer(risk_pb2_grpc.RiskServiceServicer):
    """Serves RiskService."""

    def __init__(self, controller: TradingStateController) -> None:
        self._controller = controller

    async def GetTradingState(
        self, request: risk_pb2.GetTradingStateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> risk_pb2.GetTradingStateResponse:
        state = await self._controller.current()
        return risk_pb2.GetTradingStateResponse(trading_state=codec.trading_state_to_proto(state))

    async def Halt(
        self, request: risk_pb2.HaltRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> risk_pb2.HaltResponse:
        reason = _reason(request.reason, "trading stops")
        target = _halt_target(request.state)
        identity = identity_of(context) or "unknown"
        state, acks = await self._controller.change(target, reason=reason, set_by=identity, action="halt")
        return risk_pb2.HaltResponse(trading_state=codec.trading_state_to_proto(state), executors=_acks(acks))

    async def Resume(
        self, request: risk_pb2.ResumeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> risk_pb2.ResumeResponse:
        reason = _reason(request.reason, "trading may resume")
        identity = identity_of(context) or "unknown"
        state, acks = await self._controller.change(
            TradingStateKind.ACTIVE, reason=reason, set_by=identity, action="resume"
        )
        return risk_pb2.ResumeResponse(
            trading_state=codec.trading_state_to_proto(state), executors=_acks(acks)
        )

    async def ListAlerts(
        self, request: risk_pb2.ListAlertsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> risk_pb2.ListAlertsResponse:
        if request.limit > MAX_ALERTS:
            raise InvalidArgument("limit", f"must be at most {MAX_ALERTS}, got {request.limit}")
        if request.since_ms < 0:
            raise InvalidArgument("since_ms", f"must not be negative, got {request.since_ms}")
        alerts = await self._controller.list_alerts(request.limit or 100, request.since_ms)
        return risk_pb2.ListAlertsResponse(alerts=[codec.risk_alert_to_proto(a) for a in alerts])
