"""Traces leave a service over OTLP/gRPC: a real OTLP receiver on loopback gets the spans of a
traced NATS publish and its consumer, joined by one trace id."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from opensqt.config import NatsSettings
from opensqt.devstack import NatsServer
from opensqt.model import PriceChange
from opensqt.telemetry import ServiceMetrics, configure_tracing
from opensqt.transport.bus import EventBus, EventContext
from opensqt.transport.subjects import PRICE

pytestmark = pytest.mark.integration


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.spans: list[tuple[str, str, bytes]] = []
        self.batches: list[int] = []  # spans per export call

    async def Export(self, request: Any, context: Any) -> Any:
        self.batches.append(
            sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
        )
        for resource_spans in request.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"),
                "",
            )
            for scope in resource_spans.scope_spans:
                self.spans.extend((service, span.name, span.trace_id) for span in scope.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@contextlib.asynccontextmanager
async def otlp_receiver() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield receiver, f"http://127.0.0.1:{port}"
    finally:
        await server.stop(0)


def by_name(spans: Sequence[tuple[str, str, bytes]], name: str) -> tuple[str, str, bytes]:
    return next(s for s in spans if s[1] == name)


async def test_spans_of_two_services_are_exported_over_otlp_with_one_trace_id(nats: NatsServer) -> None:
    receiver = Receiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monitor_tracing = configure_tracing("monitor", otlp_endpoint=endpoint)
    strategy_tracing = configure_tracing("strategy", otlp_endpoint=endpoint)
    monitor = await EventBus.connect(
        NatsSettings(url=nats.url),
        service="monitor",
        metrics=ServiceMetrics("monitor"),
        tracer_provider=monitor_tracing,
    )
    strategy = await EventBus.connect(
        NatsSettings(url=nats.url), service="strategy", metrics=ServiceMetrics("strategy"),
        tracer_provider=strategy_tracing,
    )  # fmt: skip
    got = asyncio.Event()

    async def on_price(price: PriceChange, ctx: EventContext) -> None:
        got.set()

    try:
        await strategy.subscribe(PRICE, PRICE.pattern(), on_price)
        await strategy.client.flush()
        price = PriceChange(venue="paper", symbol="BTCUSDT", price=Decimal("60000.5"))
        # core NATS is at most once (prices: latest wins), so publish until one arrives
        for _ in range(50):
            await monitor.publish(PRICE, PRICE.subject(venue="paper", symbol="BTCUSDT"), price)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(got.wait(), 0.5)
                break
        assert got.is_set()
        await asyncio.sleep(0.05)  # the consumer span ends right after the handler
        # the exporter blocks its caller; the receiver lives on this loop, so flush from a thread
        assert await asyncio.to_thread(monitor_tracing.force_flush, 5000)
        assert await asyncio.to_thread(strategy_tracing.force_flush, 5000)
    finally:
        await monitor.close()
        await strategy.close()
        await asyncio.to_thread(monitor_tracing.shutdown)
        await asyncio.to_thread(strategy_tracing.shutdown)
        await server.stop(0)
    received = by_name(receiver.spans, "receive price")
    published = [s for s in receiver.spans if s[1] == "publish price" and s[2] == received[2]]
    assert received[0] == "opensqt-strategy"
    assert len(published) == 1, "the received price's trace starts at the monitor's publish"
    assert published[0][0] == "opensqt-monitor"
    assert len(received[2]) == 16


async def spans_exported_unflushed(receiver: Receiver, endpoint: str, count: int, within_s: float) -> int:
    """``count`` spans of one service, left to the batch processor (no flush) for ``within_s``:
    how many had reached ``receiver`` by then (the rest are flushed at the end)."""
    tracing = configure_tracing("executor", otlp_endpoint=endpoint)
    tracer = tracing.get_tracer("test")
    try:
        for i in range(count):
            with tracer.start_as_current_span("place", attributes={"client_order_id": f"BTCUSDT-{i}"}):
                pass
        await asyncio.sleep(within_s)
        return len(receiver.spans)
    finally:
        await asyncio.to_thread(tracing.shutdown)


async def test_spans_leave_in_batches_of_64_as_soon_as_a_batch_is_full() -> None:
    async with otlp_receiver() as (receiver, endpoint):
        arrived_unflushed = await spans_exported_unflushed(receiver, endpoint, 150, within_s=1.5)
    # the SDK's defaults would hold all 150 for 5 s (a batch of 512 is not full) and send one batch
    assert arrived_unflushed >= 128
    assert max(receiver.batches) <= 64
    assert sum(receiver.batches) == 150  # the rest at shutdown


async def test_the_opentelemetry_batch_variables_override_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "20")
    async with otlp_receiver() as (receiver, endpoint):
        await spans_exported_unflushed(receiver, endpoint, 50, within_s=0.5)
    assert sum(receiver.batches) == 50
    assert max(receiver.batches) <= 20
