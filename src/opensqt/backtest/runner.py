"""Backtest runs: an agent in a :class:`~opensqt.engine.simple.SimpleEngine` against the matching
core, driven by candles, ticks or the synthetic market.

Candles. Inside a candle the price is taken to move open → low → high → close (open → high → low
→ close when the candle closes below its open). At each of those points the core fills what the
move traded through, and the agent sees the price, so a buy filled at the low gets its close
before the high.

The hot path. Most candles change nothing, and the loop proves it with four integer
comparisons: the matching core's quiet range (no resting order or liquidation price inside) and
the grid's quiet band (no decision boundary inside, see :meth:`GridAgent._quiet_band
<opensqt.engine.simple.GridAgent>`) must both contain the candle's low and high. Such a candle
costs an equity-tracker update and nothing else: no Decimal, no strategy call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from opensqt.arbitrage import ArbitrageConfig
from opensqt.backtest.equity import EquityTracker
from opensqt.backtest.ledger import CoreVenue, Ledger
from opensqt.backtest.prices import PriceScale
from opensqt.backtest.report import BacktestReport, BacktestResult
from opensqt.backtest.sources import Bar, FundingEvent, TickEvent
from opensqt.clock import Clock
from opensqt.engine.checkpoint import CheckpointStore
from opensqt.engine.simple import ArbitrageAgent, GridAgent, QuietBand, SimpleEngine
from opensqt.exchange import FeeSchedule, FillRule, MarketRules, MatchingCore, market_key
from opensqt.grid import GridConfig
from opensqt.model.enums import MarketType
from opensqt.model.events import FundingUpdate, PositionUpdate, PriceChange, TradingState
from opensqt.model.instrument import Instrument
from opensqt.model.money import ZERO
from opensqt.model.resources import Candle, FundingRate
from opensqt.risk import CrashConfig, CrashDetector

__all__ = [
    "ACCOUNT",
    "ArbitrageBacktest",
    "BarSeries",
    "GridBacktest",
    "MarketSetup",
    "Progress",
    "TickSeries",
    "interval_name",
]

ACCOUNT = "backtest"
_CHECK_EVERY = 4096
_CURVE_POINTS = 2000

Progress = Callable[[int, int], None]
"""Called with (events done, events in total) every few thousand events."""


def interval_name(interval_ms: int) -> str:
    """``60000`` → ``"1m"``; the largest whole unit."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if interval_ms % size == 0:
            return f"{interval_ms // size}{unit}"
    raise ValueError(f"interval {interval_ms} ms is not a whole number of seconds")


@dataclass(frozen=True, slots=True)
class MarketSetup:
    """The simulated venue of a run: the market, its fees, the account's money and leverage."""

    instrument: Instrument
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    initial_balance: Decimal = Decimal(10_000)
    leverage: Decimal = Decimal(3)
    fill_rule: FillRule = FillRule.THROUGH
    maintenance_margin_rate: Decimal = Decimal("0.004")

    def rules(self) -> MarketRules:
        return MarketRules(fees=self.fees, maintenance_margin_rate=self.maintenance_margin_rate)


@dataclass(frozen=True, slots=True)
class BarSeries:
    """Candles of one market: a name for the report, price scale, interval, count, and a
    factory that opens a fresh iterator (called again to resume from a checkpoint)."""

    name: str
    scale: PriceScale
    interval_ms: int
    total: int
    open: Callable[[], Iterator[Bar]]


@dataclass(frozen=True, slots=True)
class TickSeries:
    """Trades (``quotes=False``) or bookTicker quotes of one market, like :class:`BarSeries`."""

    name: str
    scale: PriceScale
    quotes: bool
    total: int
    open: Callable[[], Iterator[TickEvent]]


