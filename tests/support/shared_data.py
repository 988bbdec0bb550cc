"""Locate the real market data in ``../shared/data`` and load its candle files strictly.

The ``shared`` folder sits beside the repository root (``<root>/../shared/data``). It is not part
of the repository, so tests that need it skip, with a reason naming the missing path, when it is
absent.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from opensqt.model import Candle, DecimalParseError, parse_decimal

__all__ = [
    "SHARED_DATA_DIR",
    "CandleFileError",
    "load_candles",
    "require_shared_file",
    "shared_data_path",
]

SHARED_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
"""``<repo root>/../shared/data``."""

_CANDLE_COLUMNS = ("ts_ms", "open", "high", "low", "close", "volume")


class CandleFileError(ValueError):
    """A candle file is malformed. The message names the file and the line."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path = path
        self.line = line
        super().__init__(f"{path}:{line}: {message}")


def shared_data_path(name: str) -> Path:
    """The path of ``name`` inside ``../shared/data`` (which may not exist)."""
    return SHARED_DATA_DIR / name


def require_shared_file(name: str) -> Path:
    """The path of ``name`` inside ``../shared/data``; skips the calling test when it is absent."""
    path = shared_data_path(name)
    if not path.is_file():
        pytest.skip(f"../shared/data is absent: {path} not found")
    return path


def load_candles(path: Path, *, symbol: str, interval: str, venue: str = "") -> list[Candle]:
    """Read a candle CSV (``ts_ms,open,high,low,close,volume[,...]``) into closed candles.

    Strict: the header must start with those six columns, every row must have as many fields as
    the header, ``ts_ms`` must be a non-negative integer and strictly increasing, prices must be
    positive decimals, the volume non-negative, and ``low <= open, close <= high``.

    Raises:
        CandleFileError: on the first bad line, naming the file and the 1-based line number.
    """
    candles: list[Candle] = []
    with path.open(newline="", encoding="ascii") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header[: len(_CANDLE_COLUMNS)]) != _CANDLE_COLUMNS:
            raise CandleFileError(
                path, 1, f"header must start with {','.join(_CANDLE_COLUMNS)}, got {header}"
            )
        previous_ms = -1
        for row in reader:
            line = reader.line_num
            if len(row) != len(header):
                raise CandleFileError(path, line, f"expected {len(header)} fields, got {len(row)}: {row}")
            raw_ts = row[0]
            if not raw_ts.isdigit():
                raise CandleFileError(path, line, f"ts_ms {raw_ts!r} is not a non-negative integer")
            open_ms = int(raw_ts)
            if open_ms <= previous_ms:
                raise CandleFileError(path, line, f"ts_ms {open_ms} is not after the previous {previous_ms}")
            previous_ms = open_ms
            try:
                open_, high, low, close = (
                    parse_decimal(row[index], field=_CANDLE_COLUMNS[index], positive=True)
                    for index in range(1, 5)
                )
                volume = parse_decimal(row[5], field="volume", non_negative=True)
            except DecimalParseError as exc:
                raise CandleFileError(path, line, str(exc)) from exc
            if not low <= min(open_, close) or not max(open_, close) <= high:
                raise CandleFileError(path, line, f"inconsistent OHLC {open_}/{high}/{low}/{close}")
            candles.append(_candle(symbol, interval, venue, open_ms, open_, high, low, close, volume))
    return candles


def _candle(
    symbol: str,
    interval: str,
    venue: str,
    open_ms: int,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
) -> Candle:
    return Candle(
        symbol=symbol,
        interval=interval,
        open_ms=open_ms,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        venue=venue,
    )
