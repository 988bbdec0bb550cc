"""Client order ids: format, parse, length limit and Binance-safe characters."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opensqt.grid import (
    ClientOrderIdCodec,
    ClientOrderIdError,
    Strategy,
    format_client_order_id,
    parse_client_order_id,
)
from opensqt.grid.client_ids import BINANCE_CLIENT_ID_RE
from opensqt.model import Instrument, MarketType, Side
from tests.unit.grid import ETH, D, make_config

TICK = D("0.01")


def test_id_counts_slot_price_in_ticks() -> None:
    codec = ClientOrderIdCodec.for_instrument(ETH, agent="mm")
    assert codec.encode(D("2998.00"), Side.BUY, 0) == "ETHUSDT-mm-299800-B-0"
    assert codec.encode(D("2998"), Side.SELL, 17) == "ETHUSDT-mm-299800-S-17"


def test_id_carries_prefix() -> None:
    assert (
        format_client_order_id(
            prefix="x-AB12",
            symbol="ETHUSDT",
            agent="mm",
            slot_price=D("0.05"),
            side=Side.BUY,
            cycle=3,
            tick_size=D("0.01"),
        )
        == "x-AB12ETHUSDT-mm-5-B-3"
    )


def test_parse_gives_back_symbol_agent_slot_side_cycle() -> None:
    parts = parse_client_order_id("x-AB12ETHUSDT-mm-299800-S-4", tick_size=TICK, prefix="x-AB12")
    assert parts.symbol == "ETHUSDT"
    assert parts.agent == "mm"
    assert parts.slot_price == D("2998.00")
    assert parts.side is Side.SELL
    assert parts.cycle == 4


def test_parse_allows_dashes_in_symbol() -> None:
    parts = parse_client_order_id("BTC-USDT-SWAP-a1-65000-B-0", tick_size=D("0.1"))
    assert parts.symbol == "BTC-USDT-SWAP"
    assert parts.slot_price == D("6500.0")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ETHUSDT-mm-299800-B",  # no cycle
        "ETHUSDT-mm-299800-X-0",  # bad side
        "ETHUSDT-mm-2998.00-B-0",  # price not a tick count
        "ETHUSDT-mm-0299800-B-0",  # not canonical
        "ETHUSDT-mm-0-B-0",  # zero price
        "ETHUSDT-mm--5-B-0",  # empty/negative field
        "ETHUSDT-mm-299800-B--1",
        "ETHUSDT-mm-299800-B-01",
        "ETHUSDT-mm-299800-B-1\n",
        "ETHUSDT-mm-299800-B-one",
        "-mm-299800-B-0",  # empty symbol
        "ETHUSDT--299800-B-0",  # empty agent
        "ETH USDT-mm-299800-B-0",  # unsafe character
        "web_order_123",
    ],
)
def test_malformed_id_is_refused(bad: str) -> None:
    with pytest.raises(ClientOrderIdError):
        parse_client_order_id(bad, tick_size=TICK)


def test_id_with_other_prefix_is_refused() -> None:
    with pytest.raises(ClientOrderIdError, match="prefix"):
        parse_client_order_id("ETHUSDT-mm-299800-B-0", tick_size=TICK, prefix="x-AB12")


def test_config_that_cannot_fit_binance_limit_fails_at_construction() -> None:
    with pytest.raises(ClientOrderIdError, match="cannot fit 36"):
        Strategy(make_config(agent="a_very_long_agent_name", client_id_prefix="x-BROKER"), ETH)


def test_encode_refuses_id_longer_than_limit() -> None:
    codec = ClientOrderIdCodec(
        symbol="ETHUSDT", agent="mm", tick_size=D("0.00000001"), max_length=24, price_digits=1, cycle_digits=1
    )
    with pytest.raises(ClientOrderIdError, match="longer than 24"):
        codec.encode(D("3000"), Side.BUY, 0)


def test_encode_refuses_price_off_tick() -> None:
    codec = ClientOrderIdCodec.for_instrument(ETH, agent="mm")
    with pytest.raises(ClientOrderIdError, match="not a multiple"):
        codec.encode(D("2998.005"), Side.BUY, 0)


def test_codec_refuses_agent_with_separator() -> None:
    with pytest.raises(ClientOrderIdError, match="agent"):
        ClientOrderIdCodec(symbol="ETHUSDT", agent="m-m", tick_size=TICK)


def test_codec_refuses_symbol_with_unsafe_characters() -> None:
    odd = Instrument(
        venue="v",
        symbol="ETH USDT",
        market_type=MarketType.SPOT,
        base="ETH",
        quote="USDT",
        tick_size=TICK,
        step_size=D("0.001"),
    )
    with pytest.raises(ClientOrderIdError, match="symbol"):
        ClientOrderIdCodec.for_instrument(odd, agent="mm")


_AGENTS = st.from_regex(r"[.A-Za-z0-9:/_]{1,6}", fullmatch=True)
_PREFIXES = st.from_regex(r"[.A-Za-z0-9:/_-]{0,3}", fullmatch=True)
_SYMBOLS = st.from_regex(r"[A-Z0-9][A-Z0-9/:_-]{0,7}", fullmatch=True)
_TICKS = st.sampled_from([D("0.01"), D("0.1"), D("0.5"), D("1"), D("0.00001")])


@given(
    agent=_AGENTS,
    prefix=_PREFIXES,
    symbol=_SYMBOLS,
    tick=_TICKS,
    ticks=st.integers(min_value=1, max_value=99_999_999),
    side=st.sampled_from(list(Side)),
    cycle=st.integers(min_value=0, max_value=999_999),
)
def test_every_id_parses_back_and_is_binance_safe(
    agent: str, prefix: str, symbol: str, tick: Decimal, ticks: int, side: Side, cycle: int
) -> None:
    codec = ClientOrderIdCodec(symbol=symbol, agent=agent, tick_size=tick, prefix=prefix)
    slot_price = ticks * tick
    client_order_id = codec.encode(slot_price, side, cycle)
    assert BINANCE_CLIENT_ID_RE.fullmatch(client_order_id)
    parts = codec.decode(client_order_id)
    assert (parts.symbol, parts.agent, parts.slot_price, parts.side, parts.cycle) == (
        symbol,
        agent,
        slot_price,
        side,
        cycle,
    )


@given(
    a=st.tuples(st.integers(1, 10**6), st.sampled_from(list(Side)), st.integers(0, 10**5)),
    b=st.tuples(st.integers(1, 10**6), st.sampled_from(list(Side)), st.integers(0, 10**5)),
)
def test_distinct_slot_side_cycle_never_share_an_id(
    a: tuple[int, Side, int], b: tuple[int, Side, int]
) -> None:
    codec = ClientOrderIdCodec.for_instrument(ETH, agent="mm")
    id_a = codec.encode(a[0] * TICK, a[1], a[2])
    id_b = codec.encode(b[0] * TICK, b[1], b[2])
    assert (id_a == id_b) == (a == b)
