"""GridAgent on the matching core: the worked example's flow, refusals, and the quiet band."""

from __future__ import annotations

from decimal import Decimal

import pytest

from opensqt.backtest import BacktestOptions, build_run
from opensqt.backtest.ledger import CoreVenue, Ledger
from opensqt.engine.simple import GridAgent, SimpleEngine
from opensqt.exchange import FeeSchedule, MarketRules, MatchingCore
from opensqt.grid import GridConfig, GridMode
from opensqt.model import (
    Instrument,
    MarketType,
    PositionStatus,
    PriceChange,
    Side,
    TradingState,
    TradingStateKind,
)

D = Decimal
INSTRUMENT = Instrument(
    "sim", "ETHUSDT", MarketType.PERPETUAL, "ETH", "USDT", D("0.01"), D("0.001"), D("0.001"), D(6)
)
CONFIG = GridConfig(
    price_interval=D(2),
    order_notional=D(30),
    buy_window=3,
    sell_window=3,
    max_open_orders=10,
    min_order_value=D(6),
)


def make(balance: str = "10000") -> tuple[SimpleEngine, GridAgent, MatchingCore]:
    core = MatchingCore()
    core.add_market(INSTRUMENT, MarketRules(fees=FeeSchedule(D(0), D(0))))
    core.open_account("acct", {"USDT": D(balance)})
    core.set_leverage("acct", "sim", "ETHUSDT", D(1))
    venue = CoreVenue(core, "acct", Ledger(), default_venue="sim")
    agent = GridAgent(CONFIG, INSTRUMENT, account="acct")
    return SimpleEngine(agent, venue), agent, core


def move(engine: SimpleEngine, core: MatchingCore, value: str, time_ms: int) -> None:
    venue = engine.venue
    assert isinstance(venue, CoreVenue)
    for update in venue.absorb(core.sweep("sim", "ETHUSDT", D(value), time_ms)):
        engine.handle_order_update(update)
    engine.handle_price(PriceChange("sim", "ETHUSDT", D(value), exchange_ms=time_ms))


def test_worked_example_runs_through_the_engine_and_the_core() -> None:
    engine, agent, core = make()
    move(engine, core, "3000.00", 1)
    assert sorted(o.price for o in core.open_orders("acct")) == [D("2996.00"), D("2998.00")]
    move(engine, core, "2997.50", 2)  # trades through 2998: filled, then its close and BUY 2994
    assert agent.slots[D("2998.00")].position_status is PositionStatus.FILLED
    sells = [o for o in core.open_orders("acct") if o.side is Side.SELL]
    assert [(o.price, o.quantity, o.reduce_only) for o in sells] == [(D("3000.00"), D("0.010"), True)]
    assert D("2994.00") in {o.price for o in core.open_orders("acct")}
    move(engine, core, "3000.10", 3)  # the close fills; 2998 is bought again in the next cycle
    slot = agent.slots[D("2998.00")]
    assert slot.position_qty == 0
    assert slot.client_order_id.endswith("-B-2")
    assert core.account("acct").balance("USDT") == D("10000.02")


def test_margin_refusal_stops_the_batch_and_locks_the_grid() -> None:
    engine, agent, core = make(balance="35")  # room for one 30 USDT order at 1x
    move(engine, core, "3000.00", 1)
    assert len(core.open_orders("acct")) == 1
    assert agent.refusals == 1
    assert agent.strategy.margin_locked_until_ms == 1 + CONFIG.margin_lock_ms


def test_quiet_band_contains_the_price_it_was_computed_at() -> None:
    engine, agent, core = make()
    move(engine, core, "3000.00", 1)
    move(engine, core, "3000.00", 2)
    assert agent.band is not None
    low, high, _ = agent.band
    assert low < D("3000.00") < high


@pytest.mark.parametrize(
    "options",
    [
        BacktestOptions(bars=6000, seed=1),
        BacktestOptions(bars=6000, seed=2, volatility=3.0, crash_weight=0.5),
        BacktestOptions(bars=4000, seed=3, mode=GridMode.NEUTRAL),
        BacktestOptions(bars=6000, seed=4, crash_guard=True, max_open_orders=6),
        BacktestOptions(bars=1500, seed=5, balance=D(400), leverage=D(1)),
    ],
    ids=["calm", "wild", "neutral", "crash-guard", "margin-starved"],
)
def test_every_candle_the_fast_path_skips_would_have_given_no_action(options: BacktestOptions) -> None:
    verified = build_run(options, verify_fast_path=True).execute()
    assert verified == build_run(options).execute()


def test_reducing_cancels_the_working_buys_at_the_next_price() -> None:
    engine, agent, core = make()
    move(engine, core, "3000.00", 1)
    assert {o.side for o in core.open_orders("acct")} == {Side.BUY}
    engine.set_trading_state(TradingState(TradingStateKind.REDUCING, reason="crash", version=1))
    assert agent.band is None
    move(engine, core, "3000.00", 2)
    assert core.open_orders("acct") == []
    assert all(slot.order_side is None for slot in agent.slots.values())
