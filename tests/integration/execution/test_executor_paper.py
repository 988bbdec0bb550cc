"""The executor service against the paper exchange: one order per client id, validation that
refuses before the venue, and the trading-state gate."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from decimal import Decimal

import aiohttp
import grpc
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from opensqt.certs import DevPki
from opensqt.config import RedisSettings
from opensqt.engine.gateway import ExecutorGateway
from opensqt.errors import InvalidOrder
from opensqt.model import OrderStatus, TradingStateKind
from opensqt.paper import PaperExchange
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.redis_keys import EXECUTOR_AUDIT
from opensqt.transport.redis_store import RedisStore, TradingStateStore
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import events_pb2, executor_pb2, executor_pb2_grpc, resources_pb2, risk_pb2, risk_pb2_grpc
from opensqt_services.executor.main import run as run_executor
from opensqt_services.executor.settings import ExecutorSettings
from opensqt_services.risk.main import run as run_risk
from opensqt_services.risk.settings import RiskSettings
from tests.integration.execution.conftest import ExecutorStack, venue_settings, wait_for_markets
from tests.integration.paper.conftest import Admin
from tests.support.grpcurl import grpcurl
from tests.support.servers import Infra, running_service
from tests.support.waiting import until

pytestmark = pytest.mark.integration


def limit(
    cid: str,
    price: str = "29000.0",
    qty: str = "0.010",
    side: int = resources_pb2.SIDE_BUY,
    symbol: str = "BTCUSDT",
) -> executor_pb2.OrderRequest:
    return executor_pb2.OrderRequest(
        symbol=symbol, client_order_id=cid, side=side, type=resources_pb2.ORDER_TYPE_LIMIT,
        time_in_force=resources_pb2.TIME_IN_FORCE_GTC, price=price, quantity=qty,
    )  # fmt: skip


def operator(pki: DevPki) -> TlsFiles:
    return TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))


async def test_grpcurl_operator_places_an_order_on_the_paper_exchange_and_reads_it_back(
    stack: ExecutorStack,
) -> None:
    pki = stack.infra.pki
    order = {
        "order": {
            "symbol": "BTCUSDT",
            "client_order_id": "grpcurl-1",
            "side": "SIDE_BUY",
            "type": "ORDER_TYPE_LIMIT",
            "time_in_force": "TIME_IN_FORCE_GTC",
            "price": "29500.0",
            "quantity": "0.002",
        }
    }
    placed = await grpcurl(
        stack.target, "opensqt.v1.ExecutorService/PlaceOrder", data=json.dumps(order), pki=pki
    )
    assert placed.returncode == 0, placed.stderr
    body = json.loads(placed.stdout)["order"]
    assert body["client_order_id"] == "grpcurl-1"
    assert body["status"] == "ORDER_STATUS_NEW"
    assert (await stack.venue_orders("grpcurl-1"))["grpcurl-1"] == [body["exchange_order_id"]]
    read = await grpcurl(
        stack.target,
        "opensqt.v1.ExecutorService/GetOrder",
        data='{"symbol": "BTCUSDT", "client_order_id": "grpcurl-1"}',
        pki=pki,
    )
    assert read.returncode == 0, read.stderr
    again = json.loads(read.stdout)["order"]
    assert again["exchange_order_id"] == body["exchange_order_id"]
    assert (Decimal(again["price"]), Decimal(again["quantity"])) == (Decimal("29500"), Decimal("0.002"))
    # and the strategy identity may not halt an executor
    denied = await grpcurl(
        stack.target, "opensqt.v1.ExecutorService/Halt", data="{}", pki=pki, identity="strategy"
    )
    assert denied.grpc_code == grpc.StatusCode.PERMISSION_DENIED.value[0]


async def test_the_same_client_order_id_sent_concurrently_gives_one_order(stack: ExecutorStack) -> None:
    async with stack.channel() as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        replies = await asyncio.gather(
            *(stub.PlaceOrder(executor_pb2.PlaceOrderRequest(order=limit("same-1"))) for _ in range(8))
        )
    assert len({r.order.exchange_order_id for r in replies}) == 1
    assert len((await stack.venue_orders("same-1"))["same-1"]) == 1


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (limit("bad-1", qty="NaN"), "order.quantity"),
        (limit("bad-2", qty="-0.010"), "order.quantity"),
        (limit("bad-3", qty="0"), "order.quantity"),
        (limit("bad-4", symbol="DOGEBTC"), "order.symbol"),
        (limit("bad-5", price="29000.05"), "order.price"),
        (limit("bad-6", qty="0.0105"), "order.quantity"),
        (limit("bad-7", qty="0.001", price="100.0"), "order.quantity"),  # notional 0.1 < min
        (limit(""), "order.client_order_id"),
        (limit("x" * 37), "order.client_order_id"),
        (limit("bad id!"), "order.client_order_id"),
        (limit("bad-8\n"), "order.client_order_id"),  # a trailing newline
        (limit("bad-9", qty="1e30"), "order.quantity"),  # its step check would overflow
        (limit("bad-10", price="1e30"), "order.price"),
    ],
    ids=[
        "nan",
        "negative",
        "zero",
        "unknown-symbol",
        "off-tick",
        "off-step",
        "min-notional",
        "no-id",
        "long-id",
        "bad-chars",
        "trailing-newline",
        "huge-quantity",
        "huge-price",
    ],
)
async def test_bad_order_arguments_are_refused_naming_the_field_and_never_reach_the_venue(
    stack: ExecutorStack, request_: executor_pb2.OrderRequest, field: str
) -> None:
    async with stack.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await executor_pb2_grpc.ExecutorServiceStub(channel).PlaceOrder(
                executor_pb2.PlaceOrderRequest(order=request_)
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith(f"{field}:"), refused.value.details()
    assert await stack.venue_orders() == {}


async def test_an_executor_started_while_halted_refuses_orders_until_resume(stack: ExecutorStack) -> None:
    infra, pki = stack.infra, stack.infra.pki
    async with (
        running_service(run_risk, infra.service_settings(RiskSettings)) as risk_runtime,
        secure_channel(f"127.0.0.1:{risk_runtime.grpc.port}", operator(pki)) as channel,
    ):
        risk = risk_pb2_grpc.RiskServiceStub(channel)
        await risk.Halt(risk_pb2.HaltRequest(reason="before the late executor"))
        late = infra.service_settings(
            ExecutorSettings, executor_id="executor-late", venue=venue_settings(stack.paper)
        )
        async with running_service(run_executor, late) as runtime:
            target = f"127.0.0.1:{runtime.grpc.port}"
            await wait_for_markets(target, pki)
            async with secure_channel(target, operator(pki)) as executor_channel:
                executor = executor_pb2_grpc.ExecutorServiceStub(executor_channel)
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await executor.PlaceOrder(executor_pb2.PlaceOrderRequest(order=limit("late-1")))
                assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert "HALTED" in refused.value.details()
                assert await stack.venue_orders() == {}
                resumed = await risk.Resume(risk_pb2.ResumeRequest(reason="all clear"))
                assert {a.executor_id for a in resumed.executors if a.acknowledged} >= {"executor-late"}
                placed = await executor.PlaceOrder(executor_pb2.PlaceOrderRequest(order=limit("late-2")))
                assert placed.order.status == resources_pb2.ORDER_STATUS_NEW


async def test_halt_leaves_no_working_order(stack: ExecutorStack) -> None:
    async with stack.channel() as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        for i, price in enumerate(("29000.0", "28900.0", "28800.0")):
            await stub.PlaceOrder(executor_pb2.PlaceOrderRequest(order=limit(f"work-{i}", price=price)))
    assert len(await stack.open_orders()) == 3
    async with stack.channel("risk") as channel:
        halted = await executor_pb2_grpc.ExecutorServiceStub(channel).Halt(
            executor_pb2.HaltExecutorRequest(reason="drill", state=events_pb2.TRADING_STATE_KIND_HALTED)
        )
    assert halted.cancelled_orders == 3
    assert await stack.open_orders() == []
    async with stack.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await executor_pb2_grpc.ExecutorServiceStub(channel).PlaceOrder(
                executor_pb2.PlaceOrderRequest(order=limit("after-halt"))
            )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_two_leg_sequence_on_the_paper_exchange_completes_and_is_idempotent(
    stack: ExecutorStack,
) -> None:
    market = resources_pb2.ORDER_TYPE_MARKET
    steps = [
        executor_pb2.SequenceStep(
            step_id="long-btc",
            order=executor_pb2.OrderRequest(
                symbol="BTCUSDT",
                client_order_id="seq1-a",
                side=resources_pb2.SIDE_BUY,
                type=market,
                quantity="0.010",
            ),
            compensate_on_failure=True,
        ),
        executor_pb2.SequenceStep(
            step_id="short-btc",
            order=executor_pb2.OrderRequest(
                symbol="BTCUSDT",
                client_order_id="seq1-b",
                side=resources_pb2.SIDE_SELL,
                type=market,
                quantity="1",
                reduce_only=True,
            ),
            size_from_step="long-btc",
        ),
    ]
    request = executor_pb2.ExecuteSequenceRequest(sequence_id="seq1", steps=steps)
    async with stack.channel() as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        first = await stub.ExecuteSequence(request)
        again = await stub.ExecuteSequence(request)
    assert first.status == executor_pb2.SEQUENCE_STATUS_COMPLETED
    assert [Decimal(s.order.filled_quantity) for s in first.steps] == [Decimal("0.010")] * 2
    assert again == first
    assert await stack.venue_orders() == {"seq1-a": ["1"], "seq1-b": ["2"]}


async def test_a_stop_mid_order_lets_the_workflow_finish_before_dbos_is_torn_down(
    paper: PaperExchange, infra: Infra
) -> None:
    """SIGTERM while an order is at the venue: the gRPC call is cut at the grace period, but the
    executor waits for the workflow before it destroys DBOS, so the journal records the outcome
    instead of leaving a half-run workflow (and a traceback) behind."""
    settings = infra.service_settings(ExecutorSettings, venue=venue_settings(paper))
    settings = settings.model_copy(update={"grpc": settings.grpc.model_copy(update={"grace_seconds": 0.1})})
    async with aiohttp.ClientSession() as session:
        admin = Admin(paper.rest_url, session)
        await admin.fault(kind="latency", ms=1500, path="/fapi/v1/order", method="POST")
        async with running_service(run_executor, settings) as runtime:
            target = f"127.0.0.1:{runtime.grpc.port}"
            await wait_for_markets(target, infra.pki)
            pki = infra.pki
            channel = secure_channel(target, TlsFiles(pki.ca, pki.cert("strategy"), pki.key("strategy")))
            call = asyncio.ensure_future(
                executor_pb2_grpc.ExecutorServiceStub(channel).PlaceOrder(
                    executor_pb2.PlaceOrderRequest(order=limit("drain-1"))
                )
            )
            await asyncio.sleep(0.4)  # the workflow is inside the venue call now
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            await call
        await channel.close()
        venue_log = [e for e in await admin.orders() if e["order"]["client_order_id"] == "drain-1"]

    assert [e["execution"] for e in venue_log] == ["NEW"]  # placed once
    entry = journal_entry(settings, "order:paper:main:drain-1")
    assert entry is not None
    assert entry[0] == "SUCCESS"


def journal_entry(settings: ExecutorSettings, workflow_id: str) -> tuple[str, str] | None:
    """(status, workflow function name) of one workflow in the executor's DBOS journal."""
    url = settings.dbos.url(settings.executor_id)
    table = "workflow_status" if url.startswith("sqlite") else "dbos.workflow_status"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.text(f"SELECT status, name FROM {table} WHERE workflow_uuid = :wid"), {"wid": workflow_id}
            ).first()
    finally:
        engine.dispose()
    return None if row is None else (str(row[0]), str(row[1]))


