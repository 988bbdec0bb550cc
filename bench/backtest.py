"""Backtest throughput: candles/s of the grid over a year of synthetic 1m candles, and events/s
over the tick files of ../shared/data.

    .venv/bin/python bench/backtest.py                 # one year (525,600 candles) + tick files
    .venv/bin/python bench/backtest.py --bars 100000 --profile   # shorter, with a cProfile top 25

Three synthetic figures: the default grid (0.3% spacing), a tight grid (0.1%, many more level
crossings), and the fast path alone (50% spacing: no candle crosses anything after the first),
which is what a candle that crosses no level and no order costs. Nothing is asserted; see
bench/README.md for measured numbers.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from decimal import Decimal
from pathlib import Path

from opensqt.backtest import BacktestOptions, GridBacktest, build_run, generate_market
from opensqt.backtest.synthetic import SyntheticSpec

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TICK_FILES = (
    "binance_um_btcusdt_trades_2024-08-08T2357-2359.csv",
    "binance_um_btcusdt_bookticker_2024-08-08T2357-2359.csv",
    "binance_spot_btcusdt_trades_2024-08-08T2357-2359.csv",
    "binance_spot_btcusdt_bookticker_2024-08-08T2357-2359.csv",
)


def bench_synthetic(bars: int, label: str, step_pct: str, profile: bool = False) -> None:
    prepared = build_run(BacktestOptions(bars=bars, grid_step_pct=Decimal(step_pct)))
    backtest = prepared.backtest
    assert isinstance(backtest, GridBacktest)
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = prepared.execute()
    if profiler is not None:
        profiler.disable()
    elapsed = time.perf_counter() - started
    report = result.report
    rate = report.events / elapsed
    print(
        f"{label}: {report.events:,} candles in {elapsed:.2f} s = {rate:,.0f} candles/s "
        f"({elapsed / report.events * 1e6:.2f} µs/candle); slow path {backtest.slow_events:,} candles "
        f"({backtest.slow_events / report.events:.1%}); {report.fills:,} fills, {report.orders:,} orders"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def bench_ticks() -> None:
    for name in TICK_FILES:
        path = SHARED / name
        if not path.is_file():
            print(f"{name}: skipped ({path} not found)")
            continue
        prepared = build_run(BacktestOptions(data=path, grid_step_pct=Decimal("0.02")))
        started = time.perf_counter()
        result = prepared.execute()
        elapsed = time.perf_counter() - started
        events = result.report.events
        print(
            f"grid on {name}: {events:,} events in {elapsed:.3f} s = {events / elapsed:,.0f} events/s; "
            f"{result.report.fills:,} fills"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=525_600, help="synthetic 1m candles (default: one year)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the default grid run")
    parser.add_argument("--no-ticks", action="store_true", help="skip the tick files")
    args = parser.parse_args()
    started = time.perf_counter()
    generate_market(SyntheticSpec(bars=args.bars), with_spot=False)
    print(f"synthetic market: {args.bars:,} 1m candles generated in {time.perf_counter() - started:.2f} s")
    bench_synthetic(args.bars, "grid 0.3% (default)", "0.3", args.profile)
    bench_synthetic(args.bars, "grid 0.1% (tight)", "0.1")
    bench_synthetic(args.bars, "fast path only (50%)", "50")
    if not args.no_ticks:
        bench_ticks()


if __name__ == "__main__":
    main()
