"""The lifecycle every service shares: connect, serve, wait for SIGTERM, shut down in order.

A service's ``main`` builds its settings, enters a :class:`ServiceRuntime`, wires its library
objects to ``runtime.bus`` / ``runtime.redis``, calls :meth:`ServiceRuntime.serve`, then
:meth:`ServiceRuntime.wait`. Shutdown order: health NOT_SERVING -> stop accepting -> drain
in-flight calls -> stop background tasks -> drain NATS -> close Redis -> flush traces.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from opensqt.clock import Clock, SystemClock
from opensqt.config import ServiceSettings
from opensqt.heap import process_claimed, settle_heap
from opensqt.telemetry import ServiceMetrics, configure_tracing, get_logger, watch_loop_lag
from opensqt.transport.bus import EventBus
from opensqt.transport.grpc_server import GrpcServer, ServiceBinding
from opensqt.transport.redis_store import RedisStore
from opensqt.transport.tls import TlsFiles

__all__ = ["ServiceRuntime"]

log = get_logger(__name__)

#: Longest a single stop callback may take before shutdown moves on.
STOP_CALLBACK_SECONDS = 5.0

#: After start-up, the heap is frozen once more this much later (start-up work that finishes
#: in the background: markets loaded by a feed, the first connections).
HEAP_SETTLE_AGAIN_SECONDS = 10.0


class ServiceRuntime:
    """Connections and lifecycle of one service. Use as ``async with``."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        span_processors: Sequence[SpanProcessor] = (),
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.identity = settings.identity
        self.clock: Clock = clock or SystemClock()
        self.metrics = ServiceMetrics(self.identity)
        self.tracer_provider: TracerProvider = configure_tracing(
            self.identity,
            otlp_endpoint=settings.telemetry.otlp_endpoint,
            extra_processors=span_processors,
            sample_ratio=settings.telemetry.trace_sample_ratio,
        )
        ca, cert, key = settings.tls.resolved(self.identity)
        self.tls = TlsFiles(ca, cert, key)
        self._bus: EventBus | None = None
        self._redis: RedisStore | None = None
        self._grpc: GrpcServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self.metrics_port = 0

    @property
    def bus(self) -> EventBus:
        if self._bus is None:
            raise RuntimeError("runtime not started")
        return self._bus

    @property
    def redis(self) -> RedisStore:
        if self._redis is None:
            raise RuntimeError("runtime not started")
        return self._redis

    @property
    def grpc(self) -> GrpcServer:
        if self._grpc is None:
            raise RuntimeError("gRPC server not started")
        return self._grpc

    async def start(self) -> None:
        """Serve metrics, connect NATS (creating the JetStream streams) and Redis."""
        self.metrics.gc_pauses.install()
        t = self.settings.telemetry
        if t.metrics_port:
            self.metrics_port = self.metrics.serve(t.metrics_host, t.metrics_port)
        if t.loop_lag_probe_ms:
            self.spawn(watch_loop_lag(self.metrics.loop_lag, t.loop_lag_probe_ms / 1000), "event-loop-lag")
        self._bus = await EventBus.connect(
            self.settings.nats,
            service=self.identity,
            metrics=self.metrics,
            tracer_provider=self.tracer_provider,
        )
        await self._bus.ensure_streams(replicas=self.settings.nats.stream_replicas)
        self._redis = await RedisStore.connect(self.settings.redis, service=self.identity)
        log.info("service_started", service=self.identity, environment=self.settings.environment)

    async def serve(self, bindings: Sequence[ServiceBinding]) -> GrpcServer:
        """Start the gRPC API (mTLS) and probe servers."""
        self._grpc = GrpcServer(
            service=self.identity,
            settings=self.settings.grpc,
            tls=self.tls,
            bindings=bindings,
            metrics=self.metrics,
            tracer_provider=self.tracer_provider,
        )
        await self._grpc.start()
        self.spawn(self.bus.watch_consumers(), "nats-consumers")
        return self._grpc

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        """Run a background task that is cancelled at shutdown; its failure is logged."""

        async def _guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background_task_failed", task=name)

        self._tasks.append(asyncio.create_task(_guarded(), name=name))

    def settle_heap(self, *, collect: bool = False) -> None:
        """Freeze the objects alive now out of the garbage collector's reach (opensqt.heap).
        ``collect`` first runs a full collection (tens of ms): only before trading starts.
        Only in a process the service owns (its ``main``; see ``opensqt.heap.claim_process``)."""
        if self.settings.gc_freeze and process_claimed():
            frozen = settle_heap(collect=collect)
            log.info("heap_settled", service=self.identity, frozen_objects=frozen, collected=collect)

    async def _settle_heap_later(self) -> None:
        await asyncio.sleep(HEAP_SETTLE_AGAIN_SECONDS)
        self.settle_heap()

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call ``callback`` during shutdown, after gRPC stopped and before NATS drains."""
        self._on_stop.append(callback)

    async def wait(self, stop: asyncio.Event | None = None) -> None:
        """Block until SIGTERM/SIGINT (or ``stop`` is set)."""
        stop = stop or asyncio.Event()
        # Start-up is over: what is alive now lives as long as the service.
        self.settle_heap(collect=True)
        self.spawn(self._settle_heap_later(), "heap-settle")
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (RuntimeError, ValueError):  # not the main thread
                pass
        try:
            await stop.wait()
            log.info("service_stopping", service=self.identity)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def shutdown(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=STOP_CALLBACK_SECONDS)
            for task in stuck:
                log.warning("task_did_not_stop", task=task.get_name())
        for callback in reversed(self._on_stop):
            # A stop must finish: a peer that never answers (a WebSocket close, a channel)
            # gets a deadline, and the rest of the shutdown goes on.
            try:
                await asyncio.wait_for(callback(), timeout=STOP_CALLBACK_SECONDS)
            except TimeoutError:
                log.warning(
                    "stop_callback_timed_out", callback=getattr(callback, "__qualname__", str(callback))
                )
            except Exception:
                log.exception("stop_callback_failed")
        if self._bus is not None:
            await self._bus.close()
        if self._redis is not None:
            await self._redis.close()
        self.metrics.close()
        self.metrics.gc_pauses.remove()
        self.tracer_provider.shutdown()
        log.info("service_stopped", service=self.identity)

    async def __aenter__(self) -> ServiceRuntime:
        try:
            await self.start()
        except BaseException:
            await self.shutdown()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()