@pytest.mark.parametrize(
    ("journal", "workflow"), [("after", "record_order_workflow"), ("before", "place_order_workflow")]
)
async def test_every_order_is_journaled_under_its_idempotency_key_in_either_journal_mode(
    paper: PaperExchange, infra: Infra, journal: str, workflow: str
) -> None:
    """journal="after" answers once the venue has, then records the answer in DBOS; "before"
    sends from inside the workflow. Either way: concurrent and later repeats of one client id
    are one order and one send, each repeat's answer says it is a replay, the id reused for a
    different order is refused (ALREADY_EXISTS), and the journal holds the order under
    ``order:<venue>:<account>:<id>``."""
    settings = infra.service_settings(ExecutorSettings, venue=venue_settings(paper), order_journal=journal)
    cid = f"journal-{journal}"
    async with aiohttp.ClientSession() as session, running_service(run_executor, settings) as runtime:
        admin = Admin(paper.rest_url, session)
        target = f"127.0.0.1:{runtime.grpc.port}"
        await wait_for_markets(target, infra.pki)
        pki = infra.pki
        async with secure_channel(
            target, TlsFiles(pki.ca, pki.cert("strategy"), pki.key("strategy"))
        ) as channel:
            stub = executor_pb2_grpc.ExecutorServiceStub(channel)
            replies = await asyncio.gather(
                *(stub.PlaceOrder(executor_pb2.PlaceOrderRequest(order=limit(cid))) for _ in range(6))
            )
            later = await stub.PlaceOrder(executor_pb2.PlaceOrderRequest(order=limit(cid)))
            # the id again for another order: refused, and not taken for the earlier one
            with pytest.raises(grpc.aio.AioRpcError) as conflict:
                await stub.PlaceOrder(executor_pb2.PlaceOrderRequest(order=limit(cid, qty="0.020")))
        assert {r.order.exchange_order_id for r in replies} == {later.order.exchange_order_id}
        # one request sent it; every other answer says it was an earlier request's order
        assert sorted(r.replayed for r in replies) == [False] + [True] * 5
        assert later.replayed
        assert conflict.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "quantity 0.010; this request: quantity 0.020" in conflict.value.details()
        sends = (await admin.request("GET", "/admin/requests?path=/fapi/v1/order&method=POST"))["requests"]
        assert [r["client_order_id"] for r in sends] == [cid]

        async def recorded() -> tuple[str, str] | None:
            # the row exists (PENDING) from the workflow's start; wait for its outcome
            entry = await asyncio.to_thread(journal_entry, settings, f"order:paper:main:{cid}")
            return entry if entry is not None and entry[0] != "PENDING" else None

        entry = await until(recorded, f"the {journal} journal entry of {cid}", within=10)
    assert entry[0] == "SUCCESS"
    assert entry[1].endswith(workflow)


