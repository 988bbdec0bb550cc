"""Risk reaches every executor: durable state, NATS broadcast and a push with acknowledgements;
crash detection over candles published on NATS."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from opensqt.certs import DevPki
from opensqt.devstack import free_port
from opensqt.model import TradingStateKind
from opensqt.risk.monitor import CRASH_IDENTITY as CRASH
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.redis_keys import EXECUTOR_REGISTRY
from opensqt.transport.redis_store import RedisStore, TradingStateStore
from opensqt.transport.subjects import CANDLE
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import events_pb2, executor_pb2, executor_pb2_grpc, risk_pb2, risk_pb2_grpc
from opensqt_services.executor.main import run as run_executor
from opensqt_services.executor.settings import ExecutorSettings
from opensqt_services.risk.main import run as run_risk
from opensqt_services.risk.settings import CrashSettings, RiskSettings
from tests.integration.conftest import RunningService
from tests.support.servers import Infra, running_service
from tests.support.shared_data import load_candles, require_shared_file

pytestmark = pytest.mark.integration

HALTED, REDUCING = events_pb2.TRADING_STATE_KIND_HALTED, events_pb2.TRADING_STATE_KIND_REDUCING


def operator(pki: DevPki) -> TlsFiles:
    return TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))


async def eventually(check: Callable[[], object], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def executor_status(address: str, pki: DevPki) -> executor_pb2.GetExecutorStatusResponse:
    async with secure_channel(address, operator(pki)) as channel:
        return await executor_pb2_grpc.ExecutorServiceStub(channel).GetStatus(
            executor_pb2.GetExecutorStatusRequest()
        )


async def test_halt_is_pushed_to_every_registered_executor_and_acknowledged(
    constellation: dict[str, RunningService], infra: Infra, pki: DevPki
) -> None:
    second = infra.service_settings(ExecutorSettings, executor_id="executor-b")
    async with running_service(run_executor, second) as runtime_b:
        async with secure_channel(constellation["risk"].target, operator(pki)) as channel:
            reply = await risk_pb2_grpc.RiskServiceStub(channel).Halt(
                risk_pb2.HaltRequest(reason="fan-out drill")
            )
        acks = {a.executor_id: a for a in reply.executors}
        assert set(acks) == {"executor-0", "executor-b"}
        assert all(a.acknowledged for a in acks.values()), acks
        for address in (constellation["executor"].target, f"127.0.0.1:{runtime_b.grpc.port}"):
            status = await executor_status(address, pki)
            assert status.trading_state.state == HALTED
            assert status.trading_state.version == reply.trading_state.version


async def test_an_unreachable_executor_is_reported_and_does_not_hold_up_the_others(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    redis = constellation["executor"].runtime.redis
    ghost = {
        "address": f"127.0.0.1:{free_port()}",
        "venue": "paper",
        "account": "main",
        "heartbeat_ms": int(time.time() * 1000),
    }
    await redis.client.hset(EXECUTOR_REGISTRY.key(), "executor-ghost", json.dumps(ghost))
    started = time.monotonic()
    async with secure_channel(constellation["risk"].target, operator(pki)) as channel:
        reply = await risk_pb2_grpc.RiskServiceStub(channel).Halt(risk_pb2.HaltRequest(reason="ghost drill"))
    assert time.monotonic() - started < 4.0  # bounded by the push deadline
    acks = {a.executor_id: a for a in reply.executors}
    assert acks["executor-0"].acknowledged
    assert not acks["executor-ghost"].acknowledged
    assert acks["executor-ghost"].error.startswith(("UNAVAILABLE", "DEADLINE_EXCEEDED"))
    # the durable state moved regardless
    assert reply.trading_state.state == HALTED


async def test_luna_candles_published_on_nats_trip_crash_detection_and_reduce_every_executor(
    infra: Infra, pki: DevPki
) -> None:
    btc = load_candles(
        require_shared_file("binance_um_btcusdt_1m_2022-05-07_2022-05-14.csv"),
        symbol="BTCUSDT",
        interval="1m",
        venue="paper",
    )
    eth = load_candles(
        require_shared_file("binance_um_ethusdt_1m_2022-05-07_2022-05-14.csv"),
        symbol="ETHUSDT",
        interval="1m",
        venue="paper",
    )
    risk_settings = infra.service_settings(RiskSettings, crash=CrashSettings(symbols=("BTCUSDT", "ETHUSDT")))
    async with (
        running_service(run_risk, risk_settings) as risk,
        running_service(run_executor, infra.service_settings(ExecutorSettings)) as executor,
    ):
        bus = risk.bus
        # replay the days before the LUNA capitulation, minute by minute, both symbols
        for b, e in zip(btc[: 4 * 1440], eth[: 4 * 1440], strict=True):
            assert b.open_ms == e.open_ms
            await bus.publish(CANDLE, CANDLE.subject(venue="paper", symbol="BTCUSDT", interval="1m"), b)
            await bus.publish(CANDLE, CANDLE.subject(venue="paper", symbol="ETHUSDT", interval="1m"), e)
        address = f"127.0.0.1:{executor.grpc.port}"
        state: list[int] = []

        async def poll() -> None:
            state.append((await executor_status(address, pki)).trading_state.state)

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            await poll()
            if state[-1] == REDUCING:
                break
            await asyncio.sleep(0.1)
        assert state[-1] == REDUCING
        async with secure_channel(f"127.0.0.1:{risk.grpc.port}", operator(pki)) as channel:
            alerts = await risk_pb2_grpc.RiskServiceStub(channel).ListAlerts(risk_pb2.ListAlertsRequest())
        crash = [a for a in alerts.alerts if a.kind == events_pb2.ALERT_KIND_CRASH]
        assert crash
        assert set(crash[-1].symbols) == {"BTCUSDT", "ETHUSDT"}
        assert risk.metrics.registry.get_sample_value("opensqt_trading_state", {"state": "REDUCING"}) in (
            0.0,
            1.0,
        )


async def test_a_restarted_risk_reasserts_a_state_it_stored_but_never_delivered(
    infra: Infra, pki: DevPki
) -> None:
    """A risk killed between its Redis write and the broadcast: the next risk delivers it."""
    async with running_service(run_executor, infra.service_settings(ExecutorSettings)) as executor:
        address = f"127.0.0.1:{executor.grpc.port}"
        registry = executor.redis
        deadline = time.monotonic() + 10
        while not await registry.client.hexists(EXECUTOR_REGISTRY.key(), "executor-0"):
            assert time.monotonic() < deadline, "the executor never registered"
            await asyncio.sleep(0.05)
        # what a risk that died right after its durable write leaves behind
        as_risk = RedisStore(registry.client, service="risk")
        stored = await TradingStateStore(as_risk).set(
            TradingStateKind.REDUCING, reason="written, then risk died", set_by="operator", now_ms=1
        )
        assert (await executor_status(address, pki)).trading_state.state != REDUCING

        async with running_service(run_risk, infra.service_settings(RiskSettings)):
            status = await executor_status(address, pki)
        assert status.trading_state.state == REDUCING
        assert status.trading_state.version == stored.version


async def test_automatic_state_writes_are_guarded_in_redis(infra: Infra) -> None:
    """The crash detector's writes are conditional on the state Redis holds at that moment."""
    client = aioredis.from_url(infra.redis.url, decode_responses=False)
    try:
        states = TradingStateStore(RedisStore(client, service="risk"))
        # escalate: ACTIVE (never set) -> REDUCING is stricter, written
        written, held = await states.set_guarded(
            TradingStateKind.REDUCING, reason="crash", set_by=CRASH, now_ms=1, guard="escalate"
        )
        assert written
        assert (held.state, held.version) == (TradingStateKind.REDUCING, 1)
        operator_halt = await states.set(TradingStateKind.HALTED, reason="drill", set_by="operator", now_ms=2)
        # a crash's REDUCING (or another HALTED) does not replace the operator's HALTED
        for wanted in (TradingStateKind.REDUCING, TradingStateKind.HALTED):
            written, held = await states.set_guarded(
                wanted, reason="crash", set_by=CRASH, now_ms=3, guard="escalate"
            )
            assert not written
            assert held == operator_halt
        assert await states.get() == operator_halt
        # version: a recovery decided on version 1 does not lift the operator's halt (version 2)
        written, held = await states.set_guarded(
            TradingStateKind.ACTIVE, reason="recovered", set_by=CRASH, now_ms=4,
            guard="version", expected_version=1,
        )  # fmt: skip
        assert not written
        assert held == operator_halt
        written, held = await states.set_guarded(
            TradingStateKind.ACTIVE, reason="resume", set_by="operator", now_ms=5,
            guard="version", expected_version=operator_halt.version,
        )  # fmt: skip
        assert written
        assert (held.state, held.version) == (TradingStateKind.ACTIVE, operator_halt.version + 1)
        assert await states.get() == held
        # an operator's REDUCING is not taken over by a stricter crash (recovery would lift it)
        operator_reducing = await states.set(
            TradingStateKind.REDUCING, reason="calm down", set_by="operator", now_ms=6
        )
        written, held = await states.set_guarded(
            TradingStateKind.HALTED, reason="crash", set_by=CRASH, now_ms=7, guard="escalate"
        )
        assert not written
        assert held == operator_reducing
        # the detector's own REDUCING may harden into HALTED
        await states.set(TradingStateKind.REDUCING, reason="crash", set_by=CRASH, now_ms=8)
        written, held = await states.set_guarded(
            TradingStateKind.HALTED, reason="crash again", set_by=CRASH, now_ms=9, guard="escalate"
        )
        assert written
        assert (held.state, held.set_by) == (TradingStateKind.HALTED, CRASH)
    finally:
        await client.aclose()


