"""Leg bookkeeping: fills, re-sync from positions, delta-neutral and flat checks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opensqt.arbitrage import Fill, LegBook, apply_fill, leg_key, resync_leg
from opensqt.model import Leg, MarketType, Side

from . import AGENT, PERP, PERP_VENUE, SPOT, SPOT_VENUE, SYMBOL, position

SPOT_KEY = "binance:BTCUSDT"
PERP_KEY = "binanceusdm:BTCUSDT"


def perp_leg(size: str = "0", entry: str = "0", updated_ms: int = 0) -> Leg:
    return Leg(
        agent=AGENT,
        venue=PERP_VENUE,
        symbol=SYMBOL,
        market_type=MarketType.PERPETUAL,
        size=Decimal(size),
        entry_price=Decimal(entry),
        updated_ms=updated_ms,
    )


def perp_fill(side: Side, qty: str, price: str, time_ms: int = 0) -> Fill:
    return Fill(PERP_VENUE, SYMBOL, side, Decimal(qty), Decimal(price), time_ms)


def book(spot: str = "0", perp: str = "0") -> LegBook:
    empty = LegBook.for_instruments(AGENT, (SPOT, PERP))
    spot_leg = empty.get(SPOT_KEY)
    perp_leg_ = empty.get(PERP_KEY)
    assert spot_leg is not None
    assert perp_leg_ is not None
    return empty.with_leg(_sized(spot_leg, spot)).with_leg(_sized(perp_leg_, perp))


def _sized(leg: Leg, size: str) -> Leg:
    return Leg(
        agent=leg.agent, venue=leg.venue, symbol=leg.symbol, market_type=leg.market_type, size=Decimal(size)
    )


def test_legs_are_keyed_venue_colon_symbol() -> None:
    assert leg_key("binance", "BTCUSDT") == SPOT_KEY
    assert [leg.key for leg in book().legs] == [SPOT_KEY, PERP_KEY]


def test_a_sell_fill_opens_a_short_with_the_fill_price_as_entry() -> None:
    leg = apply_fill(perp_leg(), perp_fill(Side.SELL, "0.02", "50000", time_ms=7))
    assert leg.size == Decimal("-0.02")
    assert leg.entry_price == Decimal("50000")
    assert leg.updated_ms == 7
    assert leg.version == 1


def test_adding_to_a_leg_averages_the_entry_price_by_size() -> None:
    # 0.01 @ 50000 plus 0.03 @ 54000: (500 + 1620) / 0.04 = 53000.
    leg = apply_fill(perp_leg("0.01", "50000"), perp_fill(Side.BUY, "0.03", "54000"))
    assert leg.size == Decimal("0.04")
    assert leg.entry_price == Decimal("53000")


def test_reducing_a_leg_keeps_its_entry_and_closing_it_clears_the_entry() -> None:
    reduced = apply_fill(perp_leg("-0.03", "50000"), perp_fill(Side.BUY, "0.01", "48000"))
    assert reduced.size == Decimal("-0.02")
    assert reduced.entry_price == Decimal("50000")
    closed = apply_fill(reduced, perp_fill(Side.BUY, "0.02", "48000"))
    assert closed.size == 0
    assert closed.entry_price == 0


def test_a_fill_that_flips_the_leg_takes_the_fill_price_as_entry() -> None:
    flipped = apply_fill(perp_leg("-0.01", "50000"), perp_fill(Side.BUY, "0.03", "49000"))
    assert flipped.size == Decimal("0.02")
    assert flipped.entry_price == Decimal("49000")


def test_a_fill_for_another_leg_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be applied to leg binanceusdm:BTCUSDT"):
        apply_fill(perp_leg(), Fill(SPOT_VENUE, SYMBOL, Side.BUY, Decimal(1), Decimal(1)))


def test_a_fill_must_have_a_positive_quantity() -> None:
    with pytest.raises(ValueError, match="fill quantity must be greater than zero"):
        perp_fill(Side.BUY, "0", "50000")


def test_resync_takes_the_exchange_size_and_entry() -> None:
    leg = resync_leg(perp_leg("-0.02", "50000"), position(PERP_VENUE, "-0.015", entry="50100", updated_ms=9))
    assert leg.size == Decimal("-0.015")
    assert leg.entry_price == Decimal("50100")
    assert leg.updated_ms == 9
    assert leg.version == 1


def test_resync_ignores_a_snapshot_older_than_the_last_change() -> None:
    leg = perp_leg("-0.02", "50000", updated_ms=1_000)
    assert resync_leg(leg, position(PERP_VENUE, "0", updated_ms=999)) is leg


def test_resync_without_a_change_keeps_the_version() -> None:
    leg = perp_leg("-0.02", "50000")
    assert resync_leg(leg, position(PERP_VENUE, "-0.02", entry="50000")) is leg


def test_book_resync_and_fill_change_only_their_own_leg() -> None:
    start = book(spot="0.02", perp="-0.02")
    synced = start.resync(position(PERP_VENUE, "-0.01", updated_ms=5))
    assert synced.size(PERP_KEY) == Decimal("-0.01")
    assert synced.size(SPOT_KEY) == Decimal("0.02")
    filled = synced.apply_fill(Fill(SPOT_VENUE, SYMBOL, Side.SELL, Decimal("0.01"), Decimal(50000)))
    assert filled.size(SPOT_KEY) == Decimal("0.01")
    assert filled.size(PERP_KEY) == Decimal("-0.01")


def test_a_book_refuses_unknown_legs_and_duplicate_keys() -> None:
    with pytest.raises(KeyError, match="no leg 'okx:BTCUSDT'"):
        book().resync(position("okx", "1"))
    leg = perp_leg()
    with pytest.raises(ValueError, match="duplicate leg keys"):
        LegBook(AGENT, (leg, leg))


def test_delta_neutral_when_the_net_size_is_strictly_below_dust() -> None:
    dust = Decimal("0.0001")
    assert book(spot="0.02", perp="-0.02").is_delta_neutral(dust)
    assert book(spot="0.02005", perp="-0.02").is_delta_neutral(dust)
    assert not book(spot="0.0201", perp="-0.02").is_delta_neutral(dust)  # |net| = dust exactly
    assert not book(spot="0.02", perp="0").is_delta_neutral(dust)
    assert book(spot="0.02", perp="-0.0201").net_size() == Decimal("-0.0001")


def test_flat_when_every_leg_is_below_dust() -> None:
    dust = Decimal("0.0001")
    assert book().is_flat(dust)
    assert book(spot="0.00009", perp="-0.00009").is_flat(dust)
    assert not book(spot="0.0001").is_flat(dust)
    # Delta-neutral is not flat: both legs are open.
    assert not book(spot="0.02", perp="-0.02").is_flat(dust)


quantities = st.integers(min_value=1, max_value=10_000).map(lambda units: Decimal(units) * Decimal("0.001"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), quantities), min_size=1, max_size=12))
def test_a_leg_size_is_the_signed_sum_of_its_fills_and_undoing_them_flattens_it(
    fills: list[tuple[Side, Decimal]],
) -> None:
    leg = perp_leg()
    for side, qty in fills:
        leg = apply_fill(leg, perp_fill(side, str(qty), "50000"))
    expected = sum((qty if side is Side.BUY else -qty for side, qty in fills), Decimal(0))
    assert leg.size == expected
    assert leg.version == len(fills)
    for side, qty in reversed(fills):
        leg = apply_fill(leg, perp_fill(side.opposite, str(qty), "51000"))
    assert leg.size == 0
    assert leg.entry_price == 0
