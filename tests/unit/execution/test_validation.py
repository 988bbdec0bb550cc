"""Order requests refused before anything reaches the exchange, whatever the instrument."""

from __future__ import annotations

from decimal import Decimal

import pytest

from opensqt.errors import InvalidArgument
from opensqt.execution.validation import OrderDraft, validate_order
from opensqt.model import Instrument, MarketType, OrderType, Side

# a token priced in 1e-11 steps: a large but sane-looking price has more steps than Decimal's
# 28 digits can count
TINY = Instrument(
    venue="sim",
    symbol="PEPEUSDT",
    market_type=MarketType.SPOT,
    base="PEPE",
    quote="USDT",
    tick_size=Decimal("1e-11"),
    step_size=Decimal("1e-11"),
)


def draft(quantity: str, price: str, client_order_id: str = "cid-1") -> OrderDraft:
    return OrderDraft(
        symbol=TINY.symbol,
        client_order_id=client_order_id,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=quantity,
        price=price,
    )


@pytest.mark.parametrize(
    ("quantity", "price", "field"),
    [
        ("999999999999999999", "0.00000001", "order.quantity"),
        ("1", "999999999999999999", "order.price"),
        ("1e30", "0.00000001", "order.quantity"),
    ],
)
def test_values_too_long_for_the_grid_are_invalid_arguments(quantity: str, price: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_order(draft(quantity, price), {TINY.symbol: TINY}, venue="sim", account="main")
    assert refused.value.field == field


def test_a_client_id_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_order(draft("1", "0.00000001", "cid-1\n"), {TINY.symbol: TINY}, venue="sim", account="main")
    assert refused.value.field == "order.client_order_id"


def test_an_ordinary_order_on_that_grid_passes() -> None:
    order = validate_order(draft("1000", "0.00000123"), {TINY.symbol: TINY}, venue="sim", account="main")
    assert (order.quantity, order.price) == (Decimal(1000), Decimal("0.00000123"))