async def test_a_crash_does_not_soften_an_operators_halt(infra: Infra, pki: DevPki) -> None:
    """HALTED by an operator, then the LUNA crash trips the detector: the executors stay HALTED
    (a crash's REDUCING would let reduce-only orders out) and the halt stays the operator's."""
    btc = load_candles(
        require_shared_file("binance_um_btcusdt_1m_2022-05-07_2022-05-14.csv"),
        symbol="BTCUSDT",
        interval="1m",
        venue="paper",
    )
    risk_settings = infra.service_settings(RiskSettings, crash=CrashSettings(symbols=("BTCUSDT",)))
    async with (
        running_service(run_risk, risk_settings) as risk,
        running_service(run_executor, infra.service_settings(ExecutorSettings)) as executor,
        secure_channel(f"127.0.0.1:{risk.grpc.port}", operator(pki)) as channel,
    ):
        stub = risk_pb2_grpc.RiskServiceStub(channel)
        halted = await stub.Halt(risk_pb2.HaltRequest(reason="operator drill"))
        assert halted.trading_state.state == HALTED
        subject = CANDLE.subject(venue="paper", symbol="BTCUSDT", interval="1m")
        for candle in btc[: 4 * 1440]:
            await risk.bus.publish(CANDLE, subject, candle)

        async def crash_alerted() -> bool:
            alerts = await stub.ListAlerts(risk_pb2.ListAlertsRequest())
            return any(a.kind == events_pb2.ALERT_KIND_CRASH for a in alerts.alerts)

        deadline = time.monotonic() + 20
        while not await crash_alerted():
            assert time.monotonic() < deadline, "the LUNA replay never tripped crash detection"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # what the crash would have pushed has had time to arrive
        status = await executor_status(f"127.0.0.1:{executor.grpc.port}", pki)
        assert status.trading_state.state == HALTED
        assert status.trading_state.version == halted.trading_state.version
        stored = await TradingStateStore(risk.redis).get()
        assert (stored.state, stored.set_by, stored.version) == (
            TradingStateKind.HALTED,
            "operator",
            halted.trading_state.version,
        )
