"""The funding-rate arbitrage agent, live: a funding episode on the paper exchange opens a long
spot / short perp position through two executors, a funding flip in the next period closes it,
and the legs in Redis match the venue's spot balance and perp position at every stop.

Real servers throughout: the paper exchange (ccxt's unmodified binance and binanceusdm clients
speak to it), nats-server, redis-server, two executors (spot and USD-M, DBOS on SQLite), two
monitors and the strategy service, all over mTLS in this event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from opensqt.arbitrage.manager import decode_leg_record
from opensqt.exchange.settings import VenueSettings
from opensqt.model.money import round_to_step
from opensqt.model.state import Leg
from opensqt.paper import PaperExchange
from opensqt.paper.settings import MarketSettings
from opensqt.paper.sources import ManualSource
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.redis_keys import LEGS
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import strategy_pb2, strategy_pb2_grpc
from opensqt_services.executor.main import run as run_executor
from opensqt_services.executor.settings import ExecutorSettings
from opensqt_services.monitor.main import run as run_monitor
from opensqt_services.monitor.settings import MonitorSettings
from opensqt_services.strategy.main import run as run_strategy
from opensqt_services.strategy.settings import ArbitrageBotSettings, StrategySettings
from tests.integration.execution.conftest import wait_for_markets
from tests.integration.paper.conftest import (
    READ_KEY,
    READ_SECRET,
    TRADE_KEY,
    TRADE_SECRET,
    Admin,
    paper_settings,
    tuned_markets,
)
from tests.support.servers import Infra, running_service
from tests.support.waiting import agents_listed, until

pytestmark = pytest.mark.integration

SYMBOL = "BTCUSDT"
AGENT = "arb1"
SPOT_VENUE, PERP_VENUE = "paper-spot", "paper"
ENTRY_QTY = Decimal("0.010")
# The paper's spot commission (Binance VIP0, 0.1%), which a spot buy pays in BTC: the entry's
# buy is sized up so that what it receives covers ENTRY_QTY, as the bot's spot_taker_fee says.
SPOT_FEE = Decimal("0.001")
ENTRY_BUY = round_to_step(ENTRY_QTY / (1 - SPOT_FEE), Decimal("0.00001"), mode="up")  # 0.01002
ENTRY_HELD = ENTRY_BUY - (ENTRY_BUY * SPOT_FEE).quantize(Decimal("1e-8"))  # 0.01000998 BTC
EXIT_SELL = round_to_step(ENTRY_HELD, Decimal("0.00001"), mode="down")  # 0.01000: on the step
HIGH_RATE, FLIPPED_RATE = Decimal("0.001"), Decimal("-0.0005")


def _venue(paper: PaperExchange, name: str, *, spot: bool, trade: bool) -> VenueSettings:
    key, secret = (TRADE_KEY, TRADE_SECRET) if trade else (READ_KEY, READ_SECRET)
    return VenueSettings(
        name=name,
        exchange_id="binance" if spot else "binanceusdm",
        market_type="spot" if spot else "perpetual",
        rest_url=paper.rest_url,
        ws_url=paper.spot_ws_url if spot else paper.ws_url,
        api_key=SecretStr(key),
        api_secret=SecretStr(secret),
        timeout_ms=3000,
    )


@dataclass
class Stack:
    paper: PaperExchange
    admin: Admin
    infra: Infra
    strategy_target: str
    trade_qty: Decimal | None = None  # the books' most per trade (None: one trade per fill)

    async def price(self, price: str) -> None:
        await self.admin.price(SYMBOL, price)

    async def spot_balance(self) -> Decimal:
        state = await self.admin.state()
        return Decimal(state["accounts"]["main"]["spot"]["balances"].get("BTC", "0"))

    async def perp_position(self) -> Decimal:
        state = await self.admin.state()
        position = state["accounts"]["main"]["usdm"]["positions"].get(SYMBOL)
        return Decimal(position["size"]) if position else Decimal(0)

    async def legs(self) -> dict[str, Leg]:
        client = aioredis.from_url(self.infra.redis.url)
        try:
            raw = await client.hgetall(LEGS.key(agent=AGENT))
        finally:
            await client.aclose()
        return {record.leg.key: record.leg for record in map(decode_leg_record, raw.values())}

    async def leg_sizes(self) -> tuple[Decimal, Decimal]:
        legs = await self.legs()
        spot, perp = legs.get(f"{SPOT_VENUE}:{SYMBOL}"), legs.get(f"{PERP_VENUE}:{SYMBOL}")
        return (spot.size if spot else Decimal(-1), perp.size if perp else Decimal(-1))

    async def orders_by_client_id(self) -> dict[str, list[dict[str, Any]]]:
        """Every order of the paper exchange's log, latest state per exchange order id, grouped by
        client order id (a duplicate send would show as two exchange ids under one client id)."""
        latest: dict[str, dict[str, Any]] = {}
        for entry in await self.admin.request("GET", "/admin/orders?account=main"):
            order = entry["order"]
            latest[f"{entry['wallet']}:{order['exchange_order_id']}"] = order
        grouped: dict[str, list[dict[str, Any]]] = {}
        for order in latest.values():
            grouped.setdefault(order["client_order_id"], []).append(order)
        return grouped


async def start_venue_services(
    services: contextlib.AsyncExitStack, paper: PaperExchange, infra: Infra
) -> dict[str, str]:
    """A perp and a spot executor (with their markets loaded) and a monitor per venue, in
    ``services``; returns each venue's executor address."""
    executors = {}
    for executor_id, name, spot in (("exec-perp", PERP_VENUE, False), ("exec-spot", SPOT_VENUE, True)):
        settings = infra.service_settings(
            ExecutorSettings, executor_id=executor_id, venue=_venue(paper, name, spot=spot, trade=True)
        )
        runtime = await services.enter_async_context(running_service(run_executor, settings))
        executors[name] = f"127.0.0.1:{runtime.grpc.port}"
        await wait_for_markets(executors[name], infra.pki)
    for name, spot in ((PERP_VENUE, False), (SPOT_VENUE, True)):
        settings = infra.service_settings(
            MonitorSettings,
            venue=_venue(paper, name, spot=spot, trade=False),
            symbols=(SYMBOL,),
            position_poll_seconds=0.2,
        )
        await services.enter_async_context(running_service(run_monitor, settings))
    return executors


