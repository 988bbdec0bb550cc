"""``opensqt backtest``: defaults, determinism, real data, bad input, atomic outputs, arbitrage."""

from __future__ import annotations

import csv
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opensqt.backtest import AgentKind, BacktestOptions, build_run, run_backtest, write_outputs
from opensqt.backtest import report as report_module
from opensqt.backtest.runner import ArbitrageBacktest, GridBacktest
from opensqt.cli import app
from tests.support.shared_data import require_shared_file

runner = CliRunner()


def test_backtest_runs_with_no_arguments_on_the_synthetic_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["backtest"])
    assert result.exit_code == 0, result.output
    assert "backtest: grid on BTCUSDT (synthetic seed 7)" in result.output
    for line in (
        "orders:",
        "round trips",
        "realized PnL:",
        "unrealized PnL:",
        "fees:",
        "funding:",
        "max drawdown:",
        "peak exposure:",
        "grid interval:",
    ):
        assert line in result.output
    out = tmp_path / "out" / "backtest"
    assert sorted(p.name for p in out.iterdir()) == ["equity.png", "fills.csv", "report.json", "report.txt"]
    assert (out / "equity.png").read_bytes().startswith(b"\x89PNG")
    with (out / "fills.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    assert {row["liquidity"] for row in rows} <= {"maker", "taker"}


def test_results_are_identical_run_to_run() -> None:
    options = BacktestOptions(bars=20_000, seed=13)
    assert run_backtest(options) == run_backtest(options)


def test_outputs_are_byte_identical_run_to_run(tmp_path: Path) -> None:
    options = BacktestOptions(bars=5_000, seed=13)
    first = write_outputs(run_backtest(options), tmp_path / "a")
    second = write_outputs(run_backtest(options), tmp_path / "b")
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes(), name


def test_malformed_row_stops_the_run_naming_file_and_line_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "candles.csv"
    rows = [f"{60_000 * i},100.0,101.0,99.0,100.5,1" for i in range(1, 50)]
    rows[30] = "1860000,100.0,101.0,99.0,nan,1"
    data.write_text("ts_ms,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.txt").write_text("previous run\n")
    result = runner.invoke(app, ["backtest", "--data", str(data), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2
    assert f"{data}:32: close: 'nan'" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["report.txt"]
    assert (out / "report.txt").read_text() == "previous run\n"


def test_unknown_layout_is_refused_before_running(tmp_path: Path) -> None:
    data = tmp_path / "odd.csv"
    data.write_text("when,what\n1,2\n")
    result = runner.invoke(app, ["backtest", "--data", str(data), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f"{data}:1: unknown column layout" in result.output
    assert not (tmp_path / "out").exists()


def test_a_failing_plot_leaves_no_file_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_backtest(BacktestOptions(bars=2000))

    def broken(_: object) -> bytes:
        raise RuntimeError("plot failed")

    monkeypatch.setattr(report_module, "_equity_png", broken)
    with pytest.raises(RuntimeError):
        write_outputs(result, tmp_path / "out")
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == []


def test_report_adds_up() -> None:
    report = run_backtest(BacktestOptions(bars=20_000, seed=8)).report
    assert report.fills == report.maker_fills + report.taker_fills
    assert report.final_equity - report.initial_equity == (
        report.realized_pnl + report.unrealized_pnl - report.fees + report.funding
    )
    assert report.max_drawdown >= 0
    assert report.peak_exposure > 0


ONE_MINUTE_FILES = [
    "binance_um_btcusdt_1m_2023-08-10_2023-08-16.csv",
    "binance_um_btcusdt_1m_2022-05-07_2022-05-14.csv",
    "binance_spot_ethusdt_1m_2024-08-02_2024-08-08.csv",
    "binance_spot_btcusdt_1m_2025-06-02_2025-06-09.csv",
]


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ONE_MINUTE_FILES)
def test_grid_runs_on_shared_one_minute_data_deterministically(name: str) -> None:
    path = require_shared_file(name)
    options = BacktestOptions(data=path, limit=2000, grid_step_pct=Decimal("0.1"))
    first = build_run(options, verify_fast_path=True).execute()
    assert first.report.events == 2000
    assert first.report.orders > 0
    assert first == run_backtest(options)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "name",
    [
        "binance_um_btcusdt_trades_2024-08-08T2357-2359.csv",
        "binance_um_btcusdt_bookticker_2024-08-08T2357-2359.csv",
    ],
)
def test_grid_runs_on_shared_tick_data(name: str) -> None:
    path = require_shared_file(name)
    options = BacktestOptions(data=path, limit=5000, grid_step_pct=Decimal("0.01"))
    result = run_backtest(options)
    assert result.report.events == 5000
    assert result.report.fills > 0
    assert result == run_backtest(options)


def test_arbitrage_runs_on_the_synthetic_market_and_earns_funding() -> None:
    result = run_backtest(BacktestOptions(agent=AgentKind.ARBITRAGE, bars=4000, seed=2))
    assert result.report.round_trips > 0
    assert result.report.taker_fills > 0
    assert result.report.funding != 0


@pytest.mark.shared_data
def test_arbitrage_runs_on_shared_spot_and_perp_data() -> None:
    options = BacktestOptions(
        agent=AgentKind.ARBITRAGE,
        data=require_shared_file("binance_um_btcusdt_1m_2025-06-02_2025-06-09.csv"),
        spot_data=require_shared_file("binance_spot_btcusdt_1m_2025-06-02_2025-06-09.csv"),
        funding_data=require_shared_file("binance_um_btcusdt_funding_2019-09-10_2026-05-17.csv"),
        limit=2000,
    )
    result = run_backtest(options)
    assert result.report.events == 2000
    assert result == run_backtest(options)


def test_the_arbitrage_reads_the_funding_interval_from_the_funding_file(tmp_path: Path) -> None:
    # a symbol that settles every 4 h: its APR is read per 4 h, not 8 (which would halve it)
    funding = tmp_path / "funding.csv"
    rows = [f"{i * 4 * 3_600_000},BTCUSDT,0.0001" for i in range(10)]
    funding.write_text("ts_ms,symbol,funding_rate\n" + "\n".join(rows) + "\n", encoding="utf-8")
    options = BacktestOptions(agent=AgentKind.ARBITRAGE, bars=200, funding_data=funding)
    run = build_run(options)
    assert isinstance(run.backtest, ArbitrageBacktest)
    assert run.backtest.perp.funding_interval_hours == 4
    assert run.backtest.spot.funding_interval_hours == 0
    set_by_hand = build_run(replace(options, funding_interval_hours=1))
    assert isinstance(set_by_hand.backtest, ArbitrageBacktest)
    assert set_by_hand.backtest.perp.funding_interval_hours == 1
    grid = build_run(BacktestOptions(bars=200, funding_data=funding))
    assert isinstance(grid.backtest, GridBacktest)
    assert grid.backtest.agent.instrument.funding_interval_hours == 4
    synthetic = build_run(BacktestOptions(agent=AgentKind.ARBITRAGE, bars=200))  # its own 8 h
    assert isinstance(synthetic.backtest, ArbitrageBacktest)
    assert synthetic.backtest.perp.funding_interval_hours == 8


def candle_file(path: Path, bars: list[tuple[str, str, str]]) -> Path:
    """A ``shared``-layout 1m candle file of (high, low, close) rows (open = close)."""
    rows = [f"{i * 60_000},{c},{h},{low},{c},1" for i, (h, low, c) in enumerate(bars)]
    path.write_text("ts_ms,open,high,low,close,volume\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_volatility_scale_widens_the_grid_by_the_atr_of_the_candles_before_the_first_traded_one(
    tmp_path: Path,
) -> None:
    # true ranges after the first bar: 20 and 40 (the gap from the close 3010): ATR(2) 30,
    # x 0.5 = 15 > the 5 asked for; the fourth bar is the first traded one
    bars = [("3010", "2990", "3000"), ("3020", "3000", "3010"), ("2990", "2970", "2980")]
    bars += [("2990", "2970", "2985")] * 20
    data = candle_file(tmp_path / "BTCUSDT-1m.csv", bars)
    options = BacktestOptions(
        data=data,
        grid_interval=Decimal("5"),
        volatility_scale=Decimal("0.5"),
        atr_period=2,
        tick_size=Decimal("0.1"),
    )
    run = build_run(options)
    assert isinstance(run.backtest, GridBacktest)
    assert run.backtest.config.price_interval == Decimal("15.0")
    assert run.bars is not None
    assert run.bars.total == len(bars) - 3  # the three that gave the ATR trade nothing
    assert next(run.bars.open())[0] == 3 * 60_000
    assert run.execute().report.events == len(bars) - 3
    plain = build_run(replace(options, volatility_scale=Decimal(0)))
    assert isinstance(plain.backtest, GridBacktest)
    assert plain.backtest.config.price_interval == Decimal("5")


def test_a_volatility_scale_without_enough_candles_or_on_ticks_is_refused(tmp_path: Path) -> None:
    data = candle_file(tmp_path / "BTCUSDT-1m.csv", [("3010", "2990", "3000")] * 3)
    with pytest.raises(ValueError, match="needs 3 candles before the first traded one; the data has 3"):
        build_run(BacktestOptions(data=data, volatility_scale=Decimal(1), atr_period=2))
    with pytest.raises(ValueError, match="grid option"):
        build_run(BacktestOptions(agent=AgentKind.ARBITRAGE, bars=200, volatility_scale=Decimal(1)))
    trades = tmp_path / "BTCUSDT-trades.csv"
    trades.write_text(
        "id,price,qty,quote_qty,time,is_buyer_maker\n1,30000.0,0.1,3000,1000,true\n2,30001.0,0.1,3000,2000,false\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="needs candles"):
        build_run(BacktestOptions(data=trades, volatility_scale=Decimal(1)))


def test_run_ids_of_runs_that_set_no_later_option_are_those_of_the_code_before_them() -> None:
    # digests printed by the code before --funding-interval-hours (dd75941~1) and by b6df105:
    # checkpoints made by either resume; a later option counts once it is set
    assert BacktestOptions().run_id() == "c93591b1d7ff4a50"
    assert BacktestOptions(agent=AgentKind.ARBITRAGE, seed=11, bars=5000).run_id() == "b93b9e41dabad9aa"
    assert BacktestOptions(volatility_scale=Decimal(1)).run_id() != "c93591b1d7ff4a50"
    assert BacktestOptions(funding_interval_hours=4).run_id() != "c93591b1d7ff4a50"
    assert BacktestOptions(atr_period=20).run_id() == "c93591b1d7ff4a50"  # no effect without a scale
    # and those of the code from --funding-interval-hours on (b6df105), which counted it unset too
    assert BacktestOptions().earlier_run_ids() == {"a17d72145ca3d37c"}
    assert BacktestOptions(agent=AgentKind.ARBITRAGE, seed=11, bars=5000).earlier_run_ids() == {
        "06d40f6330d78fe5"
    }
    assert BacktestOptions(funding_interval_hours=4).run_id() == "618f91d4e3b28360"
    assert BacktestOptions(volatility_scale=Decimal(1)).earlier_run_ids() == frozenset()