class _RunState:
    """Everything of a run besides the agent: the venue, the books and the progress."""

    def __init__(self, core: MatchingCore, ledger: Ledger, tracker: EquityTracker) -> None:
        self.core = core
        self.ledger = ledger
        self.tracker = tracker
        self.cursor = 0
        self.funding_index = 0
        self.start_ms = -1
        self.end_ms = 0

    def to_state(self) -> dict[str, Any]:
        return {
            "core": self.core.to_state(),
            "ledger": self.ledger.to_state(),
            "tracker": self.tracker.to_state(),
            "cursor": self.cursor,
            "funding_index": self.funding_index,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.core.restore(state["core"])
        self.ledger.restore(state["ledger"])
        self.tracker.restore(state["tracker"])
        self.cursor = state["cursor"]
        self.funding_index = state["funding_index"]
        self.start_ms = state["start_ms"]
        self.end_ms = state["end_ms"]


class _Run:
    """What the grid and arbitrage runs share: the core, the account, the engine and the books."""

    def __init__(
        self,
        setups: Sequence[MarketSetup],
        scale: PriceScale,
        sample_every_ms: int,
        *,
        store: CheckpointStore | None,
        clock: Clock | None,
        run_id: str,
        progress: Progress | None,
    ) -> None:
        main = setups[0]
        self.instrument = main.instrument
        self.scale = scale
        core = MatchingCore(fill_rule=main.fill_rule, keep_history=False)
        quote = main.instrument.quote
        for setup in setups:
            core.add_market(setup.instrument, setup.rules())
        core.open_account(ACCOUNT, {quote: main.initial_balance})
        self.ledger = Ledger()
        self.venue = CoreVenue(core, ACCOUNT, self.ledger, default_venue=main.instrument.venue)
        for setup in setups:
            instrument = setup.instrument
            self.venue.register(instrument.venue, instrument.symbol, instrument.market_type)
            if instrument.market_type is MarketType.PERPETUAL:
                core.set_leverage(ACCOUNT, instrument.venue, instrument.symbol, setup.leverage)
        self.core = core
        self._main_key = market_key(main.instrument.venue, main.instrument.symbol)
        self._other_markets = [
            (market_key(other.venue, other.symbol), other.venue, other.symbol)
            for other in (setup.instrument for setup in setups[1:])
        ]
        self.initial_equity = main.initial_balance
        self.state = _RunState(core, self.ledger, EquityTracker(scale, sample_every_ms))
        self.store = store
        self.clock = clock
        self.run_id = run_id
        self.progress = progress

    def cash_and_position(self) -> tuple[Decimal, Decimal]:
        """``(cash, position)`` with ``equity(p) = cash + position * p`` for the main market.

        From the ledger's exact books (see :class:`~opensqt.backtest.ledger.Ledger`), not from
        the core's equity, which carries the rounding of its average entry prices. The other
        markets' holdings (the arbitrage's spot leg) are in ``cash`` at their last price.
        """
        ledger = self.ledger
        cash = self.initial_equity + ledger.cash_flow
        for key, venue, symbol in self._other_markets:
            size = ledger.size(key)
            if size:
                cash += size * (self.core.last_price(venue, symbol) or ZERO)
        return cash, ledger.size(self._main_key)

    def report(self, agent: str, source: str, events: int) -> BacktestResult:
        instrument = self.instrument
        core = self.core
        state = self.state
        tracker = state.tracker
        tracker.finish()
        # at the last close the run saw (the core's last price lags on the fast path)
        final_equity = tracker.final_equity
        if final_equity is None:  # no event at all
            final_equity = core.equity(ACCOUNT, instrument.quote)
        _, size = self.cash_and_position()
        ledger = self.ledger
        unrealized = final_equity - self.initial_equity - ledger.realized_pnl + ledger.fees - ledger.funding
        report = BacktestReport(
            agent=agent,
            source=source,
            symbol=instrument.symbol,
            start_ms=max(state.start_ms, 0),
            end_ms=state.end_ms,
            events=events,
            orders=ledger.orders,
            rejected=ledger.rejected,
            cancels=ledger.cancels,
            expired=ledger.expired,
            fills=len(ledger.fills),
            maker_fills=ledger.maker_fills,
            taker_fills=ledger.taker_fills,
            round_trips=ledger.round_trips,
            liquidations=ledger.liquidations,
            realized_pnl=ledger.realized_pnl,
            unrealized_pnl=unrealized,
            fees=ledger.fees,
            funding=ledger.funding,
            initial_equity=self.initial_equity,
            final_equity=final_equity,
            max_drawdown=tracker.max_drawdown,
            max_drawdown_fraction=tracker.max_drawdown_fraction,
            peak_exposure=tracker.peak_exposure,
            final_position=size,
            quote=instrument.quote,
        )
        return BacktestResult(report, list(ledger.fills), list(tracker.samples))


class GridBacktest(_Run):
    """The grid agent on one market, over candles (:meth:`run`) or ticks (:meth:`run_ticks`).

    Args:
        config: the grid parameters.
        setup: the market and account.
        scale: price units of the data (the instrument's tick must be a whole number of them).
        duration_ms: the data's time span, for the equity curve's sampling.
        funding: funding settlements (perpetuals), in time order.
        crash: a crash detector configuration for the run's candles (None: no risk rule).
        store: checkpoints; a run resumes from the stored snapshot of the same ``run_id``.
        clock: wall clock for the checkpoint rate limit.
        verify_fast_path: also ask the strategy on every skipped candle and fail if it would
            have acted (slow; for tests).
    """

    def __init__(
        self,
        config: GridConfig,
        setup: MarketSetup,
        scale: PriceScale,
        *,
        duration_ms: int,
        funding: Sequence[FundingEvent] = (),
        crash: CrashConfig | None = None,
        store: CheckpointStore | None = None,
        clock: Clock | None = None,
        run_id: str = "",
        progress: Progress | None = None,
        verify_fast_path: bool = False,
    ) -> None:
        super().__init__(
            [setup],
            scale,
            max(1, duration_ms // _CURVE_POINTS),
            store=store,
            clock=clock,
            run_id=run_id,
            progress=progress,
        )
        if setup.instrument.tick_size % scale.tick_size:
            raise ValueError(
                f"tick size {setup.instrument.tick_size} is not on the data's scale {scale.tick_size}"
            )
        self.config = config
        self.agent = GridAgent(config, setup.instrument, account=ACCOUNT)
        self.engine = SimpleEngine(
            self.agent, self.venue, store=store, clock=clock, run_id=run_id, extra=self.state
        )
        self.funding = list(funding)
        self.crash = crash
        self.detector = CrashDetector(crash) if crash is not None else None
        self.verify_fast_path = verify_fast_path
        self._core_version = -1
        self._quiet = (0, 0)
        self._band: QuietBand | None = None
        self._band_units = (0, 0, 0)
        self._last_units = 0
        self.slow_events = 0
        """Candles that took the slow path in this process (a measurement, not part of results)."""

    # -- candles --------------------------------------------------------------------------------

    def run(self, series: BarSeries) -> BacktestResult:
        """Run over every candle of ``series`` (resuming from a checkpoint when there is one)."""
        engine = self.engine
        state = self.state
        if engine.load_checkpoint() and self.detector is not None:
            for bar in itertools.islice(series.open(), state.cursor):
                self.detector.on_candle(self._candle(bar, series.interval_ms))
        self._last_units = self._units_of_last()
        core = self.core
        agent = self.agent
        tracker = state.tracker
        observe = tracker.observe
        funding = self.funding
        next_funding = funding[state.funding_index].time_ms if state.funding_index < len(funding) else 2**62
        detector = self.detector
        verify = self.verify_fast_path
        interval = series.interval_ms
        total = series.total
        progress = self.progress
        index = state.cursor
        countdown = _CHECK_EVERY
        last_ms: int | None = None
        low_q, high_q = self._refresh_quiet()
        band_low, band_high, band_until = self._refresh_band()
        for bar in itertools.islice(series.open(), state.cursor, None):
            time_ms, open_, high, low, close, _volume = bar
            index += 1
            if time_ms >= next_funding:
                next_funding = self._settle_funding(time_ms, open_)
                low_q, high_q = self._refresh_quiet()
            if (
                low_q <= low
                and high <= high_q
                and band_low < low
                and high < band_high
                and time_ms < band_until
            ):
                if verify:
                    self._verify_quiet(close, time_ms)
            else:
                if state.start_ms < 0:
                    state.start_ms = time_ms
                self.slow_events += 1
                self._slow_bar(time_ms, open_, high, low, close, interval)
                # _move refreshes the cached ranges as it goes: take them over
                if core.version != self._core_version:
                    self._refresh_quiet()
                if agent.band is not self._band:
                    self._refresh_band()
                low_q, high_q = self._quiet
                band_low, band_high, band_until = self._band_units
            observe(time_ms, close)
            last_ms = time_ms
            if detector is not None:
                # judged at the candle's close: a new trading state applies from the next candle
                self._check_crash(detector, bar, interval)
                band_low, band_high, band_until = self._refresh_band()
            countdown -= 1
            if not countdown:
                countdown = _CHECK_EVERY
                state.cursor = index
                state.end_ms = time_ms + interval
                engine.touch()
                engine.maybe_checkpoint()
                if progress is not None:
                    progress(index, total)
        state.cursor = index
        if last_ms is not None:
            state.end_ms = last_ms + interval
        engine.touch()
        engine.maybe_checkpoint()
        if progress is not None:
            progress(index, total)
        return self.report("grid", series.name, index)

    def _slow_bar(self, time_ms: int, open_: int, high: int, low: int, close: int, interval: int) -> None:
        path = (open_, low, high, close) if close >= open_ else (open_, high, low, close)
        quarter = interval // 4
        previous = -1
        for step, price in enumerate(path):
            if price == previous:
                continue
            previous = price
            at_ms = time_ms + step * quarter if step < 3 else time_ms + interval - 1
            self._move(price, at_ms)

    def _move(self, price: int, at_ms: int) -> None:
        """The market is at ``price``: fill what it traded through, then let the grid decide."""
        instrument = self.instrument
        if self.core.version != self._core_version:
            self._refresh_quiet()
        low_q, high_q = self._quiet
        if price < low_q or price > high_q or self._last_units == 0:
            events = self.core.sweep(instrument.venue, instrument.symbol, self.scale.to_decimal(price), at_ms)
            self._last_units = price
            if events:
                for update in self.venue.absorb(events):
                    self.engine.handle_order_update(update)
        band = self.agent.band
        if band is not self._band:
            self._refresh_band()
        band_low, band_high, band_until = self._band_units
        if band_low < price < band_high and at_ms < band_until:
            return
        decimal_price = self.scale.to_decimal(price)
        if self._last_units != price:
            self.core.set_mark(instrument.venue, instrument.symbol, decimal_price)
            self._last_units = price
        self.engine.handle_price(
            PriceChange(
                venue=instrument.venue, symbol=instrument.symbol, price=decimal_price, exchange_ms=at_ms
            )
        )

    def _refresh_quiet(self) -> tuple[int, int]:
        """The core's quiet range in units (and, as the account changed, a new equity stretch)."""
        instrument = self.instrument
        low, high = self.core.quiet_range(instrument.venue, instrument.symbol)
        self._quiet = (
            0 if low is None else self.scale.ceil_units(low),
            2**62 if high is None else self.scale.floor_units(high),
        )
        self._core_version = self.core.version
        self.state.tracker.rebase(*self.cash_and_position())
        return self._quiet

    def _refresh_band(self) -> tuple[int, int, int]:
        band = self._band = self.agent.band
        if band is None:
            self._band_units = (0, 0, 0)
        else:
            low, high, until = band
            self._band_units = (self.scale.floor_units(low), self.scale.ceil_units(high), until)
        return self._band_units

    def _units_of_last(self) -> int:
        last = self.core.last_price(self.instrument.venue, self.instrument.symbol)
        return 0 if last is None else self.scale.floor_units(last)

    def _verify_quiet(self, close: int, time_ms: int) -> None:
        strategy = self.agent.strategy
        actions = strategy.on_price(
            self.scale.to_decimal(close),
            self.agent.slots,
            now_ms=time_ms,
            trading_state=self.agent.trading_state,
        )
        if actions:
            raise AssertionError(f"skipped candle at {time_ms} would have acted: {actions}")

    def _settle_funding(self, time_ms: int, price: int) -> int:
        """Settle every funding event up to ``time_ms`` at ``price`` (units); return the next time."""
        instrument = self.instrument
        state = self.state
        funding = self.funding
        while state.funding_index < len(funding) and funding[state.funding_index].time_ms <= time_ms:
            event = funding[state.funding_index]
            state.funding_index += 1
            if instrument.market_type is not MarketType.PERPETUAL or self._last_units == 0:
                continue
            settled = self.core.settle_funding(
                instrument.venue, instrument.symbol, event.rate, event.time_ms, self.scale.to_decimal(price)
            )
            payments = [payment for payment in settled if payment.account == ACCOUNT]
            self.ledger.record_funding(payments)
            upcoming = funding[state.funding_index].time_ms if state.funding_index < len(funding) else 0
            self.engine.handle_funding(
                FundingUpdate(
                    FundingRate(
                        symbol=instrument.symbol,
                        rate=event.rate,
                        interval_hours=instrument.funding_interval_hours or 8,
                        next_funding_ms=upcoming,
                        venue=instrument.venue,
                        time_ms=event.time_ms,
                    )
                )
            )
        return funding[state.funding_index].time_ms if state.funding_index < len(funding) else 2**62

    def _candle(self, bar: Bar, interval: int) -> Candle:
        to_decimal = self.scale.to_decimal
        time_ms, open_, high, low, close, volume = bar
        return Candle(
            symbol=self.instrument.symbol,
            interval=interval_name(interval),
            open_ms=time_ms,
            open=to_decimal(open_),
            high=to_decimal(high),
            low=to_decimal(low),
            close=to_decimal(close),
            volume=Decimal(volume).scaleb(-8),
            venue=self.instrument.venue,
        )

    def _check_crash(self, detector: CrashDetector, bar: Bar, interval: int) -> None:
        decision = detector.on_candle(self._candle(bar, interval))
        if decision is None:
            return
        self.engine.set_trading_state(
            TradingState(
                state=decision.trading_state,
                reason=decision.alert.message,
                set_by="backtest-risk",
                updated_ms=bar[0] + interval,
                version=self.engine.trading_state.version + 1,
            )
        )

    # -- ticks ----------------------------------------------------------------------------------

    def _quote(self, time_ms: int, bid: int, ask: int) -> None:
        instrument = self.instrument
        to_decimal = self.scale.to_decimal
        events = self.core.on_quote(
            instrument.venue, instrument.symbol, to_decimal(bid), to_decimal(ask), time_ms
        )
        self._last_units = (bid + ask + 1) // 2
        for update in self.venue.absorb(events):
            self.engine.handle_order_update(update)

    def run_ticks(self, series: TickSeries) -> BacktestResult:
        """Run over trades or quotes (resuming from a checkpoint when there is one).

        A trade moves the price to its price; a quote fills resting BUYs its ask crosses and
        SELLs its bid crosses, and the grid sees the mid rounded to the scale.
        """
        engine = self.engine
        state = self.state
        engine.load_checkpoint()
        self._last_units = self._units_of_last()
        instrument = self.instrument
        venue, symbol = instrument.venue, instrument.symbol
        core = self.core
        to_decimal = self.scale.to_decimal
        index = state.cursor
        countdown = _CHECK_EVERY
        observe = state.tracker.observe
        low_q, high_q = self._refresh_quiet()
        funding = self.funding
        for time_ms, bid, ask in itertools.islice(series.open(), state.cursor, None):
            index += 1
            if state.start_ms < 0:
                state.start_ms = time_ms
            if state.funding_index < len(funding) and time_ms >= funding[state.funding_index].time_ms:
                self._settle_funding(time_ms, bid)
                low_q, high_q = self._refresh_quiet()
            if series.quotes:
                price = (bid + ask + 1) // 2  # the mid, half up
                applied = bid < low_q or ask > high_q or self._last_units == 0
                if applied:
                    self._quote(time_ms, bid, ask)
                if self.agent.band is not self._band:
                    self._refresh_band()
                band_low, band_high, band_until = self._band_units
                if not (band_low < price < band_high and time_ms < band_until):
                    if not applied:  # the grid must see the venue as it is now
                        self._quote(time_ms, bid, ask)
                    quote = PriceChange(
                        venue,
                        symbol,
                        to_decimal(price),
                        to_decimal(bid),
                        to_decimal(ask),
                        exchange_ms=time_ms,
                    )
                    engine.handle_price(quote)
            else:
                price = bid
                self._move(price, time_ms)
            if core.version != self._core_version:
                self._refresh_quiet()
            low_q, high_q = self._quiet
            observe(time_ms, price)
            state.end_ms = time_ms
            countdown -= 1
            if not countdown:
                countdown = _CHECK_EVERY
                state.cursor = index
                engine.touch()
                engine.maybe_checkpoint()
                if self.progress is not None:
                    self.progress(index, series.total)
        state.cursor = index
        engine.touch()
        engine.maybe_checkpoint()
        if self.progress is not None:
            self.progress(index, series.total)
        return self.report("grid", series.name, index)


class ArbitrageBacktest(_Run):
    """The funding-rate arbitrage over matched spot and perpetual candles with funding events.

    At each candle close both legs' prices move (spot first), the agent sees both, and at each
    funding time positions are settled and the agent is told the next period's rate.
    """

    def __init__(
        self,
        config: ArbitrageConfig,
        spot: MarketSetup,
        perp: MarketSetup,
        scale: PriceScale,
        *,
        duration_ms: int,
        funding: Sequence[FundingEvent],
        store: CheckpointStore | None = None,
        clock: Clock | None = None,
        run_id: str = "",
        progress: Progress | None = None,
    ) -> None:
        super().__init__(
            [perp, spot],
            scale,
            max(1, duration_ms // _CURVE_POINTS),
            store=store,
            clock=clock,
            run_id=run_id,
            progress=progress,
        )
        self.spot = spot.instrument
        self.perp = perp.instrument
        self.agent = ArbitrageAgent(config, account=ACCOUNT)
        self.engine = SimpleEngine(
            self.agent, self.venue, store=store, clock=clock, run_id=run_id, extra=self.state
        )
        self.funding = list(funding)

    def run(self, spot: BarSeries, perp: BarSeries) -> BacktestResult:
        """Run over the candles both series share (by open time)."""
        engine = self.engine
        state = self.state
        engine.load_checkpoint()
        core = self.core
        to_decimal = self.scale.to_decimal
        interval = perp.interval_ms
        index = state.cursor
        countdown = _CHECK_EVERY
        for spot_bar, perp_bar in itertools.islice(_aligned(spot.open(), perp.open()), state.cursor, None):
            index += 1
            time_ms = perp_bar[0]
            close_ms = time_ms + interval - 1
            if state.start_ms < 0:
                state.start_ms = time_ms
            self._fund(time_ms)
            for instrument, bar in ((self.spot, spot_bar), (self.perp, perp_bar)):
                price = to_decimal(bar[4])
                events = core.sweep(instrument.venue, instrument.symbol, price, close_ms)
                for update in self.venue.absorb(events):
                    engine.handle_order_update(update)
                engine.handle_price(
                    PriceChange(instrument.venue, instrument.symbol, price, exchange_ms=close_ms)
                )
            position = core.position(ACCOUNT, self.perp.venue, self.perp.symbol)
            if position.size:
                engine.handle_position(PositionUpdate(f"bt-{index}", replace(position, updated_ms=close_ms)))
            state.tracker.rebase(*self.cash_and_position())
            state.tracker.observe(time_ms, perp_bar[4])
            state.end_ms = time_ms + interval
            countdown -= 1
            if not countdown:
                countdown = _CHECK_EVERY
                state.cursor = index
                engine.touch()
                engine.maybe_checkpoint()
                if self.progress is not None:
                    self.progress(index, min(spot.total, perp.total))
        state.cursor = index
        engine.touch()
        engine.maybe_checkpoint()
        if self.progress is not None:
            self.progress(index, min(spot.total, perp.total))
        return self.report("arbitrage", f"{spot.name} + {perp.name}", index)

    def _fund(self, time_ms: int) -> None:
        """Settle funding due by ``time_ms``, then announce the next period's rate."""
        funding = self.funding
        state = self.state
        perp = self.perp
        announce = state.start_ms == time_ms
        while state.funding_index < len(funding) and funding[state.funding_index].time_ms <= time_ms:
            event = funding[state.funding_index]
            state.funding_index += 1
            announce = True
            if self.core.last_price(perp.venue, perp.symbol) is not None:
                payments = self.core.settle_funding(perp.venue, perp.symbol, event.rate, event.time_ms)
                self.ledger.record_funding([p for p in payments if p.account == ACCOUNT])
        if announce and state.funding_index < len(funding):
            upcoming = funding[state.funding_index]
            self.engine.handle_funding(
                FundingUpdate(
                    FundingRate(
                        symbol=perp.symbol,
                        rate=upcoming.rate,
                        interval_hours=perp.funding_interval_hours or 8,
                        next_funding_ms=upcoming.time_ms,
                        venue=perp.venue,
                        time_ms=time_ms,
                    )
                )
            )


def _aligned(spot: Iterator[Bar], perp: Iterator[Bar]) -> Iterator[tuple[Bar, Bar]]:
    """Pairs of candles with the same open time (either side's extra candles are skipped)."""
    spot_bar = next(spot, None)
    perp_bar = next(perp, None)
    while spot_bar is not None and perp_bar is not None:
        if spot_bar[0] == perp_bar[0]:
            yield spot_bar, perp_bar
            spot_bar = next(spot, None)
            perp_bar = next(perp, None)
        elif spot_bar[0] < perp_bar[0]:
            spot_bar = next(spot, None)
        else:
            perp_bar = next(perp, None)
