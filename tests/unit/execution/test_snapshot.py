"""The account snapshot: open orders read before and after the position, kept only when equal."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from opensqt.errors import ExchangeUnavailable
from opensqt.execution.snapshot import read_account
from opensqt.model import Instrument, MarketType, Order, OrderStatus, OrderType, Position, Side

D = Decimal
PERP = Instrument(
    "paper", "BTCUSDT", MarketType.PERPETUAL, "BTC", "USDT", D("0.1"), D("0.001"), D("0.001"), D(5)
)
SPOT = replace(PERP, market_type=MarketType.SPOT)
RESTING = Order(
    symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT, quantity=D("0.010"), price=D("29000"),
    client_order_id="grid-1", exchange_order_id="1", status=OrderStatus.NEW,
)  # fmt: skip


class ScriptedVenue:
    """Answers each read from a script, as the venue would between moves of the market."""

    def __init__(self, orders: list[list[Order]], positions: list[Decimal]) -> None:
        self.orders, self.positions = orders, positions
        self.reads: list[str] = []

    async def fetch_open_orders(self, symbol: str = "") -> list[Order]:
        self.reads.append("orders")
        return self.orders.pop(0) if len(self.orders) > 1 else self.orders[0]

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
        self.reads.append("position")
        size = self.positions.pop(0) if len(self.positions) > 1 else self.positions[0]
        return [Position(symbol="BTCUSDT", size=size)] if size else []


async def test_a_quiet_account_is_read_once_orders_position_orders() -> None:
    venue = ScriptedVenue([[RESTING]], [D("0.020")])
    read = await read_account(venue, PERP, account="main")
    assert venue.reads == ["orders", "position", "orders"]
    assert read.open_orders == [RESTING]
    assert read.position is not None
    assert (read.position.size, read.position.account) == (D("0.020"), "main")
    assert read.attempts == 1


async def test_a_fill_during_the_read_makes_it_read_again() -> None:
    # the resting buy fills while the position is read: the first position may or may not
    # hold the fill, so that read is not kept
    filled = replace(RESTING, status=OrderStatus.FILLED, filled_qty=D("0.010"))
    venue = ScriptedVenue([[RESTING], [filled], [filled]], [D("0.020"), D("0.030")])
    read = await read_account(venue, PERP)
    assert venue.reads == ["orders", "position", "orders", "position", "orders"]
    assert read.open_orders == [filled]
    assert read.position is not None
    assert read.position.size == D("0.030")
    assert read.attempts == 2


async def test_a_partial_fill_or_a_new_order_also_counts_as_a_change() -> None:
    partial = replace(RESTING, status=OrderStatus.PARTIALLY_FILLED, filled_qty=D("0.004"))
    other = replace(RESTING, client_order_id="manual-1", exchange_order_id="2")
    for changed in ([partial], [RESTING, other]):
        venue = ScriptedVenue([[RESTING], changed, changed], [D(0)])
        assert (await read_account(venue, PERP)).attempts == 2


async def test_an_account_that_keeps_changing_is_a_retryable_failure() -> None:
    moving = [[replace(RESTING, filled_qty=D(f"0.00{i}"))] for i in range(1, 9)]
    venue = ScriptedVenue(moving, [D(0)])
    with pytest.raises(ExchangeUnavailable, match="changed during each of 3 reads"):
        await read_account(venue, PERP)


async def test_a_flat_perpetual_has_a_zero_position_and_a_spot_venue_none() -> None:
    flat = await read_account(ScriptedVenue([[]], [D(0)]), PERP)
    assert flat.position is not None
    assert flat.position.size == 0
    venue = ScriptedVenue([[]], [D("1")])
    spot = await read_account(venue, SPOT)
    assert spot.position is None
    assert "position" not in venue.reads


async def test_hedge_mode_sides_are_netted() -> None:
    class Hedged(ScriptedVenue):
        async def fetch_positions(self, symbols: list[str] | None = None) -> list[Position]:
            return [Position(symbol="BTCUSDT", size=D("0.050")), Position(symbol="BTCUSDT", size=D("-0.020"))]

    read = await read_account(Hedged([[]], [D(0)]), PERP)
    assert read.position is not None
    assert read.position.size == D("0.030")
