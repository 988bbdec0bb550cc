"""The backtest's arbitrage adapter (``engine.simple.ArbitrageAgent``): a plan runs at one instant."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from opensqt.engine.base import OrderRefused
from opensqt.engine.simple import ArbitrageAgent
from opensqt.model import FundingUpdate, Order, OrderStatus, OrderUpdate
from tests.unit.arbitrage import (
    PERIOD_MS,
    PERP_VENUE,
    SPOT_VENUE,
    T0,
    funding,
    make_config,
    perp_price,
    spot_price,
)

SPOT_KEY = f"{SPOT_VENUE}:BTCUSDT"
PERP_KEY = f"{PERP_VENUE}:BTCUSDT"


class Venue:
    """Fills every order in full at 50000, except that it refuses every order for the venue id
    in ``refusing`` (a spot account whose balance is gone, say). Keeps every order it was sent."""

    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.refusing = ""

    def place(self, order: Order, now_ms: int) -> list[OrderUpdate]:
        self.orders.append(order)
        if order.venue == self.refusing:
            raise OrderRefused("insufficient balance")
        price = Decimal(50000)
        done = replace(order, status=OrderStatus.FILLED, filled_qty=order.quantity, average_price=price)
        return [OrderUpdate(f"{order.client_order_id}-fill", done, price, order.quantity)]

    def cancel(self, symbol: str, client_order_id: str, now_ms: int) -> list[OrderUpdate]:
        return []


def prices(agent: ArbitrageAgent, venue: Venue, ms: int) -> None:
    agent.on_price(spot_price("50000", ms), ms, venue)
    agent.on_price(perp_price("50010", ms), ms, venue)


def test_an_exit_the_venue_keeps_refusing_ends_failed_and_goes_on_at_a_later_event() -> None:
    # Before, the backtest stopped with "did not finish in 32 orders"; the live agent retries.
    agent = ArbitrageAgent(make_config(use_margin=True), account="bt")
    venue = Venue()
    prices(agent, venue, T0)
    agent.on_funding(FundingUpdate(funding("0.0003", T0 + PERIOD_MS)), T0, venue)
    legs = agent.strategy.state.legs
    assert (legs.size(SPOT_KEY), legs.size(PERP_KEY)) == (Decimal("0.02"), Decimal("-0.02"))

    venue.refusing = SPOT_VENUE  # the spot leg cannot be closed for now
    venue.orders.clear()
    agent.on_funding(FundingUpdate(funding("-0.0003", T0 + 2 * PERIOD_MS, time_ms=T0 + 1)), T0 + 1, venue)
    legs = agent.strategy.state.legs
    assert (legs.size(SPOT_KEY), legs.size(PERP_KEY)) == (Decimal("0.02"), Decimal(0))  # perp closed
    refused = [o for o in venue.orders if o.venue == SPOT_VENUE]
    assert refused, "the spot close was tried"
    assert len(venue.orders) <= 2 * 32  # the exit, then at most one more plan at this instant

    venue.refusing = ""
    prices(agent, venue, T0 + 60_000)  # a minute later the naked spot leg is closed
    legs = agent.strategy.state.legs
    assert (legs.size(SPOT_KEY), legs.size(PERP_KEY)) == (Decimal(0), Decimal(0))