def arbitrage_strategy(
    infra: Infra, executors: dict[str, str], *bots: ArbitrageBotSettings
) -> StrategySettings:
    """The strategy service's settings for ``bots`` on the two venues' executors."""
    return infra.service_settings(
        StrategySettings,
        market_venue=PERP_VENUE,
        executor_address=executors[PERP_VENUE],
        spot_market_venue=SPOT_VENUE,
        spot_executor_address=executors[SPOT_VENUE],
        arbitrage_bots=bots,
    )


def busy_books(state_file: Path, trade_qty: Decimal) -> list[MarketSettings]:
    """The default markets, every book filling at most ``trade_qty`` per trade."""
    spot_busy = tuned_markets(paper_settings(state_file).markets, "spot", max_trade_qty=trade_qty)
    return tuned_markets(spot_busy, "perp", max_trade_qty=trade_qty)


@pytest.fixture
async def stack(request: pytest.FixtureRequest, tmp_path: Path, infra: Infra) -> AsyncIterator[Stack]:
    """The constellation for one bot; ``request.param`` (indirect): the books' trade size."""
    state_file = tmp_path / "paper.sqlite"
    trade_qty: Decimal | None = getattr(request, "param", None)
    markets = busy_books(state_file, trade_qty) if trade_qty else paper_settings(state_file).markets
    paper = PaperExchange(paper_settings(state_file, markets=markets), source=ManualSource())
    await paper.start()
    try:
        async with contextlib.AsyncExitStack() as services, aiohttp.ClientSession() as session:
            executors = await start_venue_services(services, paper, infra)
            bot = ArbitrageBotSettings(name=AGENT, symbol=SYMBOL, order_base_qty=ENTRY_QTY)
            settings = arbitrage_strategy(infra, executors, bot)
            strategy = await services.enter_async_context(running_service(run_strategy, settings))
            yield Stack(
                paper, Admin(paper.rest_url, session), infra, f"127.0.0.1:{strategy.grpc.port}", trade_qty
            )
    finally:
        await paper.stop()


async def assert_legs_match_the_venue(stack: Stack, within: float = 10.0) -> tuple[Decimal, Decimal]:
    """Redis legs equal the paper's spot BTC balance and USD-M position (retried: two reads one
    after the other can straddle a position poll)."""
    deadline = time.monotonic() + within
    while True:
        legs = await stack.leg_sizes()
        venue = (await stack.spot_balance(), await stack.perp_position())
        if legs == venue:
            return venue
        if time.monotonic() > deadline:
            raise AssertionError(f"legs in Redis {legs} != venue (spot balance, perp position) {venue}")
        await asyncio.sleep(0.2)


