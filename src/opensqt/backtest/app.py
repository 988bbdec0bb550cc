"""``opensqt backtest``: options, the run they describe, and the command itself.

:func:`build_run` turns :class:`BacktestOptions` into a ready run (data, instrument, agent,
venue); :func:`run_backtest` runs it; :func:`backtest_command` is the typer command, which
prints the report and writes the files. With no options it runs the grid on the embedded
synthetic market.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from opensqt.arbitrage import ArbitrageConfig
from opensqt.backtest.prices import PriceScale
from opensqt.backtest.report import BacktestResult, write_outputs
from opensqt.backtest.runner import (
    ArbitrageBacktest,
    BarSeries,
    GridBacktest,
    MarketSetup,
    Progress,
    TickSeries,
    interval_name,
)
from opensqt.backtest.sources import (
    Bar,
    DataError,
    FundingEvent,
    funding_interval_hours,
    load_funding_file,
    open_candle_file,
    open_tick_file,
)
from opensqt.backtest.synthetic import SyntheticSpec, generate_market
from opensqt.clock import SystemClock
from opensqt.engine.checkpoint import CheckpointError, CheckpointStore
from opensqt.exchange import FeeSchedule, FillRule
from opensqt.grid import GridConfig, GridMode
from opensqt.grid.config import average_true_range, widen_interval
from opensqt.model.enums import MarketType
from opensqt.model.instrument import Instrument
from opensqt.model.money import round_to_step
from opensqt.risk import CrashConfig

__all__ = ["AgentKind", "BacktestOptions", "PreparedRun", "backtest_command", "build_run", "run_backtest"]


_SYMBOL_RE = re.compile(r"(?:^|_)([a-z0-9]+usdt)(?:_|$)", re.IGNORECASE)


class AgentKind(StrEnum):
    GRID = "grid"
    ARBITRAGE = "arbitrage"


@dataclass(frozen=True, slots=True)
class BacktestOptions:
    """Everything that defines a backtest (the output and progress options aside).

    Attributes mirror the command's options; see ``opensqt backtest --help``.
    """

    agent: AgentKind = AgentKind.GRID
    data: Path | None = None
    spot_data: Path | None = None
    funding_data: Path | None = None
    limit: int = 0
    seed: int = 7
    bars: int = 43_200
    volatility: float = 1.0
    crash_weight: float = 0.03
    symbol: str = ""
    market: MarketType = MarketType.PERPETUAL
    tick_size: Decimal | None = None
    step_size: Decimal = Decimal("0.001")
    min_notional: Decimal = Decimal(5)
    grid_interval: Decimal | None = None
    grid_step_pct: Decimal = Decimal("0.3")
    order_notional: Decimal = Decimal(200)
    buy_window: int = 10
    sell_window: int = 10
    max_open_orders: int = 20
    mode: GridMode = GridMode.LONG
    arbitrage_notional: Decimal = Decimal(1000)
    balance: Decimal = Decimal(10_000)
    leverage: Decimal = Decimal(3)
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    fill_rule: FillRule = FillRule.THROUGH
    crash_guard: bool = False
    funding_interval_hours: int | None = None  # None: the funding data's spacing, else 8
    # Grid on candles: widen the interval to ATR * volatility_scale (0: off), the ATR over the
    # atr_period candles before the first traded one (they warm up; nothing trades on them).
    volatility_scale: Decimal = Decimal(0)
    atr_period: int = 14

    def run_id(self) -> str:
        """A digest of the options: a checkpoint resumes only the run it was made by. Options
        added since checkpoints were first made count only when set (``atr_period`` only with a
        ``volatility_scale``), so an older checkpoint of the same run still resumes."""
        options = asdict(self)
        if not self.volatility_scale:
            options["atr_period"] = _LATER_OPTIONS["atr_period"]
        return _digest(
            {k: v for k, v in options.items() if k not in _LATER_OPTIONS or v != _LATER_OPTIONS[k]}
        )

    def earlier_run_ids(self) -> frozenset[str]:
        """The ids this run had under earlier code: from --funding-interval-hours to before
        --volatility-scale, every option counted, set or not."""
        if self.volatility_scale:
            return frozenset()
        options = asdict(self)
        del options["volatility_scale"], options["atr_period"]
        return frozenset({_digest(options)}) - {self.run_id()}


def _digest(options: dict[str, object]) -> str:
    data = {key: str(value) for key, value in options.items()}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


#: Options added after the first checkpoints, with their defaults (left out of the run id).
_LATER_OPTIONS: dict[str, object] = {
    "funding_interval_hours": None,
    "volatility_scale": Decimal(0),
    "atr_period": 14,
}


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """A run ready to go: call :meth:`execute`."""

    options: BacktestOptions
    backtest: GridBacktest | ArbitrageBacktest
    bars: BarSeries | None
    ticks: TickSeries | None
    spot_bars: BarSeries | None

    def execute(self) -> BacktestResult:
        backtest = self.backtest
        if isinstance(backtest, ArbitrageBacktest):
            assert self.spot_bars is not None
            assert self.bars is not None
            return backtest.run(self.spot_bars, self.bars)
        if self.ticks is not None:
            return backtest.run_ticks(self.ticks)
        assert self.bars is not None
        return backtest.run(self.bars)


def _bar_series(name: str, scale: PriceScale, interval_ms: int, bars: list[Bar]) -> BarSeries:
    return BarSeries(name, scale, interval_ms, len(bars), lambda: iter(bars))


def _symbol(options: BacktestOptions) -> str:
    if options.symbol:
        return options.symbol
    match = _SYMBOL_RE.search(options.data.name) if options.data is not None else None
    return match.group(1).upper() if match else "BTCUSDT"


def _funding_hours(options: BacktestOptions, funding: list[FundingEvent]) -> int:
    """The perpetual's funding interval: as set, else as the settlements are spaced, else 8 h
    (an APR read with the wrong interval is off by that factor: a 4 h symbol's by half)."""
    return options.funding_interval_hours or funding_interval_hours(funding) or 8


def _instrument(
    options: BacktestOptions, venue: str, market: MarketType, tick: Decimal, funding_hours: int = 8
) -> Instrument:
    symbol = _symbol(options)
    return Instrument(
        venue=venue,
        symbol=symbol,
        market_type=market,
        base=symbol.removesuffix("USDT") or "BASE",
        quote="USDT",
        tick_size=tick,
        step_size=options.step_size,
        min_qty=options.step_size,
        min_notional=options.min_notional,
        funding_interval_hours=funding_hours if market is MarketType.PERPETUAL else 0,
    )


def _setup(options: BacktestOptions, instrument: Instrument) -> MarketSetup:
    return MarketSetup(
        instrument=instrument,
        fees=FeeSchedule(maker=options.maker_fee, taker=options.taker_fee),
        initial_balance=options.balance,
        leverage=options.leverage,
        fill_rule=options.fill_rule,
    )


def _grid_config(
    options: BacktestOptions, instrument: Instrument, first_price: Decimal, atr: Decimal | None = None
) -> GridConfig:
    interval = options.grid_interval
    if interval is None:
        interval = round_to_step(first_price * options.grid_step_pct / 100, instrument.tick_size, mode="up")
    if atr is not None:
        interval = widen_interval(interval, atr, options.volatility_scale, instrument.tick_size)
    return GridConfig(
        price_interval=interval,
        order_notional=options.order_notional,
        buy_window=options.buy_window,
        sell_window=options.sell_window,
        max_open_orders=options.max_open_orders,
        min_order_value=options.min_notional,
        mode=options.mode,
        agent="bt",
    )


def build_run(
    options: BacktestOptions,
    *,
    store: CheckpointStore | None = None,
    progress: Progress | None = None,
    verify_fast_path: bool = False,
) -> PreparedRun:
    """Load or generate the data and assemble the agent, venue and engine.

    Raises:
        DataError: a data file is unreadable or of an unknown layout (bad rows surface later,
            while the run reads them).
        ValueError: an option is out of range.
    """
    if options.agent is AgentKind.ARBITRAGE:
        return _build_arbitrage(options, store, progress)
    limit = options.limit
    funding: list[FundingEvent] = []
    if options.funding_data is not None:
        funding = load_funding_file(options.funding_data)
    bars: BarSeries | None = None
    ticks: TickSeries | None = None
    if options.data is None:
        spec = SyntheticSpec(
            seed=options.seed,
            bars=options.bars,
            volatility=options.volatility,
            crash_weight=options.crash_weight,
            tick_size=options.tick_size or Decimal("0.1"),
        )
        market = generate_market(spec, with_spot=False)
        scale = market.scale
        funding = funding or market.funding
        data = market.perp_bars[: limit or None]
        bars = _bar_series(f"synthetic seed {options.seed}", scale, spec.interval_ms, data)
        first = scale.to_decimal(data[0][1])
        duration = len(data) * spec.interval_ms
    else:
        path = options.data
        try:
            candles = open_candle_file(path, tick_size=options.tick_size)
        except DataError as candle_error:
            try:
                tick_file = open_tick_file(path, tick_size=options.tick_size)
            except DataError:
                raise candle_error from None
            scale = tick_file.scale
            total = min(tick_file.rows, limit) if limit else tick_file.rows
            ticks = TickSeries(
                path.name,
                scale,
                tick_file.kind == "bookticker",
                total,
                lambda: itertools.islice(tick_file.events(), total),
            )
            first_event = next(tick_file.events())
            first = scale.to_decimal((first_event[1] + first_event[2] + 1) // 2)
            duration = 120_000
        else:
            scale = candles.scale
            total = min(candles.rows, limit) if limit else candles.rows
            bars = BarSeries(
                path.name, scale, candles.interval_ms, total, lambda: itertools.islice(candles.bars(), total)
            )
            first = scale.to_decimal(next(candles.bars())[1])
            duration = total * candles.interval_ms
    atr = None
    if options.volatility_scale > 0:
        if bars is None:
            raise ValueError(
                "--volatility-scale needs candles (the synthetic market or a candle file), not ticks"
            )
        bars, atr = _warm_up(bars, options.atr_period)
        first = scale.to_decimal(next(bars.open())[1])
        duration = bars.total * bars.interval_ms
    tick = options.tick_size or scale.tick_size
    instrument = _instrument(options, "sim", options.market, tick, _funding_hours(options, funding))
    crash = None
    if options.crash_guard and bars is not None:
        crash = CrashConfig(
            symbols=(instrument.symbol,), interval=interval_name(bars.interval_ms), recovery_threshold=1
        )
    backtest = GridBacktest(
        _grid_config(options, instrument, first, atr),
        _setup(options, instrument),
        scale,
        duration_ms=duration,
        funding=funding,
        crash=crash,
        store=store,
        clock=SystemClock(),
        run_id=options.run_id(),
        progress=progress,
        verify_fast_path=verify_fast_path,
    )
    backtest.engine.earlier_run_ids = options.earlier_run_ids()
    return PreparedRun(options, backtest, bars, ticks, None)


def _warm_up(bars: BarSeries, period: int) -> tuple[BarSeries, Decimal]:
    """The ATR over the first ``period + 1`` candles, and the series after them (the grid's
    interval is known before its first price, as live, where it comes from the candles before
    the start: the backtest looks no further ahead than that)."""
    warm = period + 1
    head = list(itertools.islice(bars.open(), warm + 1))
    if len(head) <= warm:
        raise ValueError(
            f"--volatility-scale: an ATR over {period} candles needs {warm} candles before the first "
            f"traded one; the data has {len(head)}"
        )
    to_decimal = bars.scale.to_decimal
    atr = average_true_range(
        [(to_decimal(h), to_decimal(low), to_decimal(c)) for _, _, h, low, c, _ in head[:warm]], period
    )
    source = bars.open
    rest = BarSeries(
        bars.name,
        bars.scale,
        bars.interval_ms,
        bars.total - warm,
        lambda: itertools.islice(source(), warm, None),
    )
    return rest, atr


def _build_arbitrage(
    options: BacktestOptions, store: CheckpointStore | None, progress: Progress | None
) -> PreparedRun:
    if options.volatility_scale > 0:
        raise ValueError("--volatility-scale is a grid option; the arbitrage has no interval")
    limit = options.limit
    if options.data is None:
        spec = SyntheticSpec(
            seed=options.seed,
            bars=options.bars,
            volatility=options.volatility,
            crash_weight=options.crash_weight,
            tick_size=options.tick_size or Decimal("0.1"),
        )
        market = generate_market(spec)
        scale = market.scale
        perp = _bar_series("synthetic perp", scale, spec.interval_ms, market.perp_bars[: limit or None])
        spot = _bar_series("synthetic spot", scale, spec.interval_ms, market.spot_bars[: limit or None])
        # as for the grid: a funding file, if given, replaces the synthetic settlements
        funding = load_funding_file(options.funding_data) if options.funding_data else market.funding
        duration = perp.total * spec.interval_ms
        spot_tick = perp_tick = scale.tick_size
    else:
        if options.spot_data is None or options.funding_data is None:
            raise ValueError("the arbitrage on files needs --data (perp candles), --spot and --funding")
        perp_file = open_candle_file(options.data, tick_size=options.tick_size)
        spot_file = open_candle_file(options.spot_data, tick_size=options.tick_size)
        spot_tick, perp_tick = spot_file.scale.tick_size, perp_file.scale.tick_size
        # one scale fine enough for both legs' ticks
        scale = PriceScale(max(perp_file.scale.decimals, spot_file.scale.decimals))
        perp_file = replace(perp_file, scale=scale)
        spot_file = replace(spot_file, scale=scale)
        perp_total = min(perp_file.rows, limit) if limit else perp_file.rows
        spot_total = min(spot_file.rows, limit) if limit else spot_file.rows
        perp = BarSeries(
            perp_file.path.name,
            scale,
            perp_file.interval_ms,
            perp_total,
            lambda: itertools.islice(perp_file.bars(), perp_total),
        )
        spot = BarSeries(
            spot_file.path.name,
            scale,
            spot_file.interval_ms,
            spot_total,
            lambda: itertools.islice(spot_file.bars(), spot_total),
        )
        funding = load_funding_file(options.funding_data)
        duration = perp_total * perp_file.interval_ms
    spot_instrument = _instrument(options, "sim-spot", MarketType.SPOT, spot_tick)
    perp_instrument = _instrument(
        options, "sim-perp", MarketType.PERPETUAL, perp_tick, _funding_hours(options, funding)
    )
    config = ArbitrageConfig(
        agent="bt-arb",
        spot=spot_instrument,
        perp=perp_instrument,
        order_quote_notional=options.arbitrage_notional,
        spot_taker_fee=options.taker_fee,
        perp_taker_fee=options.taker_fee,
        max_data_age_ms=max(120_000, 2 * perp.interval_ms),
        spot_fee_in_base=False,  # the backtest's matching core charges every fee in the quote asset
    )
    backtest = ArbitrageBacktest(
        config,
        _setup(options, spot_instrument),
        _setup(options, perp_instrument),
        scale,
        duration_ms=duration,
        funding=funding,
        store=store,
        clock=SystemClock(),
        run_id=options.run_id(),
        progress=progress,
    )
    backtest.engine.earlier_run_ids = options.earlier_run_ids()
    return PreparedRun(options, backtest, perp, None, spot)


def run_backtest(options: BacktestOptions, *, store: CheckpointStore | None = None) -> BacktestResult:
    """Build and run a backtest without printing anything."""
    return build_run(options, store=store).execute()


def backtest_command(
    agent: Annotated[AgentKind, typer.Option(help="Which agent to run")] = AgentKind.GRID,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Candle CSV (Binance kline or ../shared/data layout), or a trade/bookTicker CSV; "
            "default: the synthetic market"
        ),
    ] = None,
    spot: Annotated[Path | None, typer.Option(help="Arbitrage: spot candle CSV (--data is the perp)")] = None,
    funding: Annotated[Path | None, typer.Option(help="Funding CSV (ts_ms,symbol,funding_rate)")] = None,
    limit: Annotated[int, typer.Option(help="Use only the first N rows/events (0: all)", min=0)] = 0,
    seed: Annotated[int, typer.Option(help="Synthetic market: random seed")] = 7,
    bars: Annotated[int, typer.Option(help="Synthetic market: number of 1m candles", min=1)] = 43_200,
    volatility: Annotated[float, typer.Option(help="Synthetic market: volatility multiplier")] = 1.0,
    crash_weight: Annotated[float, typer.Option(help="Synthetic market: frequency of crashes")] = 0.03,
    symbol: Annotated[
        str, typer.Option(help="Symbol of the simulated market (default: from the file name, else BTCUSDT)")
    ] = "",
    market: Annotated[
        MarketType, typer.Option(help="Grid market type", case_sensitive=False)
    ] = MarketType.PERPETUAL,
    tick_size: Annotated[str | None, typer.Option(help="Price tick (default: from the data)")] = None,
    step_size: Annotated[str, typer.Option(help="Quantity step")] = "0.001",
    min_notional: Annotated[str, typer.Option(help="Minimum order value")] = "5",
    grid_interval: Annotated[str | None, typer.Option(help="Grid: absolute level spacing")] = None,
    grid_step_pct: Annotated[str, typer.Option(help="Grid: spacing as % of the first price")] = "0.3",
    order_notional: Annotated[str, typer.Option(help="Grid: quote value per order")] = "200",
    buy_window: Annotated[int, typer.Option(help="Grid: buy window (levels)", min=1)] = 10,
    sell_window: Annotated[int, typer.Option(help="Grid: sell window (levels)", min=1)] = 10,
    max_open_orders: Annotated[int, typer.Option(help="Grid: order budget", min=1)] = 20,
    mode: Annotated[GridMode, typer.Option(help="Grid: long or neutral")] = GridMode.LONG,
    arbitrage_notional: Annotated[str, typer.Option(help="Arbitrage: entry size in quote")] = "1000",
    balance: Annotated[str, typer.Option(help="Starting balance (quote)")] = "10000",
    leverage: Annotated[str, typer.Option(help="Perpetual leverage")] = "3",
    maker_fee: Annotated[str, typer.Option(help="Maker fee rate")] = "0.0002",
    taker_fee: Annotated[str, typer.Option(help="Taker fee rate")] = "0.0005",
    fill_rule: Annotated[
        FillRule, typer.Option(help="Resting orders fill when the price trades through or touches")
    ] = FillRule.THROUGH,
    crash_guard: Annotated[
        bool, typer.Option(help="Grid on candles: crash detection moves to REDUCING")
    ] = False,
    funding_interval_hours: Annotated[
        int | None,
        typer.Option(
            help="Perpetual funding interval in hours (default: the funding data's spacing, else 8)",
            min=1,
            max=24,
        ),
    ] = None,
    volatility_scale: Annotated[
        str,
        typer.Option(
            help="Grid on candles: widen the interval to ATR x this (0: off); the ATR's candles warm up"
        ),
    ] = "0",
    atr_period: Annotated[int, typer.Option(help="Grid: candles the ATR averages", min=1, max=499)] = 14,
    out: Annotated[Path, typer.Option(help="Output directory")] = Path("out/backtest"),
    checkpoint: Annotated[
        Path | None, typer.Option(help="SQLite checkpoint; resumes the same run if present")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar")] = True,
) -> None:
    """Backtest an agent on candles, ticks or the synthetic market; print a report and write files."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn
    from rich.progress import Progress as ProgressBar

    from opensqt.model.money import DecimalParseError, parse_decimal

    try:
        options = BacktestOptions(
            agent=agent,
            data=data,
            spot_data=spot,
            funding_data=funding,
            limit=limit,
            seed=seed,
            bars=bars,
            volatility=volatility,
            crash_weight=crash_weight,
            symbol=symbol,
            market=market,
            tick_size=None
            if tick_size is None
            else parse_decimal(tick_size, field="--tick-size", positive=True),
            step_size=parse_decimal(step_size, field="--step-size", positive=True),
            min_notional=parse_decimal(min_notional, field="--min-notional", non_negative=True),
            grid_interval=None
            if grid_interval is None
            else parse_decimal(grid_interval, field="--grid-interval", positive=True),
            grid_step_pct=parse_decimal(grid_step_pct, field="--grid-step-pct", positive=True),
            order_notional=parse_decimal(order_notional, field="--order-notional", positive=True),
            buy_window=buy_window,
            sell_window=sell_window,
            max_open_orders=max_open_orders,
            mode=mode,
            arbitrage_notional=parse_decimal(arbitrage_notional, field="--arbitrage-notional", positive=True),
            balance=parse_decimal(balance, field="--balance", positive=True),
            leverage=parse_decimal(leverage, field="--leverage", positive=True),
            maker_fee=parse_decimal(maker_fee, field="--maker-fee"),
            taker_fee=parse_decimal(taker_fee, field="--taker-fee"),
            fill_rule=fill_rule,
            crash_guard=crash_guard,
            funding_interval_hours=funding_interval_hours,
            volatility_scale=parse_decimal(volatility_scale, field="--volatility-scale", non_negative=True),
            atr_period=atr_period,
        )
    except DecimalParseError as error:
        raise typer.BadParameter(str(error)) from error
    store = CheckpointStore(checkpoint) if checkpoint is not None else None
    try:
        with ProgressBar(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not (progress and sys.stderr.isatty()),
            transient=True,
        ) as bar:
            task = bar.add_task("backtest", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            prepared = build_run(options, store=store, progress=advance)
            result = prepared.execute()
        paths = write_outputs(result, out)
    except (DataError, CheckpointError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    for line in result.report.lines():
        typer.echo(line)
    if isinstance(prepared.backtest, GridBacktest):
        widened = (
            f" (at least ATR x {options.volatility_scale}, the ATR of the {options.atr_period + 1} candles "
            "before the first traded one)"
            if options.volatility_scale > 0
            else ""
        )
        typer.echo(f"grid interval:    {prepared.backtest.config.price_interval}{widened}")
    typer.echo("wrote " + ", ".join(str(path) for path in paths.values()))
