"""The equity curve, final equity and max drawdown of whole runs against a brute force.

The brute force rebuilds the account from the run's own records only: cash is the initial
balance minus what each fill bought (``price * qty``), plus what it sold, minus its fee, plus
every funding payment the core settled for the account; the position is the signed sum of the
fills' quantities. Equity at a candle is that cash plus the position marked at the candle's
close, in exact Decimal arithmetic, with every fill of the candle (its time is at most the
candle's last millisecond) and every funding payment settled at or before the candle's open.
This holds for perpetuals (linear: realized plus unrealized PnL is the sum of the cash flows)
and for spot alike, and needs neither the core's entry prices nor its last price.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from opensqt.backtest import AgentKind, BacktestOptions, BacktestResult, build_run, write_outputs
from opensqt.backtest.app import PreparedRun
from opensqt.backtest.ledger import Ledger
from opensqt.backtest.runner import ACCOUNT, ArbitrageBacktest
from opensqt.exchange import FundingPayment
from opensqt.grid import GridMode
from opensqt.model.enums import MarketType


@dataclass(frozen=True, slots=True)
class Recorded:
    prepared: PreparedRun
    result: BacktestResult
    payments: list[FundingPayment]


def _run(options: BacktestOptions, *, every_candle: bool) -> Recorded:
    prepared = build_run(options)
    backtest = prepared.backtest
    if every_candle:
        backtest.state.tracker.sample_every_ms = 1  # a sample at every candle close
    payments: list[FundingPayment] = []
    core = backtest.core
    settle = core.settle_funding

    def recording_settle(*args: object, **kwargs: object) -> list[FundingPayment]:
        settled = settle(*args, **kwargs)  # type: ignore[arg-type]
        payments.extend(p for p in settled if p.account == ACCOUNT)
        return settled

    core.settle_funding = recording_settle  # type: ignore[method-assign]
    return Recorded(prepared, prepared.execute(), payments)


def _brute_force(recorded: Recorded) -> list[tuple[int, Decimal, Decimal, Decimal]]:
    """``(candle open ms, equity at its close, exposure at its close, position)`` for every
    candle (the position is on the run's main market)."""
    prepared = recorded.prepared
    backtest = prepared.backtest
    assert prepared.bars is not None
    scale = prepared.bars.scale
    interval = prepared.bars.interval_ms
    main = f"{backtest.instrument.venue}:{backtest.instrument.symbol}"
    # the markets of the run, each with its closes by candle open time
    closes: dict[str, dict[int, int]] = {main: {bar[0]: bar[4] for bar in prepared.bars.open()}}
    if isinstance(backtest, ArbitrageBacktest):
        assert prepared.spot_bars is not None
        spot = f"{backtest.spot.venue}:{backtest.spot.symbol}"
        closes[spot] = {bar[0]: bar[4] for bar in prepared.spot_bars.open()}
        times = sorted(set(closes[main]) & set(closes[spot]))
    else:
        times = sorted(closes[main])
    fills = sorted(recorded.result.fills, key=lambda row: int(row[0]))
    payments = sorted(recorded.payments, key=lambda p: p.time_ms)
    cash = recorded.result.report.initial_equity
    sizes = dict.fromkeys(closes, Decimal(0))
    next_fill = next_payment = 0
    series = []
    for open_ms in times:
        while next_fill < len(fills) and int(fills[next_fill][0]) <= open_ms + interval - 1:
            _, venue, symbol, side, price, qty, fee, *_ = fills[next_fill]
            signed = Decimal(qty) if side == "BUY" else -Decimal(qty)
            cash -= signed * Decimal(price) + Decimal(fee)
            sizes[f"{venue}:{symbol}"] += signed
            next_fill += 1
        while next_payment < len(payments) and payments[next_payment].time_ms <= open_ms:
            cash += payments[next_payment].amount
            next_payment += 1
        marks = {key: scale.to_decimal(closes[key][open_ms]) for key in closes}
        equity = cash + sum((sizes[key] * marks[key] for key in closes), Decimal(0))
        series.append((open_ms, equity, abs(sizes[main]) * marks[main], sizes[main]))
    assert next_fill == len(fills), "every fill is inside a candle of the run"
    assert next_payment == len(payments), "every funding payment is inside the run"
    return series


def _max_drawdown(equities: Sequence[Decimal]) -> Decimal:
    peak: Decimal | None = None
    drawdown = Decimal(0)
    for equity in equities:
        peak = equity if peak is None or equity > peak else peak
        drawdown = max(drawdown, peak - equity)
    return drawdown


CASES = {
    "perp long grid, funding": BacktestOptions(bars=4000, seed=7),
    "perp neutral grid, funding": BacktestOptions(bars=3000, seed=11, mode=GridMode.NEUTRAL),
    "spot grid": BacktestOptions(bars=3000, seed=5, market=MarketType.SPOT),
    "tight perp grid": BacktestOptions(bars=2500, seed=3, grid_step_pct=Decimal("0.1")),
    "arbitrage": BacktestOptions(agent=AgentKind.ARBITRAGE, bars=3000, seed=2),
    "perp grid liquidated": BacktestOptions(
        bars=3000,
        seed=1,
        balance=Decimal(150),
        leverage=Decimal(50),
        order_notional=Decimal(100),
        volatility=3.0,
        crash_weight=0.3,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_equity_at_every_candle_close_matches_a_brute_force_rebuild(name: str) -> None:
    options = CASES[name]
    recorded = _run(options, every_candle=True)
    report = recorded.result.report
    series = _brute_force(recorded)
    assert report.fills > 0
    if options.market is MarketType.PERPETUAL:
        assert recorded.payments
        assert report.funding != 0
    if name == "perp grid liquidated":
        assert report.liquidations > 0
    expected = {open_ms: equity for open_ms, equity, *_ in series}
    curve = recorded.result.equity_curve
    assert [time_ms for time_ms, _ in curve] == [open_ms for open_ms, *_ in series]
    for time_ms, value in curve:
        assert Decimal(value) == expected[time_ms], f"{name}: equity at {time_ms}"
    last_ms, final, _, position = series[-1]
    assert curve[-1][0] == last_ms
    assert Decimal(curve[-1][1]) == final
    assert report.final_equity == final
    assert report.max_drawdown == _max_drawdown([equity for _, equity, *_ in series])
    assert report.peak_exposure == max(exposure for _, _, exposure, _ in series)
    assert report.final_position == position


def test_the_sampled_curve_ends_at_the_final_equity_and_matches_the_brute_force() -> None:
    recorded = _run(BacktestOptions(bars=6000, seed=7), every_candle=False)
    report = recorded.result.report
    series = _brute_force(recorded)
    expected = {open_ms: equity for open_ms, equity, *_ in series}
    curve = recorded.result.equity_curve
    assert 1000 < len(curve) < len(series)
    for time_ms, value in curve:
        assert Decimal(value) == expected[time_ms]
    assert curve[-1][0] == series[-1][0]
    assert Decimal(curve[-1][1]) == report.final_equity == series[-1][1]
    assert report.max_drawdown == _max_drawdown([equity for _, equity, *_ in series])


def test_final_equity_agrees_with_the_core_marked_at_the_last_close() -> None:
    """The exact books of the backtest and the core's own accounting tell the same story."""
    recorded = _run(BacktestOptions(bars=4000, seed=7), every_candle=False)
    prepared = recorded.prepared
    backtest = prepared.backtest
    assert prepared.bars is not None
    last_close = prepared.bars.scale.to_decimal(list(prepared.bars.open())[-1][4])
    instrument = backtest.instrument
    backtest.core.set_mark(instrument.venue, instrument.symbol, last_close)
    core_equity = backtest.core.equity(ACCOUNT, instrument.quote)
    # the core averages entry prices (a division): it may differ in the last of 28 digits
    assert abs(core_equity - recorded.result.report.final_equity) < Decimal("1e-12")


def test_a_checkpoint_without_the_cash_flow_rebuilds_it_from_the_fills() -> None:
    ledger = _run(BacktestOptions(bars=3000, seed=7), every_candle=False).prepared.backtest.ledger
    state = ledger.to_state()
    del state["cash_flow"]
    restored = Ledger()
    restored.restore(state)
    assert ledger.cash_flow != 0
    assert restored.cash_flow == ledger.cash_flow


MONEY_KEYS = (
    "realized_pnl",
    "unrealized_pnl",
    "fees",
    "funding",
    "initial_equity",
    "final_equity",
    "net_pnl",
    "max_drawdown",
    "peak_exposure",
)


def test_report_files_show_money_rounded(tmp_path: Path) -> None:
    result = build_run(BacktestOptions(bars=4000, seed=7)).execute()
    paths = write_outputs(result, tmp_path)
    data = json.loads(paths["report.json"].read_text())
    for key in MONEY_KEYS:
        assert re.fullmatch(r"-?\d+\.\d{8}", data[key]), (key, data[key])
    assert re.fullmatch(r"\d+\.\d{8}", data["max_drawdown_fraction"])
    assert Decimal(data["final_equity"]) == result.report.final_equity.quantize(Decimal("1e-8"))
    money = re.compile(r"-?[\d,]+\.\d{2}")
    text = paths["report.txt"].read_text()
    for line in text.splitlines():
        if line.startswith(("realized", "unrealized", "fees", "funding", "net PnL", "max drawdown", "peak")):
            amounts = re.findall(r"-?[\d,]+\.\d+", line)
            assert amounts, line
            assert all(money.fullmatch(amount) for amount in amounts), line
