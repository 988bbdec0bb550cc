"""The backtest's results: the report, and its files (text, fills CSV, equity-curve PNG).

Files are written atomically and together: each goes to a temporary file in the output
directory first, and only when all of them are complete are they renamed into place. An error
(bad data found during the run, a plotting failure) therefore leaves no half-written output.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, cast

from opensqt.backtest.ledger import FILL_COLUMNS

__all__ = ["BacktestReport", "BacktestResult", "write_outputs"]


def _utc(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


_CENT = Decimal("0.01")
_JSON_PLACES = Decimal("1e-8")
_ROUNDED_FIELDS = frozenset(
    {
        "realized_pnl",
        "unrealized_pnl",
        "fees",
        "funding",
        "initial_equity",
        "final_equity",
        "max_drawdown",
        "max_drawdown_fraction",
        "peak_exposure",
    }
)
"""Report fields rounded to 8 places in JSON (the fraction too: a ratio, not money, but the
quotient of a division, carried to the Decimal context's 28 digits)."""


def _money(value: Decimal, places: Decimal = _CENT) -> str:
    return f"{value.quantize(places, rounding=ROUND_HALF_UP):,}"


def _json_decimal(value: Decimal) -> str:
    return str(value.quantize(_JSON_PLACES, rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class BacktestReport:
    """What a backtest did. Money is in the quote asset; counts are of the agent's account.

    Fields keep the run's full Decimals; the text shows money to the cent and the JSON to 8
    decimal places (both rounded half up).
    """

    agent: str
    source: str
    symbol: str
    start_ms: int
    end_ms: int
    events: int
    orders: int
    rejected: int
    cancels: int
    expired: int
    fills: int
    maker_fills: int
    taker_fills: int
    round_trips: int
    liquidations: int
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    funding: Decimal
    initial_equity: Decimal
    final_equity: Decimal
    max_drawdown: Decimal
    max_drawdown_fraction: Decimal
    peak_exposure: Decimal
    final_position: Decimal
    quote: str

    @property
    def net_pnl(self) -> Decimal:
        return self.final_equity - self.initial_equity

    def lines(self) -> list[str]:
        """The report as text lines."""
        q = self.quote
        pct = (self.max_drawdown_fraction * 100).quantize(_CENT, rounding=ROUND_HALF_UP)
        return [
            f"backtest: {self.agent} on {self.symbol} ({self.source})",
            f"period:           {_utc(self.start_ms)} .. {_utc(self.end_ms)} UTC, {self.events:,} events",
            f"orders:           {self.orders:,} sent, {self.rejected:,} rejected, {self.cancels:,} canceled, "
            f"{self.expired:,} expired",
            f"fills:            {self.fills:,} ({self.maker_fills:,} maker, {self.taker_fills:,} taker), "
            f"{self.round_trips:,} round trips, {self.liquidations:,} liquidations",
            f"realized PnL:     {_money(self.realized_pnl)} {q}",
            f"unrealized PnL:   {_money(self.unrealized_pnl)} {q}",
            f"fees:             {_money(self.fees)} {q}",
            f"funding:          {_money(self.funding)} {q} (> 0 received)",
            f"net PnL:          {_money(self.net_pnl)} {q} (equity {_money(self.initial_equity)} -> "
            f"{_money(self.final_equity)})",
            f"max drawdown:     {_money(self.max_drawdown)} {q} ({pct}% of the peak)",
            f"peak exposure:    {_money(self.peak_exposure)} {q}",
            f"final position:   {self.final_position}",
        ]

    def to_json(self) -> dict[str, object]:
        """The report for ``report.json``: Decimals as strings, money to 8 places."""
        data: dict[str, object] = {}
        for key, value in asdict(self).items():
            if isinstance(value, Decimal):
                data[key] = _json_decimal(value) if key in _ROUNDED_FIELDS else str(value)
            else:
                data[key] = value
        data["net_pnl"] = _json_decimal(self.net_pnl)
        return data


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """The report, every fill (rows of :data:`~opensqt.backtest.ledger.FILL_COLUMNS`), and the
    equity curve as ``(time_ms, equity)`` samples."""

    report: BacktestReport
    fills: list[list[str]]
    equity_curve: list[tuple[int, str]]


def _fills_csv(fills: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FILL_COLUMNS)
    writer.writerows(fills)
    return buffer.getvalue().encode()


def _equity_png(result: BacktestResult) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    report = result.report
    times = [datetime.fromtimestamp(t / 1000, tz=UTC) for t, _ in result.equity_curve]
    # floats are for drawing only; the report's figures come from Decimals
    values = [float(value) for _, value in result.equity_curve]
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=100)
    try:
        axes.plot(cast(Any, times), values, linewidth=1.0, color="#1f77b4")
        axes.axhline(float(report.initial_equity), color="#999999", linewidth=0.8, linestyle="--")
        axes.set_title(f"{report.agent} on {report.symbol}: equity ({report.quote})")
        axes.set_ylabel(report.quote)
        axes.grid(True, alpha=0.3)
        figure.autofmt_xdate()
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    finally:
        plt.close(figure)
    return buffer.getvalue()


def write_outputs(result: BacktestResult, out_dir: Path) -> dict[str, Path]:
    """Write ``report.txt``, ``report.json``, ``fills.csv`` and ``equity.png`` into ``out_dir``.

    All four are rendered and written to temporary files first; only then are they renamed into
    place, so an error leaves the directory as it was. Returns the final paths by name.
    """
    contents = {
        "report.txt": ("\n".join(result.report.lines()) + "\n").encode(),
        "report.json": (json.dumps(result.report.to_json(), indent=2, sort_keys=True) + "\n").encode(),
        "fills.csv": _fills_csv(result.fills),
        "equity.png": _equity_png(result),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: dict[str, str] = {}
    try:
        for name, data in contents.items():
            handle, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            staged[name] = temp
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
        paths = {}
        for name, temp in staged.items():
            final = out_dir / name
            os.replace(temp, final)
            paths[name] = final
        return paths
    finally:
        for temp in staged.values():
            if os.path.exists(temp):
                os.unlink(temp)
