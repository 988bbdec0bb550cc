"""Positions, leverage, funding and liquidation on the USDⓈ-M perpetuals."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from opensqt.clock import SystemClock
from opensqt.exchange.ccxt_adapter import CcxtExchange
from opensqt.paper import PaperExchange
from opensqt.paper.sources import ManualSource
from tests.integration.paper.conftest import PERP, Admin, make_ccxt, paper_settings

pytestmark = pytest.mark.integration


async def test_position_appears_with_entry_mark_pnl_and_liquidation_price(
    usdm: Any, perp_adapter: CcxtExchange, admin: Admin
) -> None:
    await usdm.create_order(PERP, "market", "buy", 0.1, None, {"clientOrderId": "long-1"})
    await admin.price("BTCUSDT", "30500.0")

    (raw,) = await usdm.fetch_positions([PERP])
    (position,) = await perp_adapter.fetch_positions(["BTCUSDT"])

    assert (raw["side"], raw["contracts"], raw["entryPrice"]) == ("long", 0.1, 30000.0)
    assert raw["markPrice"] == 30500.0
    assert raw["unrealizedPnl"] == 50.0
    assert position.size == Decimal("0.100")
    assert position.entry_price == Decimal(30000)
    assert position.unrealized_pnl == Decimal(50)
    # cross margin: the whole wallet (10 000 - fee 1.5) backs the position
    expected_liquidation = (Decimal("0.1") * 30000 - Decimal("9998.5")) / (Decimal("0.1") * Decimal("0.996"))
    assert expected_liquidation < 0
    assert position.liquidation_price == 0


async def test_leverage_limits_the_position_a_wallet_can_open(paper: PaperExchange, admin: Admin) -> None:
    await admin.open_account("small", "small-key", "small-secret", futures={"USDT": "1000"})
    client = make_ccxt("binanceusdm", paper, key="small-key", secret="small-secret")
    try:
        await client.load_markets()
        await client.set_leverage(2, PERP)
        with pytest.raises(ccxt.InsufficientFunds):
            await client.create_order(PERP, "market", "buy", 0.07, None)  # 2100 notional needs 1050
        await client.set_leverage(10, PERP)
        order = await client.create_order(PERP, "market", "buy", 0.07, None)
        with pytest.raises(ccxt.BadRequest, match="-4028"):  # ccxt checks 1..125 itself: go around it
            await client.fapiPrivatePostLeverage({"symbol": "BTCUSDT", "leverage": 126})
    finally:
        await client.close()

    assert order["status"] == "closed"
    state = await admin.state()
    assert state["accounts"]["small"]["usdm"]["positions"]["BTCUSDT"]["leverage"] == "10"


async def test_funding_payment_appears_in_income_and_in_the_wallet(usdm: Any, admin: Admin) -> None:
    await usdm.create_order(PERP, "market", "buy", 0.1, None)
    await usdm.create_order("ETH/USDT:USDT", "market", "sell", 1, None)

    await admin.funding("BTCUSDT", rate="0.0001")
    await admin.funding("ETHUSDT", rate="0.0002")
    history = await usdm.fetch_funding_history()
    balance = await usdm.fetch_balance()
    rates = await usdm.fetch_funding_rate_history(PERP)

    amounts = {entry["symbol"]: Decimal(entry["info"]["income"]) for entry in history}
    assert amounts == {PERP: Decimal("-0.3"), "ETH/USDT:USDT": Decimal("0.4")}  # long pays, short receives
    fees = Decimal("1.5") + Decimal("1.0")
    assert Decimal(balance["info"]["totalWalletBalance"]) == Decimal(10_000) - fees - Decimal(
        "0.3"
    ) + Decimal("0.4")
    assert [(entry["fundingRate"], entry["symbol"]) for entry in rates] == [(0.0001, PERP)]


class ShiftableClock(SystemClock):
    """The wall clock, plus a shift (to bring the next funding time forward)."""

    def __init__(self) -> None:
        self.shift_ms = 0

    def now_ms(self) -> int:
        return super().now_ms() + self.shift_ms


async def test_funding_settles_by_itself_every_interval_at_the_current_rate(tmp_path: Path) -> None:
    clock = ShiftableClock()
    exchange = PaperExchange(paper_settings(tmp_path / "paper.sqlite"), clock=clock, source=ManualSource())
    await exchange.start()
    client = make_ccxt("binanceusdm", exchange)
    try:
        await client.load_markets()
        await client.create_order(PERP, "market", "sell", 0.1, None)
        funding = await client.fetch_funding_rate(PERP)
        next_time = funding["fundingTimestamp"]
        clock.shift_ms = next_time - clock.now_ms() + 1  # the next funding time has come
        await asyncio.sleep(0.6)
        settled = exchange.venue.funding["BTCUSDT"].next_ms
        clock.shift_ms = 0
        history = await client.fetch_funding_history(PERP)
    finally:
        await client.close()
        await exchange.stop()

    assert [Decimal(entry["info"]["income"]) for entry in history] == [Decimal("0.3")]  # short receives
    assert settled == next_time + 8 * 3_600_000


async def test_position_is_liquidated_when_its_margin_runs_out(paper: PaperExchange, admin: Admin) -> None:
    await admin.open_account("thin", "thin-key", "thin-secret", futures={"USDT": "200"})
    client = make_ccxt("binanceusdm", paper, key="thin-key", secret="thin-secret")
    try:
        await client.load_markets()
        await client.create_order(PERP, "market", "buy", 0.1, None, {"clientOrderId": "thin-long"})
        await client.create_order(PERP, "limit", "buy", 0.01, 27000, {"clientOrderId": "thin-bid"})
        (position,) = await client.fetch_positions([PERP])
        liquidation = Decimal(position["info"]["liquidationPrice"])
        await admin.price("BTCUSDT", "28000.0")
        after = await client.fetch_positions([PERP])
        balance = await client.fetch_balance()
        bid = await client.fetch_order(None, PERP, {"origClientOrderId": "thin-bid"})
    finally:
        await client.close()

    # wallet 200 - fee 1.5 backs 0.1 BTC from 30000 down to (3000 - 198.5) / (0.1 x 0.996)
    expected = (Decimal(3000) - Decimal("198.5")) / (Decimal("0.1") * Decimal("0.996"))
    assert liquidation == expected.quantize(Decimal("1e-8"))
    assert after == []
    assert bid["status"] == "canceled"  # the venue cancels the account's orders first
    log = await admin.orders(account="thin")
    closing = [entry for entry in log if entry["liquidation"]]
    assert len(closing) == 1
    assert closing[0]["order"]["client_order_id"].startswith("autoclose-")
    assert Decimal(closing[0]["last_price"]) == expected
    loss = Decimal("0.1") * (Decimal(30000) - expected)
    fee = Decimal("0.1") * expected * Decimal("0.0005")
    wallet = Decimal(200) - Decimal("1.5") - loss - fee
    assert Decimal(balance["info"]["totalWalletBalance"]) == wallet.quantize(Decimal("1e-8"))
    assert wallet > 0  # what is left is the maintenance margin, less the closing fee
