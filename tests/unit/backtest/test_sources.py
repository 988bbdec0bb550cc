"""Data files: both candle layouts, tick layouts, funding, and clear errors naming file and line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from opensqt.backtest.prices import PriceScale, UnitParseError, parse_units
from opensqt.backtest.sources import (
    DataError,
    FundingEvent,
    funding_interval_hours,
    load_funding_file,
    open_candle_file,
    open_tick_file,
)
from tests.support.shared_data import require_shared_file

SHARED_HEADER = "ts_ms,open,high,low,close,volume\n"


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_units_is_exact_and_strict() -> None:
    assert parse_units("29572.90", 1) == 295729
    assert parse_units("7", 2) == 700
    for bad in ("-1", "nan", "1e5", "", " 1", "1.2.3", "\uff11"):  # the last: a fullwidth digit one
        with pytest.raises(UnitParseError):
            parse_units(bad, 2)
    with pytest.raises(UnitParseError, match="more than 1 decimals"):
        parse_units("1.25", 1)


def test_price_scale_for_a_tick_that_is_not_a_power_of_ten() -> None:
    scale = PriceScale.for_tick(Decimal("0.5"))
    assert (scale.decimals, scale.tick_units, scale.tick_size) == (1, 5, Decimal("0.5"))
    assert scale.floor_units(Decimal("1.27")) == 12
    assert scale.ceil_units(Decimal("1.21")) == 13


def test_shared_layout_candles_are_read_with_the_tick_of_their_decimals(tmp_path: Path) -> None:
    path = write(tmp_path, SHARED_HEADER + "60000,100.5,101,100,100.75,3\n120000,100.75,102,100.5,101,0.5\n")
    candles = open_candle_file(path)
    assert (candles.layout, candles.scale.decimals, candles.interval_ms, candles.rows) == (
        "shared",
        2,
        60_000,
        2,
    )
    assert list(candles.bars()) == [
        (60000, 10050, 10100, 10000, 10075, 300_000_000),
        (120000, 10075, 10200, 10050, 10100, 50_000_000),
    ]


def test_binance_kline_layout_headerless_with_microsecond_times(tmp_path: Path) -> None:
    row = (
        "1735689600000000,93576.00,93610.93,93537.50,93610.93,8.21827,1735689659999999,"
        "769199.4,1359,4.5,4,0\n"
    )
    path = write(tmp_path, row)
    candles = open_candle_file(path)
    assert candles.layout == "binance-kline"
    ((open_ms, *_),) = list(candles.bars())
    assert open_ms == 1735689600000


def test_binance_kline_layout_with_header(tmp_path: Path) -> None:
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,tb,tbq,ignore\n"
    path = write(tmp_path, header + "0,1,2,0.5,1.5,10,59999,1,1,1,1,0\n")
    assert open_candle_file(path).layout == "binance-kline"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("120000,100,101,99\n", "expected at least 6 fields"),
        ("120000,-100,101,99,100,1\n", "open: '-100' is not a non-negative decimal"),
        ("120000,100,NaN,99,100,1\n", "high: 'NaN' is not a non-negative decimal"),
        ("120000,100,101,0,100,1\n", "low: '0' must be greater than zero"),
        ("120000,100,99,98,100,1\n", "inconsistent OHLC"),
        ("60000,100,101,99,100,2\n", "is not after the previous"),
        ("120000,100,101,99,100,abc\n", "volume"),
    ],
)
def test_bad_row_is_reported_with_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path, SHARED_HEADER + "60000,100,101,99,100,1\n" + row)
    with pytest.raises(DataError, match=message) as error:
        list(open_candle_file(path).bars())
    assert error.value.line == 3
    assert str(error.value).startswith(f"{path}:3: ")


def test_an_exact_repeat_of_the_previous_row_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, SHARED_HEADER + "60000,100,101,99,100,1\n" * 2 + "120000,100,101,99,100,1\n")
    assert [bar[0] for bar in open_candle_file(path).bars()] == [60000, 120000]


def test_unknown_layout_is_refused_on_line_one(tmp_path: Path) -> None:
    path = write(tmp_path, "time,price\n1,2\n")
    with pytest.raises(DataError, match="unknown column layout") as error:
        open_candle_file(path)
    assert error.value.line == 1
    with pytest.raises(DataError, match="unknown column layout"):
        open_tick_file(path)


def test_empty_and_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        open_candle_file(write(tmp_path, ""))
    with pytest.raises(DataError, match="no data rows"):
        open_candle_file(write(tmp_path, SHARED_HEADER))
    with pytest.raises(DataError, match="cannot read"):
        open_candle_file(tmp_path / "missing.csv")


def test_trade_and_book_ticker_layouts(tmp_path: Path) -> None:
    trades = write(
        tmp_path,
        "local_ts_ns,event_ms,trade_ms,trade_id,price,qty,buyer_is_maker,type\n"
        "1000000000,1,1,1,61701.30,0.022,false,MARKET\n2000000000,2,2,2,61701.20,0.006,true,MARKET\n",
        "trades.csv",
    )
    tick_file = open_tick_file(trades)
    assert tick_file.kind == "trades"
    assert list(tick_file.events()) == [(1000, 617013, 617013), (2000, 617012, 617012)]
    quotes = write(
        tmp_path,
        "local_ts_ns,update_id,bid_px,bid_qty,ask_px,ask_qty\n1000000,5,61727.65000000,0.2,61727.66000000,4.9\n",
        "quotes.csv",
    )
    quote_file = open_tick_file(quotes)
    assert quote_file.kind == "bookticker"
    assert list(quote_file.events()) == [(1, 6172765, 6172766)]


def test_crossed_quote_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "local_ts_ns,update_id,bid_px,bid_qty,ask_px,ask_qty\n1000000,5,10.5,1,10.4,1\n")
    with pytest.raises(DataError, match="crossed quote"):
        list(open_tick_file(path).events())


def test_funding_file(tmp_path: Path) -> None:
    path = write(tmp_path, "ts_ms,symbol,funding_rate\n0,BTCUSDT,0.0001\n28800000,BTCUSDT,-0.00025\n")
    events = load_funding_file(path)
    assert [(e.time_ms, e.rate) for e in events] == [
        (0, Decimal("0.0001")),
        (28_800_000, Decimal("-0.00025")),
    ]
    with pytest.raises(DataError, match=":3: "):
        load_funding_file(write(tmp_path, "ts_ms,symbol,funding_rate\n0,BTCUSDT,0.1\n1,BTCUSDT,nan\n"))


@pytest.mark.shared_data
def test_shared_one_minute_file_parses_completely() -> None:
    path = require_shared_file("binance_um_btcusdt_1m_2023-08-10_2023-08-16.csv")
    candles = open_candle_file(path)
    assert (candles.layout, candles.rows, candles.interval_ms, candles.scale.tick_size) == (
        "shared",
        10080,
        60_000,
        Decimal("0.1"),  # prices like 29572.90 carry one significant decimal
    )
    bars = list(candles.bars())
    assert len(bars) == 10080
    assert min(bar[3] for bar in bars) == 287051  # 28705.1, the README's range low


@pytest.mark.shared_data
def test_shared_tick_files_parse() -> None:
    for name, kind, rows in (
        ("binance_um_btcusdt_trades_2024-08-08T2357-2359.csv", "trades", 12153),
        ("binance_spot_btcusdt_bookticker_2024-08-08T2357-2359.csv", "bookticker", 10284),
    ):
        tick_file = open_tick_file(require_shared_file(name))
        assert (tick_file.kind, tick_file.rows) == (kind, rows)
        assert sum(1 for _ in tick_file.events()) == rows


def test_the_funding_interval_is_read_from_the_settlements_spacing() -> None:
    hour = 3_600_000
    every_four = [FundingEvent(i * 4 * hour, Decimal("0.0001")) for i in range(6)]
    assert funding_interval_hours(every_four) == 4
    # a missing settlement (a gap of 8 h) does not change the most common spacing
    assert funding_interval_hours([*every_four, FundingEvent(32 * hour, Decimal(0))]) == 4
    # Binance's settlements land a few ms after the hour
    assert funding_interval_hours([FundingEvent(0, Decimal(0)), FundingEvent(8 * hour + 7, Decimal(0))]) == 8
    assert funding_interval_hours([FundingEvent(0, Decimal(0))]) is None
    assert funding_interval_hours([FundingEvent(0, Decimal(0)), FundingEvent(60_000, Decimal(0))]) is None
