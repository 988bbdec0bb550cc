"""Accounting reconciles: after a scripted session, balances equal deposits + realized PnL
- fees +/- funding, to the cent, against a hand-computed expectation."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest

from opensqt.model import MarketType
from opensqt.paper import PaperExchange
from tests.integration.paper.conftest import PERP, SPOT, Admin, adapter_for, make_ccxt

pytestmark = pytest.mark.integration

CENT = Decimal("0.01")


async def test_futures_wallet_is_deposits_plus_realized_pnl_minus_fees_plus_funding(
    paper: PaperExchange, admin: Admin
) -> None:
    await admin.open_account("ledger", "ledger-key", "ledger-secret", futures={"USDT": "10000"})
    client = make_ccxt("binanceusdm", paper, key="ledger-key", secret="ledger-secret")
    adapter = adapter_for(paper, MarketType.PERPETUAL, key="ledger-key", secret="ledger-secret")
    try:
        await client.load_markets()
        await adapter.load_markets()
        # long 0.1 at 30000 (taker), half taken profit at 30500 (maker), funding, rest closed at 30200
        await client.create_order(PERP, "market", "buy", 0.1, None)
        await client.create_order(PERP, "limit", "sell", 0.05, 30500)
        await admin.price("BTCUSDT", "30600.0")
        await admin.funding("BTCUSDT", rate="0.0001")
        await admin.price("BTCUSDT", "30200.0")
        await client.create_order(PERP, "market", "sell", 0.05, None)
        await admin.funding("BTCUSDT", rate="-0.0003")  # flat: nothing to pay
        # short 0.2 at 30200, funding received, closed at 30000
        await client.create_order(PERP, "market", "sell", 0.2, None)
        await admin.funding("BTCUSDT", rate="0.0002")
        await admin.price("BTCUSDT", "30000.0")
        await client.create_order(PERP, "market", "buy", 0.2, None)
        balances = await adapter.fetch_balances()
        income = await client.fapiPrivateGetIncome({"limit": 1000})
    finally:
        await client.close()
        await adapter.close()

    realized = Decimal("0.05") * 500 + Decimal("0.05") * 200 + Decimal("0.2") * 200
    fees = (
        Decimal("0.1") * 30000 * Decimal("0.0005")  # 1.5 taker
        + Decimal("0.05") * 30500 * Decimal("0.0002")  # 0.305 maker
        + Decimal("0.05") * 30200 * Decimal("0.0005")  # 0.755 taker
        + Decimal("0.2") * 30200 * Decimal("0.0005")  # 3.02 taker
        + Decimal("0.2") * 30000 * Decimal("0.0005")  # 3.0 taker
    )
    funding = -Decimal("0.05") * 30600 * Decimal("0.0001") + Decimal("0.2") * 30200 * Decimal("0.0002")
    expected = Decimal(10_000) + realized - fees + funding
    assert expected == Decimal("10067.475")
    assert balances["USDT"].total.quantize(CENT) == expected.quantize(CENT)
    assert balances["USDT"].total == expected

    totals: dict[str, Decimal] = defaultdict(Decimal)
    for entry in income:
        totals[entry["incomeType"]] += Decimal(entry["income"])
    assert dict(totals) == {
        "TRANSFER": Decimal(10_000),
        "REALIZED_PNL": realized,
        "COMMISSION": -fees,
        "FUNDING_FEE": funding,
    }
    assert sum(totals.values()) == balances["USDT"].total


async def test_spot_balances_are_deposits_plus_trade_flows_minus_fees(
    paper: PaperExchange, admin: Admin
) -> None:
    # Binance spot without BNB fees: a buy pays its commission in the base asset it receives,
    # a sell in the quote asset
    await admin.open_account("spotter", "spotter-key", "spotter-secret", spot={"USDT": "10000"})
    client = make_ccxt("binance", paper, key="spotter-key", secret="spotter-secret")
    try:
        await client.load_markets()
        await client.create_order(SPOT, "limit", "buy", 0.1, 29000)
        await admin.price("BTCUSDT", "28999.99", family="spot")  # the buy fills as maker
        await admin.price("BTCUSDT", "29500.00", family="spot")
        held = (await client.fetch_balance())["BTC"]["free"]
        await client.create_order(SPOT, "market", "sell", held, None)
        balance = await client.fetch_balance()
        trades = await client.fetch_my_trades(SPOT)
    finally:
        await client.close()

    bought = Decimal("0.1") - Decimal("0.1") * Decimal("0.001")  # 0.0999 BTC received
    assert Decimal(str(held)) == bought
    sell_fee = bought * 29500 * Decimal("0.001")
    expected = Decimal(10_000) - Decimal(2900) + bought * 29500 - sell_fee
    free = {row["asset"]: row["free"] for row in balance["info"]["balances"]}
    assert free["USDT"] == str(expected.quantize(Decimal("1e-8")))
    assert balance["BTC"]["total"] == 0
    assert [t["takerOrMaker"] for t in trades] == ["maker", "taker"]
    assert [(Decimal(t["info"]["commission"]), t["info"]["commissionAsset"]) for t in trades] == [
        (Decimal("0.0001"), "BTC"),
        (sell_fee.quantize(Decimal("1e-8")), "USDT"),
    ]
