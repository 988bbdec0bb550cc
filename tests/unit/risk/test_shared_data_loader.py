"""The strict candle loader of tests/support/shared_data.py."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.shared_data import SHARED_DATA_DIR, CandleFileError, load_candles, require_shared_file

HEADER = "ts_ms,open,high,low,close,volume,quote_volume\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "candles.csv"
    path.write_text(text, encoding="ascii")
    return path


def test_shared_data_dir_sits_beside_the_repository() -> None:
    repo_root = Path(__file__).resolve().parents[3]
    assert repo_root.parent / "shared" / "data" == SHARED_DATA_DIR


def test_loader_reads_decimal_candles_and_ignores_extra_columns(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "60000,1.10,1.30,1.00,1.20,5.5,6\n120000,1.2,1.2,1.2,1.2,0,0\n")
    first, second = load_candles(path, symbol="BTCUSDT", interval="1m", venue="binance")
    assert first.open_ms == 60_000
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        Decimal("1.10"),
        Decimal("1.30"),
        Decimal("1.00"),
        Decimal("1.20"),
        Decimal("5.5"),
    )
    assert isinstance(first.close, Decimal)
    assert (first.symbol, first.interval, first.venue, first.closed) == ("BTCUSDT", "1m", "binance", True)
    assert second.volume == Decimal(0)


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        pytest.param("60000,1,1,1,1,1,1\n60000,1,1,1,1,1,1\n", 3, "not after", id="duplicate-time"),
        pytest.param("60000,1,1,1,1,1\n", 2, "expected 7 fields", id="short-row"),
        pytest.param("6e4,1,1,1,1,1,1\n", 2, "ts_ms", id="bad-time"),
        pytest.param("60000,1,1,1,abc,1,1\n", 2, "close", id="bad-price"),
        pytest.param("60000,1,1,1,NaN,1,1\n", 2, "close", id="nan-price"),
        pytest.param("60000,1,1,1,0,1,1\n", 2, "close", id="zero-price"),
        pytest.param("60000,1,1,1,1,-1,1\n", 2, "volume", id="negative-volume"),
        pytest.param("60000,1,1,2,1,1,1\n", 2, "inconsistent OHLC", id="low-above-close"),
    ],
)
def test_loader_names_file_and_line_of_a_bad_row(tmp_path: Path, body: str, line: int, fragment: str) -> None:
    path = write(tmp_path, HEADER + body)
    with pytest.raises(CandleFileError, match=fragment) as raised:
        load_candles(path, symbol="X", interval="1m")
    assert raised.value.line == line
    assert f"{path}:{line}:" in str(raised.value)


def test_loader_refuses_a_file_without_the_candle_header(tmp_path: Path) -> None:
    path = write(tmp_path, "open_time,open,high,low,close,volume\n")
    with pytest.raises(CandleFileError, match="header"):
        load_candles(path, symbol="X", interval="1m")


def test_missing_shared_file_skips_with_a_clear_reason() -> None:
    with pytest.raises(pytest.skip.Exception, match=r"\.\./shared/data is absent: .*no_such_file\.csv"):
        require_shared_file("no_such_file.csv")
