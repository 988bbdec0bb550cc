"""Push Halt / Resume to every registered executor and collect their acknowledgements.

The Redis state and the NATS broadcast already make a halt durable and fast; the push is the
third path, and the one that reports who acknowledged. Executors are found in the executor
registry (a heartbeat younger than ``max_age_ms``); each call has a deadline, and one slow or
dead executor never delays the others.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc

from opensqt.execution.registry import ExecutorEntry, ExecutorRegistry
from opensqt.model import TradingState, TradingStateKind
from opensqt.telemetry import get_logger
from opensqt.transport import codec
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import executor_pb2, executor_pb2_grpc

__all__ = ["ExecutorFanout", "PushResult"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PushResult:
    executor_id: str
    address: str
    acknowledged: bool
    error: str = ""
    cancelled_orders: int = 0


class ExecutorFanout:
    """Keeps one mTLS channel per executor address and pushes trading-state changes."""

    def __init__(
        self,
        registry: ExecutorRegistry,
        tls: TlsFiles,
        *,
        deadline_seconds: float = 2.0,
        max_age_ms: int = 15_000,
    ) -> None:
        self._registry = registry
        self._tls = tls
        self._deadline = deadline_seconds
        self._max_age_ms = max_age_ms
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, address: str) -> executor_pb2_grpc.ExecutorServiceStub:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = secure_channel(
                address, self._tls, deadline_seconds=self._deadline
            )
        return executor_pb2_grpc.ExecutorServiceStub(channel)

    async def live(self) -> list[ExecutorEntry]:
        """The executors to push to (a heartbeat younger than ``max_age_ms``)."""
        return await self._registry.live(self._max_age_ms)

    async def push(
        self, state: TradingState, executors: list[ExecutorEntry] | None = None
    ) -> list[PushResult]:
        """Push ``state`` to ``executors`` (default: the live ones, read now)."""
        if executors is None:
            executors = await self.live()
        return list(await asyncio.gather(*(self._push_one(e, state) for e in executors)))

    async def _push_one(self, entry: ExecutorEntry, state: TradingState) -> PushResult:
        stub = self._stub(entry.address)
        try:
            if state.state is TradingStateKind.ACTIVE:
                await stub.Resume(
                    executor_pb2.ResumeExecutorRequest(
                        reason=state.reason, version=state.version, requested_by=state.set_by
                    ),
                    timeout=self._deadline,
                )
                cancelled = 0
            else:
                reply = await stub.Halt(
                    executor_pb2.HaltExecutorRequest(
                        reason=state.reason,
                        state=codec.TRADING_STATE_KIND.to_proto(state.state),
                        version=state.version,
                        requested_by=state.set_by,
                    ),
                    timeout=self._deadline,
                )
                cancelled = reply.cancelled_orders
        except grpc.aio.AioRpcError as exc:
            log.error(
                "executor_push_failed",
                executor=entry.executor_id,
                address=entry.address,
                code=exc.code().name,
            )
            return PushResult(entry.executor_id, entry.address, False, f"{exc.code().name}: {exc.details()}")
        return PushResult(entry.executor_id, entry.address, True, cancelled_orders=cancelled)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