async def test_account_snapshot_lists_the_open_orders_and_the_position_the_fills_made(
    stack: ExecutorStack,
) -> None:
    async with stack.channel() as channel:  # the strategy identity, as a strategy reconciles
        gateway = ExecutorGateway(channel)
        empty = await gateway.account_snapshot("BTCUSDT")
        assert empty.open_orders == ()
        assert empty.position == 0
        assert empty.entry_price is None
        for cid, price in (("snap-rest-1", "29000.0"), ("snap-rest-2", "28900.0"), ("snap-fill", "30100.0")):
            await executor_pb2_grpc.ExecutorServiceStub(channel).PlaceOrder(
                executor_pb2.PlaceOrderRequest(order=limit(cid, price=price))
            )
        snapshot = await gateway.account_snapshot("BTCUSDT")
        assert sorted(o.client_order_id for o in snapshot.open_orders) == ["snap-rest-1", "snap-rest-2"]
        assert {o.status for o in snapshot.open_orders} == {OrderStatus.NEW}
        assert snapshot.position == Decimal("0.010")  # the crossing buy filled at 30000
        assert snapshot.entry_price == Decimal("30000")  # what a grid with no anchor rebuilds from
        assert snapshot.fetched_ms > 0
        open_at_venue = {o["client_order_id"] for o in await stack.open_orders()}
        assert open_at_venue == {"snap-rest-1", "snap-rest-2"}
        for symbol, reason in (("", "symbol: is required"), ("DOGEBTC", "symbol: unknown on paper: DOGEBTC")):
            with pytest.raises(InvalidOrder) as refused:
                await gateway.account_snapshot(symbol)
            assert str(refused.value).startswith(reason), str(refused.value)
    async with stack.channel("monitor") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await executor_pb2_grpc.ExecutorServiceStub(channel).GetAccountSnapshot(
                executor_pb2.GetAccountSnapshotRequest(symbol="BTCUSDT")
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_late_push_of_an_older_state_does_not_undo_a_newer_halt(stack: ExecutorStack) -> None:
    # risk pushes Resume v4 and Halt v5; the Resume arrives last
    kind = events_pb2.TRADING_STATE_KIND_HALTED
    async with stack.channel("risk") as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        await stub.Halt(executor_pb2.HaltExecutorRequest(reason="crash", state=kind, version=5))
        late = await stub.Resume(executor_pb2.ResumeExecutorRequest(reason="earlier all clear", version=4))
        assert (late.trading_state.state, late.trading_state.version) == (kind, 5)
        async with stack.channel() as strategy:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await executor_pb2_grpc.ExecutorServiceStub(strategy).PlaceOrder(
                    executor_pb2.PlaceOrderRequest(order=limit("after-late-resume"))
                )
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            newer = await stub.Resume(executor_pb2.ResumeExecutorRequest(reason="all clear", version=6))
            assert newer.trading_state.state == events_pb2.TRADING_STATE_KIND_ACTIVE
            placed = await executor_pb2_grpc.ExecutorServiceStub(strategy).PlaceOrder(
                executor_pb2.PlaceOrderRequest(order=limit("after-resume"))
            )
    assert placed.order.status == resources_pb2.ORDER_STATUS_NEW
    assert list(await stack.venue_orders()) == ["after-resume"]


async def test_a_late_halted_push_of_an_older_version_cancels_nothing(stack: ExecutorStack) -> None:
    # risk pushed Halt v5 then Resume v6; the Halt, delayed, arrives after the Resume
    async with stack.channel("risk") as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        resumed = await stub.Resume(executor_pb2.ResumeExecutorRequest(reason="all clear", version=6))
        assert resumed.trading_state.state == events_pb2.TRADING_STATE_KIND_ACTIVE
        async with stack.channel() as strategy:
            await executor_pb2_grpc.ExecutorServiceStub(strategy).PlaceOrder(
                executor_pb2.PlaceOrderRequest(order=limit("resting-1"))
            )
        late = await stub.Halt(
            executor_pb2.HaltExecutorRequest(
                reason="crash", state=events_pb2.TRADING_STATE_KIND_HALTED, version=5
            )
        )
        assert (late.trading_state.state, late.trading_state.version) == (
            events_pb2.TRADING_STATE_KIND_ACTIVE,
            6,
        )
    await asyncio.sleep(0.5)  # a HALTED that applied would be cancelling by now
    assert [o["client_order_id"] for o in await stack.open_orders()] == ["resting-1"]


async def test_a_halt_that_reached_only_redis_is_followed_within_the_state_check(
    stack: ExecutorStack,
) -> None:
    # risk wrote HALTED, then neither its NATS broadcast nor its push reached this executor
    async with stack.channel() as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        await stub.PlaceOrder(executor_pb2.PlaceOrderRequest(order=limit("resting-1")))
        store = await RedisStore.connect(RedisSettings(url=SecretStr(stack.infra.redis.url)), service="risk")
        try:
            await TradingStateStore(store).set(
                TradingStateKind.HALTED, reason="broadcast lost", set_by="risk", now_ms=1
            )
        finally:
            await store.close()

        probes = itertools.count()

        async def halted() -> bool:
            probe = f"probe-{next(probes)}"
            try:
                await stub.PlaceOrder(executor_pb2.PlaceOrderRequest(order=limit(probe)))
            except grpc.aio.AioRpcError as exc:
                return exc.code() == grpc.StatusCode.FAILED_PRECONDITION and "broadcast lost" in exc.details()
            await stub.CancelOrder(executor_pb2.CancelOrderRequest(symbol="BTCUSDT", client_order_id=probe))
            return False

        await until(halted, "the executor to follow the state in Redis", within=5, interval=0.2)
    assert await stack.open_orders() == []  # HALTED cancels the working orders too


async def test_an_operators_direct_halt_resume_and_cancel_all_are_audited_under_its_certificate(
    stack: ExecutorStack,
) -> None:
    halted_kind = events_pb2.TRADING_STATE_KIND_HALTED
    async with stack.channel("operator") as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        # requested_by is risk's to fill in: anyone else acts under its own certificate
        halted = await stub.Halt(
            executor_pb2.HaltExecutorRequest(reason="drill", state=halted_kind, requested_by="someone-else")
        )
        assert halted.trading_state.set_by == "operator"
        await stub.Resume(executor_pb2.ResumeExecutorRequest(reason="drill over"))
        await stub.CancelAll(executor_pb2.CancelAllRequest(reason="tidy up"))
    async with stack.channel("risk") as channel:  # risk's push names who asked it, and risk audits it
        pushed = await executor_pb2_grpc.ExecutorServiceStub(channel).Halt(
            executor_pb2.HaltExecutorRequest(
                reason="crash", state=halted_kind, version=7, requested_by="alice"
            )
        )
        assert pushed.trading_state.set_by == "alice"
    store = await RedisStore.connect(RedisSettings(url=SecretStr(stack.infra.redis.url)), service="reader")
    try:
        entries = await store.client.xrange(EXECUTOR_AUDIT.key())
    finally:
        await store.close()
    audited = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
    assert [(e["action"], e["identity"], e["reason"]) for e in audited] == [
        ("halt", "operator", "drill"),
        ("resume", "operator", "drill over"),
        ("cancel_all", "operator", "tidy up"),
    ]
    assert {e["executor"] for e in audited} == {"executor-0"}


async def test_a_stricter_state_in_redis_is_followed_whatever_its_version(stack: ExecutorStack) -> None:
    # risk's Redis lost its state, so its next Halt is version 1 while this executor holds 6;
    # and an operator's direct Resume does not outlast risk's HALTED
    async with stack.channel("risk") as channel:
        stub = executor_pb2_grpc.ExecutorServiceStub(channel)
        await stub.Resume(executor_pb2.ResumeExecutorRequest(reason="all clear", version=6))
    store = await RedisStore.connect(RedisSettings(url=SecretStr(stack.infra.redis.url)), service="risk")
    try:
        written = await TradingStateStore(store).set(
            TradingStateKind.HALTED, reason="halt after a Redis loss", set_by="risk", now_ms=1
        )
    finally:
        await store.close()
    assert written.version == 1

    async def state() -> executor_pb2.GetExecutorStatusResponse:
        async with stack.channel("operator") as channel:
            return await executor_pb2_grpc.ExecutorServiceStub(channel).GetStatus(
                executor_pb2.GetExecutorStatusRequest()
            )

    async def halted() -> bool:
        return (await state()).trading_state.state == events_pb2.TRADING_STATE_KIND_HALTED

    await until(halted, "the executor to follow the HALTED in Redis", within=5, interval=0.2)
    async with stack.channel("operator") as channel:
        resumed = await executor_pb2_grpc.ExecutorServiceStub(channel).Resume(
            executor_pb2.ResumeExecutorRequest(reason="I know better")
        )
    assert resumed.trading_state.state == events_pb2.TRADING_STATE_KIND_ACTIVE
    await until(halted, "risk's HALTED to be followed again", within=5, interval=0.2)
    assert (await state()).trading_state.reason == "halt after a Redis loss"
