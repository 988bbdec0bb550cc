"""Market data files for backtests: candles, trades, bookTicker quotes and funding rates.

Every loader is strict and names the file and the 1-based line of the first problem
(:class:`DataError`): a row with the wrong number of fields, a price that is not a positive
plain decimal (negative, NaN, blank, exponent), inconsistent OHLC, time going backwards, or a
header that matches no known layout. Rows are parsed lazily while the backtest runs, so a bad
row deep in a file stops the run there, before any output is written. A candle row that exactly
repeats the previous one is skipped (one such repeat exists in the 2020-03 5m file).

Candle layouts (keyed by the candle's open time):

* ``shared``: ``ts_ms,open,high,low,close,volume[,...]`` (the files in ../shared/data), and
  ``shared-mark``: ``ts_ms,open,high,low,close`` (its mark-price candles, volume 0);
* ``binance-kline``: the Binance kline CSV (``open_time,open,high,low,close,volume,close_time,
  ...``), with or without its header; open times in ms, or in µs as in newer spot dumps.

Tick layouts: the ../shared/data trade and bookTicker captures (``local_ts_ns`` orders them)
and the Binance ``trades``, ``aggTrades`` and ``bookTicker`` CSV dumps.
"""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from opensqt.backtest.prices import PriceScale, UnitParseError, decimals_of, parse_units
from opensqt.model.money import DecimalParseError, parse_decimal

__all__ = [
    "funding_interval_hours",
    "Bar",
    "CandleFile",
    "DataError",
    "FundingEvent",
    "TickEvent",
    "TickFile",
    "load_funding_file",
    "open_candle_file",
    "open_tick_file",
]

Bar = tuple[int, int, int, int, int, int]
"""``(open_ms, open, high, low, close, volume)``: prices in scale units, volume in 1e-8 units."""

TickEvent = tuple[int, int, int]
"""``(time_ms, bid, ask)`` in scale units; a trade has ``bid == ask == price``."""

VOLUME_DECIMALS = 8