# one trade per fill, and busy books where every order fills in trades of at most 0.004 BTC
# (the spot buy's commission then comes per trade, each rounded to 8 decimals)
@pytest.mark.parametrize("stack", [None, Decimal("0.004")], indirect=True, ids=["one-trade", "busy-books"])
async def test_funding_episode_opens_hedged_legs_and_a_flip_closes_them(stack: Stack) -> None:
    assert await stack.spot_balance() == 0
    assert await stack.perp_position() == 0

    # a funding episode: 0.1% per 8 h (APR 1.095) is far above the 0.1365 entry threshold
    await stack.admin.request("POST", "/admin/funding-rate", {"symbol": SYMBOL, "rate": str(HIGH_RATE)})

    async def opened() -> bool:
        # price moves carry the mark-price stream (funding) and keep both legs' prices fresh
        await stack.price("30000.0")
        return await stack.spot_balance() == ENTRY_HELD and await stack.perp_position() == -ENTRY_QTY

    await until(opened, "long spot / short perp on the venue")
    # the spot leg is what the account holds, net of the commission the buy paid in BTC; the
    # difference to the perp is below the spot's minimum notional (an untradeable residual)
    assert await assert_legs_match_the_venue(stack) == (ENTRY_HELD, -ENTRY_QTY)

    # the next funding period comes with the rate flipped: the position now pays, so it closes
    await stack.admin.request(
        "POST", "/admin/funding", {"symbol": SYMBOL, "rate": str(FLIPPED_RATE), "at": "next"}
    )

    async def closed() -> bool:
        await stack.price("30010.0")
        return await stack.spot_balance() == ENTRY_HELD - EXIT_SELL and await stack.perp_position() == 0

    await until(closed, "both legs flat on the venue")
    # what is left of the spot is below its step (dust), and the leg says so too
    assert await assert_legs_match_the_venue(stack) == (ENTRY_HELD - EXIT_SELL, Decimal(0))

    # exactly four orders, each sent once: entry spot + perp, exit perp (reduce-only) + spot;
    # the exit sells what the account holds, down to the step
    orders = await stack.orders_by_client_id()
    ours = {cid: found for cid, found in orders.items() if cid.startswith(f"{AGENT}-")}
    assert all(len(found) == 1 for found in ours.values()), ours
    by_step = {cid.rsplit("-", 1)[1]: found[0] for cid, found in ours.items()}
    assert sorted(by_step) == ["ep0", "es0", "xp0", "xs0"], sorted(ours)
    assert all(order["status"] == "FILLED" for order in by_step.values())
    assert [
        (by_step[s]["side"], Decimal(by_step[s]["filled_qty"])) for s in ("es0", "ep0", "xp0", "xs0")
    ] == [
        ("BUY", ENTRY_BUY),
        ("SELL", ENTRY_QTY),
        ("BUY", ENTRY_QTY),
        ("SELL", EXIT_SELL),
    ]
    assert by_step["xp0"]["reduce_only"] is True
    # each order's trades: one, or on busy books as many as its size needs
    trades = await stack.admin.request("GET", "/admin/trades")
    for step, order in by_step.items():
        sizes = [Decimal(t["quantity"]) for t in trades if t["client_order_id"] == order["client_order_id"]]
        assert sum(sizes) == Decimal(order["filled_qty"]), step
        most = stack.trade_qty or Decimal(order["filled_qty"])
        assert len(sizes) == math.ceil(Decimal(order["filled_qty"]) / most), (step, sizes)

    # the strategy service reports the same legs
    pki = stack.infra.pki
    tls = TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))
    async with secure_channel(stack.strategy_target, tls) as channel:
        reply = await strategy_pb2_grpc.StrategyServiceStub(channel).ListLegs(
            strategy_pb2.ListLegsRequest(agent=AGENT)
        )
    assert {(leg.venue, leg.symbol, Decimal(leg.size)) for leg in reply.legs} == {
        (SPOT_VENUE, SYMBOL, ENTRY_HELD - EXIT_SELL),
        (PERP_VENUE, SYMBOL, Decimal(0)),
    }


