"""The executor's gRPC API. Order RPCs arrive with the executor (issue 5); until then they
answer UNIMPLEMENTED. Halt, Resume and GetStatus work now, against the trading-state gate.
"""

from __future__ import annotations

from typing import Any

import grpc

from opensqt.clock import Clock
from opensqt.errors import InvalidArgument
from opensqt.execution.gate import TradingStateGate
from opensqt.model import TradingState, TradingStateKind
from opensqt.telemetry import ServiceMetrics, get_logger
from opensqt.transport import codec
from opensqt.transport.authz import identity_of
from opensqt.transport.bus import EventContext
from opensqt.v1 import executor_pb2, executor_pb2_grpc

__all__ = ["ExecutorServicer"]

log = get_logger(__name__)


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
    ) -> None:
        self.executor_id = executor_id
        self.venue = venue
        self.account = account
        self.gate = gate
        self._clock = clock
        self._metrics = metrics
        self._started_ms = clock.now_ms()
        self.last_state_trace_id = ""
        self._publish_gauge()

    def _publish_gauge(self) -> None:
        for kind in TradingStateKind:
            self._metrics.trading_state.labels(kind.value).set(1 if kind is self.gate.state.state else 0)

    async def on_trading_state(self, state: TradingState, ctx: EventContext) -> None:
        """Follow risk's trading state from NATS."""
        if self.gate.apply(state):
            self.last_state_trace_id = ctx.trace_id
            self._publish_gauge()
            log.info(
                "trading_state_followed",
                state=state.state.value,
                version=state.version,
                set_by=state.set_by,
                reason=state.reason,
            )

    async def GetStatus(
        self, request: executor_pb2.GetExecutorStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.GetExecutorStatusResponse:
        return executor_pb2.GetExecutorStatusResponse(
            executor_id=self.executor_id,
            venue=self.venue,
            account=self.account,
            trading_state=codec.trading_state_to_proto(self.gate.state),
            started_ms=self._started_ms,
        )

    async def Halt(
        self, request: executor_pb2.HaltExecutorRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.HaltExecutorResponse:
        if request.state in (0, codec.TRADING_STATE_KIND.to_proto(TradingStateKind.HALTED)):
            target = TradingStateKind.HALTED
        elif request.state == codec.TRADING_STATE_KIND.to_proto(TradingStateKind.REDUCING):
            target = TradingStateKind.REDUCING
        else:
            raise InvalidArgument("state", "Halt takes HALTED or REDUCING; use Resume to go back to ACTIVE")
        identity = identity_of(context) or "unknown"
        state = TradingState(
            state=target,
            reason=request.reason or f"halted by {identity}",
            set_by=identity,
            updated_ms=self._clock.now_ms(),
            version=max(request.version, self.gate.state.version),
        )
        self.gate.apply(state, force=True)
        self._publish_gauge()
        log.warning("executor_halted", state=target.value, set_by=identity, reason=state.reason)
        # No working orders are tracked before the order path exists (issue 5): nothing to cancel.
        return executor_pb2.HaltExecutorResponse(
            trading_state=codec.trading_state_to_proto(self.gate.state), cancelled_orders=0
        )

    async def Resume(
        self, request: executor_pb2.ResumeExecutorRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> executor_pb2.ResumeExecutorResponse:
        identity = identity_of(context) or "unknown"
        state = TradingState(
            state=TradingStateKind.ACTIVE,
            reason=request.reason or f"resumed by {identity}",
            set_by=identity,
            updated_ms=self._clock.now_ms(),
            version=max(request.version, self.gate.state.version),
        )
        self.gate.apply(state, force=True)
        self._publish_gauge()
        log.info("executor_resumed", set_by=identity, reason=state.reason)
        return executor_pb2.ResumeExecutorResponse(
            trading_state=codec.trading_state_to_proto(self.gate.state)
        )