class DataError(ValueError):
    """A data file is malformed. The message names the file and the line."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path = path
        self.line = line
        super().__init__(f"{path}:{line}: {message}")


@dataclass(frozen=True, slots=True)
class FundingEvent:
    """A funding settlement: at ``time_ms`` positions pay ``rate`` (per interval)."""

    time_ms: int
    rate: Decimal


@dataclass(frozen=True, slots=True)
class _Layout:
    name: str
    header: tuple[str, ...] | None  # the leading header fields, None for headerless
    time_column: int
    time_unit: str  # "ms" (ms or µs, by magnitude) or "ns"
    price_columns: tuple[int, ...]
    min_fields: int
    volume_column: int = -1


_CANDLE_LAYOUTS = (
    _Layout("shared", ("ts_ms", "open", "high", "low", "close", "volume"), 0, "ms", (1, 2, 3, 4), 6, 5),
    _Layout(
        "binance-kline", ("open_time", "open", "high", "low", "close", "volume"), 0, "ms", (1, 2, 3, 4), 6, 5
    ),
    # mark-price candles (../shared/data *_markprice_*): no volume
    _Layout("shared-mark", ("ts_ms", "open", "high", "low", "close"), 0, "ms", (1, 2, 3, 4), 5),
)
_HEADERLESS_KLINE = _Layout("binance-kline", None, 0, "ms", (1, 2, 3, 4), 12, 5)

_TICK_LAYOUTS = (
    _Layout(
        "trades",
        ("local_ts_ns", "event_ms", "trade_ms", "trade_id", "price", "qty", "buyer_is_maker"),
        0,
        "ns",
        (4,),
        7,
    ),
    _Layout("trades", ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker"), 4, "ms", (1,), 6),
    _Layout(
        "trades",
        ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time"),
        5,
        "ms",
        (1,),
        7,
    ),
    _Layout(
        "bookticker",
        ("local_ts_ns", "event_ms", "txn_ms", "update_id", "bid_px", "bid_qty", "ask_px", "ask_qty"),
        0,
        "ns",
        (4, 6),
        8,
    ),
    _Layout(
        "bookticker",
        ("local_ts_ns", "update_id", "bid_px", "bid_qty", "ask_px", "ask_qty"),
        0,
        "ns",
        (2, 4),
        6,
    ),
    _Layout(
        "bookticker",
        ("update_id", "best_bid_price", "best_bid_qty", "best_ask_price", "best_ask_qty", "transaction_time"),
        5,
        "ms",
        (1, 3),
        7,
    ),
)


def _known(layouts: tuple[_Layout, ...]) -> str:
    return "; ".join(f"{layout.name}: {','.join(layout.header or ())},..." for layout in layouts)


def _detect(path: Path, first: list[str] | None, layouts: tuple[_Layout, ...], candles: bool) -> _Layout:
    if first is None:
        raise DataError(path, 1, "the file is empty")
    for layout in layouts:
        assert layout.header is not None
        if tuple(field.strip() for field in first[: len(layout.header)]) == layout.header:
            return layout
    if candles and len(first) == 12 and first[0].isascii() and first[0].isdigit():
        return _HEADERLESS_KLINE
    raise DataError(
        path,
        1,
        f"unknown column layout {','.join(first)[:120]!r}; expected a header like: {_known(layouts)}"
        + ("; or a headerless 12-column Binance kline row" if candles else ""),
    )


def _time_ms(text: str, unit: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"time {text!r} is not a non-negative integer")
    value = int(text)
    if unit == "ns":
        return value // 1_000_000
    return value // 1000 if value >= 10**15 else value


def _rows(path: Path, layout: _Layout) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of the data rows (the header skipped)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            if layout.header is not None:
                next(reader, None)
            for row in reader:
                yield reader.line_num, row
        except (csv.Error, UnicodeDecodeError) as error:
            raise DataError(path, reader.line_num + 1, f"unreadable row: {error}") from error


def _scan_decimals(path: Path, layout: _Layout) -> tuple[int, int, list[int]]:
    """Price decimals over the first rows, the number of data rows, and the first times."""
    decimals = 0
    times: list[int] = []
    rows = 0
    for line, row in _rows(path, layout):
        rows += 1
        if len(row) >= layout.min_fields:
            for column in layout.price_columns:
                decimals = max(decimals, decimals_of(row[column]))
            if len(times) < 2:
                try:
                    times.append(_time_ms(row[layout.time_column], layout.time_unit))
                except ValueError as error:
                    raise DataError(path, line, str(error)) from error
    if rows == 0:
        raise DataError(path, 2 if layout.header is not None else 1, "the file has no data rows")
    return decimals, rows, times


def _scale(tick_size: Decimal | None, decimals: int) -> PriceScale:
    if tick_size is not None:
        return PriceScale.for_tick(tick_size)
    return PriceScale(decimals, 1)


def _price(path: Path, line: int, text: str, scale: PriceScale, name: str) -> int:
    try:
        units = parse_units(text, scale.decimals)
    except UnitParseError as error:
        hint = f" (tick size {scale.tick_size}; pass a finer --tick-size)" if "decimals" in str(error) else ""
        raise DataError(path, line, f"{name}: {error}{hint}") from error
    if units <= 0:
        raise DataError(path, line, f"{name}: {text!r} must be greater than zero")
    if units % scale.tick_units:
        raise DataError(path, line, f"{name}: {text!r} is not a multiple of tick size {scale.tick_size}")
    return units


@dataclass(frozen=True, slots=True)
class CandleFile:
    """A candle CSV, checked at its head and parsed lazily by :meth:`bars`.

    Attributes:
        path: the file.
        layout: ``shared`` or ``binance-kline``.
        scale: price units (from ``tick_size`` or the decimals of the first rows).
        interval_ms: the gap between the first two candles (one interval for a single row).
        rows: the number of data rows.
    """

    path: Path
    layout: str
    scale: PriceScale
    interval_ms: int
    rows: int
    _layout: _Layout

    def bars(self) -> Iterator[Bar]:
        """Every candle in order; raises :class:`DataError` at the first bad row."""
        path = self.path
        scale = self.scale
        layout = self._layout
        fields = layout.min_fields
        volume_column = layout.volume_column
        previous = -1
        previous_row: list[str] = []
        for line, row in _rows(path, layout):
            if len(row) < fields:
                raise DataError(path, line, f"expected at least {fields} fields, got {len(row)}: {row}")
            try:
                open_ms = _time_ms(row[0], layout.time_unit)
            except ValueError as error:
                raise DataError(path, line, str(error)) from error
            if open_ms <= previous:
                if row == previous_row:
                    continue  # an exact repeat of the previous row carries nothing new
                raise DataError(path, line, f"open time {open_ms} is not after the previous {previous}")
            previous = open_ms
            previous_row = row
            open_ = _price(path, line, row[1], scale, "open")
            high = _price(path, line, row[2], scale, "high")
            low = _price(path, line, row[3], scale, "low")
            close = _price(path, line, row[4], scale, "close")
            if low > min(open_, close) or high < max(open_, close):
                raise DataError(path, line, f"inconsistent OHLC {row[1]}/{row[2]}/{row[3]}/{row[4]}")
            try:
                volume = parse_units(row[volume_column], VOLUME_DECIMALS) if volume_column >= 0 else 0
            except UnitParseError as error:
                raise DataError(path, line, f"volume: {error}") from error
            yield (open_ms, open_, high, low, close, volume)


def open_candle_file(path: Path, *, tick_size: Decimal | None = None) -> CandleFile:
    """Check a candle CSV's layout and head; see :class:`CandleFile`.

    Raises:
        DataError: unreadable, empty, or of an unknown layout.
    """
    first = _first_row(path)
    layout = _detect(path, first, _CANDLE_LAYOUTS, candles=True)
    decimals, rows, times = _scan_decimals(path, layout)
    interval = times[1] - times[0] if len(times) == 2 and times[1] > times[0] else 60_000
    return CandleFile(path, layout.name, _scale(tick_size, decimals), interval, rows, layout)


@dataclass(frozen=True, slots=True)
class TickFile:
    """A trade or bookTicker CSV, checked at its head and parsed lazily by :meth:`events`."""

    path: Path
    kind: str  # "trades" or "bookticker"
    scale: PriceScale
    rows: int
    _layout: _Layout

    def events(self) -> Iterator[TickEvent]:
        """Every event in order; raises :class:`DataError` at the first bad row."""
        path = self.path
        scale = self.scale
        layout = self._layout
        fields = layout.min_fields
        time_column = layout.time_column
        quotes = self.kind == "bookticker"
        first_price, *rest = layout.price_columns
        previous = -1
        for line, row in _rows(path, layout):
            if len(row) < fields:
                raise DataError(path, line, f"expected at least {fields} fields, got {len(row)}: {row}")
            try:
                time_ms = _time_ms(row[time_column], layout.time_unit)
            except ValueError as error:
                raise DataError(path, line, str(error)) from error
            if time_ms < previous:
                raise DataError(path, line, f"time {time_ms} is before the previous {previous}")
            previous = time_ms
            if quotes:
                bid = _price(path, line, row[first_price], scale, "bid")
                ask = _price(path, line, row[rest[0]], scale, "ask")
                if bid >= ask:
                    raise DataError(
                        path, line, f"crossed quote: bid {row[first_price]} >= ask {row[rest[0]]}"
                    )
                yield (time_ms, bid, ask)
            else:
                price = _price(path, line, row[first_price], scale, "price")
                yield (time_ms, price, price)


def open_tick_file(path: Path, *, tick_size: Decimal | None = None) -> TickFile:
    """Check a trade or bookTicker CSV's layout and head; see :class:`TickFile`."""
    first = _first_row(path)
    layout = _detect(path, first, _TICK_LAYOUTS, candles=False)
    decimals, rows, _ = _scan_decimals(path, layout)
    return TickFile(path, layout.name, _scale(tick_size, decimals), rows, layout)


