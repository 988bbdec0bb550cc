"""Events between services over real NATS: typed, traced, and robust to malformed payloads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import nats
import pytest
from nats.js.api import DeliverPolicy
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from opensqt.certs import DevPki
from opensqt.config import NatsSettings
from opensqt.devstack import NatsServer
from opensqt.model import Position, PositionUpdate, PriceChange
from opensqt.telemetry import ServiceMetrics
from opensqt.transport.bus import EventBus, EventContext
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.subjects import POSITION, PRICE, RISK_STATE
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import events_pb2, executor_pb2, executor_pb2_grpc, risk_pb2, risk_pb2_grpc
from opensqt_services.executor.main import run as run_executor
from opensqt_services.executor.settings import ExecutorSettings
from tests.integration.conftest import RunningService
from tests.support.servers import Infra, running_service
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

HALTED = events_pb2.TRADING_STATE_KIND_HALTED


async def eventually(check: Callable[[], object], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def operator(pki: DevPki) -> TlsFiles:
    return TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))


async def executor_state(service: RunningService, pki: DevPki) -> executor_pb2.GetExecutorStatusResponse:
    async with secure_channel(service.target, operator(pki)) as channel:
        return await executor_pb2_grpc.ExecutorServiceStub(channel).GetStatus(
            executor_pb2.GetExecutorStatusRequest()
        )


async def test_state_published_by_risk_is_received_by_executor_with_the_same_trace_id(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    risk, executor = constellation["risk"], constellation["executor"]
    client_spans = InMemorySpanExporter()
    client_provider = TracerProvider()
    client_provider.add_span_processor(SimpleSpanProcessor(client_spans))
    async with secure_channel(risk.target, operator(pki), tracer_provider=client_provider) as channel:
        reply = await risk_pb2_grpc.RiskServiceStub(channel).Halt(risk_pb2.HaltRequest(reason="trace drill"))
    assert reply.trading_state.state == HALTED
    (client_span,) = client_spans.get_finished_spans()
    trace_id = client_span.context.trace_id

    def received() -> list[object]:
        return [
            s
            for s in executor.spans.get_finished_spans()
            if s.name == "receive risk_state" and s.kind is SpanKind.CONSUMER
        ]

    await eventually(lambda: received())
    (consumer_span,) = received()
    assert consumer_span.context.trace_id == trace_id  # type: ignore[attr-defined]
    risk_spans = {s.name: s for s in risk.spans.get_finished_spans()}
    assert risk_spans["opensqt.v1.RiskService/Halt"].context.trace_id == trace_id
    assert risk_spans["publish risk_state"].context.trace_id == trace_id
    # the other follower got it too, decoded
    strategy = constellation["strategy"]
    await eventually(lambda: strategy.metric("opensqt_nats_received_total", kind="risk_state") == 1)
    status = await executor_state(executor, pki)
    assert status.trading_state.state == HALTED
    assert status.trading_state.reason == "trace drill"
    assert status.trading_state.set_by == "operator"


async def test_malformed_payload_is_counted_and_dropped_and_the_subscriber_keeps_working(
    constellation: dict[str, RunningService], infra: Infra, pki: DevPki
) -> None:
    executor = constellation["executor"]
    raw = await nats.connect(infra.nats.url)
    try:
        js = raw.jetstream()
        await js.publish(RISK_STATE.subject(), b"\xff\xfe not a protobuf")
        # valid protobuf, but the state is UNSPECIFIED: the codec refuses it
        await js.publish(
            RISK_STATE.subject(), events_pb2.TradingState(reason="no state", version=99).SerializeToString()
        )
    finally:
        await raw.close()
    await eventually(
        lambda: (
            executor.metric("opensqt_nats_malformed_total", kind="risk_state", reason="protobuf") == 1
            and executor.metric("opensqt_nats_malformed_total", kind="risk_state", reason="codec") == 1
        )
    )
    assert (await executor_state(executor, pki)).trading_state.version == 0
    # the subscription is alive: a valid state still gets through
    async with secure_channel(constellation["risk"].target, operator(pki)) as channel:
        await risk_pb2_grpc.RiskServiceStub(channel).Halt(risk_pb2.HaltRequest(reason="after garbage"))
    await eventually(lambda: executor.metric("opensqt_nats_received_total", kind="risk_state") == 1)
    status = await executor_state(executor, pki)
    assert status.trading_state.state == HALTED
    assert status.trading_state.reason == "after garbage"


async def test_core_nats_subscriber_drops_malformed_prices_and_keeps_receiving(infra: Infra) -> None:
    metrics = ServiceMetrics("strategy")
    publisher = await EventBus.connect(
        NatsSettings(url=infra.nats.url), service="monitor", metrics=ServiceMetrics("monitor")
    )
    subscriber = await EventBus.connect(NatsSettings(url=infra.nats.url), service="strategy", metrics=metrics)
    received: list[PriceChange] = []

    async def on_price(price: PriceChange, ctx: EventContext) -> None:
        received.append(price)

    try:
        await subscriber.subscribe(PRICE, PRICE.pattern(venue="paper"), on_price)
        await subscriber.client.flush()
        subject = PRICE.subject(venue="paper", symbol="BTCUSDT")
        bad = events_pb2.PriceChange(venue="paper", symbol="BTCUSDT", price="NaN")

        def malformed() -> float:
            value = metrics.registry.get_sample_value(
                "opensqt_nats_malformed_total", {"kind": "price", "reason": "codec"}
            )
            return value or 0.0

        # core NATS is at most once, so send the bad payload until the subscriber has seen it
        for _ in range(50):
            await publisher.client.publish(subject, bad.SerializeToString())
            with contextlib.suppress(AssertionError):
                await eventually(lambda: malformed() >= 1, within=0.5)
                break
        good = PriceChange(venue="paper", symbol="BTCUSDT", price=Decimal("60123.45"), sequence=2)
        # core NATS is at most once (prices: latest wins), so publish until one arrives
        for _ in range(50):
            await publisher.publish(PRICE, subject, good)
            with contextlib.suppress(AssertionError):
                await eventually(lambda: len(received) >= 1, within=0.5)
                break
        assert received[0] == good
        assert malformed() >= 1
        assert all(p == good for p in received)  # nothing malformed was ever handed to the handler
        with pytest.raises(ValueError, match="not a risk_state subject"):
            await publisher.publish(RISK_STATE, subject, good)  # type: ignore[arg-type]
    finally:
        await publisher.close()
        await subscriber.close()


async def test_executor_started_after_a_halt_starts_halted(
    constellation: dict[str, RunningService], infra: Infra, pki: DevPki
) -> None:
    async with secure_channel(constellation["risk"].target, operator(pki)) as channel:
        await risk_pb2_grpc.RiskServiceStub(channel).Halt(risk_pb2.HaltRequest(reason="while you were out"))
    late_settings = infra.service_settings(ExecutorSettings, executor_id="executor-late")
    async with (
        running_service(run_executor, late_settings) as runtime,
        secure_channel(f"127.0.0.1:{runtime.grpc.port}", operator(pki)) as channel,
    ):
        status = await executor_pb2_grpc.ExecutorServiceStub(channel).GetStatus(
            executor_pb2.GetExecutorStatusRequest()
        )
    assert status.executor_id == "executor-late"
    assert status.trading_state.state == HALTED
    assert status.trading_state.reason == "while you were out"


async def test_resume_lifts_the_halt_everywhere_and_both_are_audited(
    constellation: dict[str, RunningService], infra: Infra, pki: DevPki
) -> None:
    async with secure_channel(constellation["risk"].target, operator(pki)) as channel:
        risk = risk_pb2_grpc.RiskServiceStub(channel)
        await risk.Halt(risk_pb2.HaltRequest(reason="drill", state=events_pb2.TRADING_STATE_KIND_REDUCING))
        resumed = await risk.Resume(risk_pb2.ResumeRequest(reason="drill over"))
    assert resumed.trading_state.state == events_pb2.TRADING_STATE_KIND_ACTIVE
    assert resumed.trading_state.version == 2
    executor = constellation["executor"]
    await eventually(
        lambda: (
            executor.metric("opensqt_trading_state", state="ACTIVE") == 1
            and executor.metric("opensqt_nats_received_total", kind="risk_state") == 2
        )
    )
    audit = await constellation["risk"].runtime.redis.client.xrange("opensqt:v1:risk:audit")
    actions = [(f[b"action"], f[b"identity"], f[b"state"]) for _, f in audit]
    assert actions == [(b"halt", b"operator", b"REDUCING"), (b"resume", b"operator", b"ACTIVE")]


@dataclass
class Partition:
    """A subscriber reaching NATS through a relay that can be cut, with an ephemeral JetStream
    subscription to positions (as the liquidation guard has), what it received, and a
    publisher connected directly."""

    proxy: TcpProxy
    subscriber: EventBus
    publisher: EventBus
    received: list[str]

    async def publish(self, event_id: str) -> None:
        update = PositionUpdate(event_id, Position("BTCUSDT", Decimal("0.010")))
        await self.publisher.publish(POSITION, POSITION_SUBJECT, update, msg_id=event_id)


POSITION_SUBJECT = POSITION.subject(account="main", symbol="BTCUSDT")


@contextlib.asynccontextmanager
async def partition(nats_server: NatsServer) -> AsyncIterator[Partition]:
    proxy = await TcpProxy(nats_server.port).start()
    subscriber = await EventBus.connect(
        NatsSettings(url=f"nats://127.0.0.1:{proxy.port}"),
        service="strategy",
        metrics=ServiceMetrics("strategy"),
    )
    publisher = await EventBus.connect(
        NatsSettings(url=nats_server.url), service="monitor", metrics=ServiceMetrics("monitor")
    )
    await subscriber.ensure_streams()
    rig = Partition(proxy, subscriber, publisher, [])

    async def on_position(update: PositionUpdate, ctx: EventContext) -> None:
        rig.received.append(update.event_id)

    await subscriber.subscribe(POSITION, POSITION_SUBJECT, on_position, deliver_policy=DeliverPolicy.NEW)
    try:
        yield rig
    finally:
        await subscriber.close()
        await publisher.close()
        await proxy.cut()


async def test_an_ephemeral_subscription_outlives_a_partition_longer_than_the_servers_consumer_timeout(
    nats: NatsServer,
) -> None:
    # Cut off for longer than the 5 s a server keeps an unwatched ephemeral consumer by default:
    # before, the subscription stayed silent after the reconnect (the liquidation guard blind to
    # positions, risk to candles). Now it is made again from the message after the last one
    # handled: what was published meanwhile arrives at once, nothing twice.
    async with partition(nats) as rig:
        await rig.publish("p1")
        await eventually(lambda: rig.received == ["p1"])
        await rig.proxy.cut()
        await asyncio.sleep(1)
        await rig.publish("p2")
        await asyncio.sleep(7)
        await rig.proxy.start()
        await eventually(lambda: rig.subscriber.is_connected, within=10)
        await rig.publish("p3")
        await eventually(lambda: rig.received == ["p1", "p2", "p3"], within=5)
        await asyncio.sleep(0.5)
        assert rig.received == ["p1", "p2", "p3"]


async def test_an_ephemeral_subscription_whose_consumer_the_server_dropped_is_made_again(
    nats: NatsServer,
) -> None:
    async with partition(nats) as rig:
        await rig.publish("q1")
        await eventually(lambda: rig.received == ["q1"])
        assert await rig.subscriber.restore_ephemerals() == 0  # its consumer is there
        js = rig.publisher.client.jetstream()
        stream = POSITION.stream
        assert stream is not None
        for info in await js.consumers_info(stream):
            await js.delete_consumer(stream, info.name)
        await rig.publish("q2")
        assert await rig.subscriber.restore_ephemerals() == 1
        await eventually(lambda: rig.received == ["q1", "q2"])


async def test_a_subscription_made_again_leaves_only_its_new_consumer_on_the_server(nats: NatsServer) -> None:
    # At a reconnect every ephemeral subscription is made again; the retired one's consumer is
    # deleted by the next check, or each reconnect would leave one behind on the server.
    async with partition(nats) as rig:
        await rig.publish("r1")
        await eventually(lambda: rig.received == ["r1"])
        js = rig.publisher.client.jetstream()
        stream = POSITION.stream
        assert stream is not None
        before = {info.name for info in await js.consumers_info(stream)}
        assert len(before) == 1
        assert await rig.subscriber.restore_ephemerals(only_lost=False) == 1  # as after a reconnect
        # the retired subscription unsubscribes once idle
        await eventually(lambda: not rig.subscriber._retiring)
        assert await rig.subscriber.restore_ephemerals() == 0  # the next check: nothing lost
        after = {info.name for info in await js.consumers_info(stream)}
        assert len(after) == 1
        assert after.isdisjoint(before)
        await rig.publish("r2")
        await eventually(lambda: rig.received == ["r1", "r2"])
        await asyncio.sleep(0.3)
        assert rig.received == ["r1", "r2"]