async def test_a_bot_whose_legs_cannot_be_read_is_shown_not_started_and_the_others_run(
    tmp_path: Path, infra: Infra
) -> None:
    paper = PaperExchange(paper_settings(tmp_path / "paper.sqlite"), source=ManualSource())
    await paper.start()
    redis = aioredis.from_url(infra.redis.url)
    await redis.hset(LEGS.key(agent="arb0"), f"{SPOT_VENUE}:ETHUSDT", b"{not json")
    try:
        async with contextlib.AsyncExitStack() as services:
            executors = await start_venue_services(services, paper, infra)
            settings = arbitrage_strategy(
                infra,
                executors,
                ArbitrageBotSettings(name="arb0", symbol="ETHUSDT", order_base_qty=Decimal("0.1")),
                ArbitrageBotSettings(name=AGENT, symbol=SYMBOL, order_base_qty=ENTRY_QTY),
            )
            strategy = await services.enter_async_context(running_service(run_strategy, settings))
            pki = infra.pki
            tls = TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))
            async with secure_channel(f"127.0.0.1:{strategy.grpc.port}", tls) as channel:
                stub = strategy_pb2_grpc.StrategyServiceStub(channel)

                agents = await agents_listed(stub, "arb0", AGENT)
                assert agents["arb0"].paused
                assert agents["arb0"].pause_reason.startswith("start failed (LegDecodeError")
                assert not agents[AGENT].paused
                resumed = {
                    a.agent: a for a in (await stub.Resume(strategy_pb2.ResumeStrategyRequest())).agents
                }
                assert resumed["arb0"].pause_reason == agents["arb0"].pause_reason
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.ListLegs(strategy_pb2.ListLegsRequest(agent="arb0"))
                assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
                every = await stub.ListLegs(strategy_pb2.ListLegsRequest())
                assert {leg.symbol for leg in every.legs} == {SYMBOL}
    finally:
        await redis.aclose()
        await paper.stop()


async def test_on_a_thin_perp_book_the_entry_hedges_what_filled_and_the_exit_goes_on_until_flat(
    stack: Stack,
) -> None:
    """The perp book holds 0.006 BTC at the touch: the entry's perp sell fills 0.006 of 0.010
    and expires, so the spot unwinds what is not hedged. Before the exit the book thins to
    0.004: the exit's perp buy-back fills 0.004 of 0.006, the spot sells as much, and the exit
    goes on with what is left a second later, until both legs are flat. The legs in Redis
    match the venue at every stop, and no order is sent twice."""
    perp_depth = {"symbol": SYMBOL, "family": "usdm"}
    await stack.admin.request("POST", "/admin/book", {**perp_depth, "depth": "0.006"})
    await stack.admin.request("POST", "/admin/funding-rate", {"symbol": SYMBOL, "rate": str(HIGH_RATE)})
    hedged = ENTRY_HELD - Decimal("0.004")  # the spot unwinds 0.00400998 down to its step

    async def opened() -> bool:
        await stack.price("30000.0")
        return await stack.spot_balance() == hedged and await stack.perp_position() == Decimal("-0.006")

    await until(opened, "a long spot / short perp of 0.006 on the venue")
    assert await assert_legs_match_the_venue(stack) == (hedged, Decimal("-0.006"))

    await stack.admin.request("POST", "/admin/book", {**perp_depth, "depth": "0.004"})
    await stack.admin.request(
        "POST", "/admin/funding", {"symbol": SYMBOL, "rate": str(FLIPPED_RATE), "at": "next"}
    )

    async def closed() -> bool:
        await stack.price("30010.0")
        return await stack.perp_position() == 0 and await stack.spot_balance() < Decimal("0.00001")

    await until(closed, "both legs flat after two exit attempts")
    dust = hedged - Decimal("0.00600")
    assert await assert_legs_match_the_venue(stack) == (dust, Decimal(0))

    orders = await stack.orders_by_client_id()
    ours = {cid: found for cid, found in orders.items() if cid.startswith(f"{AGENT}-")}
    assert all(len(found) == 1 for found in ours.values()), ours
    sent = sorted(
        (int(cid.split("-")[1], 36), cid.rsplit("-", 1)[1], o["side"], o["status"], Decimal(o["filled_qty"]))
        for cid, (o,) in ours.items()
    )
    assert [row[1:] for row in sent] == [
        # the entry: the perp fills what the book holds, the spot unwinds the rest
        ("cs0", "SELL", "FILLED", Decimal("0.00400")),
        ("ep0", "SELL", "EXPIRED", Decimal("0.006")),
        ("es0", "BUY", "FILLED", ENTRY_BUY),
        # the exit, first attempt: 0.004 of the perp's 0.006, and as much spot
        ("xp0", "BUY", "EXPIRED", Decimal("0.004")),
        ("xs0", "SELL", "FILLED", Decimal("0.00400")),
        # the exit goes on with what is left
        ("xp0", "BUY", "FILLED", Decimal("0.002")),
        ("xs0", "SELL", "FILLED", Decimal("0.00200")),
    ]