def load_funding_file(path: Path) -> list[FundingEvent]:
    """Read ``ts_ms,symbol,funding_rate`` rows (the ../shared/data funding layout)."""
    first = _first_row(path)
    expected = ("ts_ms", "symbol", "funding_rate")
    if first is None or tuple(first[:3]) != expected:
        raise DataError(path, 1, f"unknown column layout {first}; expected {','.join(expected)}")
    events: list[FundingEvent] = []
    layout = _Layout("funding", expected, 0, "ms", (), 3)
    previous = -1
    for line, row in _rows(path, layout):
        if len(row) < 3:
            raise DataError(path, line, f"expected 3 fields, got {len(row)}: {row}")
        try:
            time_ms = _time_ms(row[0], "ms")
            rate = parse_decimal(row[2], field="funding_rate")
        except (ValueError, DecimalParseError) as error:
            raise DataError(path, line, str(error)) from error
        if time_ms <= previous:
            raise DataError(path, line, f"time {time_ms} is not after the previous {previous}")
        previous = time_ms
        events.append(FundingEvent(time_ms, rate))
    return events


def funding_interval_hours(events: Sequence[FundingEvent]) -> int | None:
    """The funding interval the settlements show: the most common gap between consecutive ones,
    in whole hours (ties: the shortest); ``None`` with fewer than two, or gaps under an hour."""
    gaps = Counter(
        round((later.time_ms - earlier.time_ms) / 3_600_000) for earlier, later in itertools.pairwise(events)
    )
    if not gaps:
        return None
    hours = min(gaps, key=lambda gap: (-gaps[gap], gap))
    return hours if hours >= 1 else None


def _first_row(path: Path) -> list[str] | None:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), None)
    except OSError as error:
        raise DataError(path, 0, f"cannot read: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise DataError(path, 1, f"not a UTF-8 text file: {error}") from error
