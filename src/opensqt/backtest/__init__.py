"""Backtests: an agent in a SimpleEngine against the matching core, on data or a synthetic market.

- :mod:`~opensqt.backtest.sources`: strict, lazy CSV loaders (candles, trades, bookTicker, funding);
- :mod:`~opensqt.backtest.synthetic`: the seeded synthetic market (the embedded default);
- :mod:`~opensqt.backtest.runner`: the runs and their hot loop;
- :mod:`~opensqt.backtest.report`: the report and its files (text, JSON, fills CSV, equity PNG);
- :mod:`~opensqt.backtest.app`: the ``opensqt backtest`` command.
"""

from opensqt.backtest.app import AgentKind, BacktestOptions, backtest_command, build_run, run_backtest
from opensqt.backtest.report import BacktestReport, BacktestResult, write_outputs
from opensqt.backtest.runner import ArbitrageBacktest, BarSeries, GridBacktest, MarketSetup, TickSeries
from opensqt.backtest.sources import DataError, open_candle_file, open_tick_file
from opensqt.backtest.synthetic import SyntheticSpec, generate_market

__all__ = [
    "AgentKind",
    "ArbitrageBacktest",
    "BacktestOptions",
    "BacktestReport",
    "BacktestResult",
    "BarSeries",
    "DataError",
    "GridBacktest",
    "MarketSetup",
    "SyntheticSpec",
    "TickSeries",
    "backtest_command",
    "build_run",
    "generate_market",
    "open_candle_file",
    "open_tick_file",
    "run_backtest",
    "write_outputs",
]
