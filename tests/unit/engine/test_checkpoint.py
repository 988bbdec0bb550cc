"""SimpleEngine checkpoints: one checksummed snapshot, refused when corrupted, rate-limited saves."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from opensqt.backtest import BacktestOptions, build_run
from opensqt.clock import TestClock
from opensqt.engine.base import Engine
from opensqt.engine.checkpoint import CheckpointCorrupted, CheckpointError, CheckpointStore
from opensqt.engine.simple import GridAgent, SimpleEngine
from opensqt.grid import GridConfig
from opensqt.model import Instrument, MarketType, PriceChange, TradingState, TradingStateKind
from opensqt.model.events import OrderUpdate
from opensqt.model.resources import Order

D = Decimal
INSTRUMENT = Instrument("sim", "BTCUSDT", MarketType.PERPETUAL, "BTC", "USDT", D("0.1"), D("0.001"))
CONFIG = GridConfig(
    price_interval=D(10), order_notional=D(300), buy_window=3, sell_window=3, max_open_orders=6
)


class AcceptingVenue:
    """Acknowledges every order; never fills."""

    def __init__(self) -> None:
        self.placed: list[Order] = []

    def place(self, order: Order, now_ms: int) -> list[OrderUpdate]:
        self.placed.append(order)
        number = len(self.placed)
        return [OrderUpdate(f"ack-{number}", replace(order, exchange_order_id=str(number)))]

    def cancel(self, symbol: str, client_order_id: str, now_ms: int) -> list[OrderUpdate]:
        return []


class FailingStore(CheckpointStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.fail = True
        self.saved: list[dict[str, Any]] = []

    def save(self, state: dict[str, Any]) -> None:
        if self.fail:
            raise CheckpointError("disk full (simulated)")
        self.saved.append(state)


def make_engine(store: CheckpointStore | None, clock: TestClock | None = None) -> SimpleEngine:
    return SimpleEngine(
        GridAgent(CONFIG, INSTRUMENT), AcceptingVenue(), store=store, clock=clock or TestClock()
    )


def price(value: str, time_ms: int) -> PriceChange:
    return PriceChange("sim", "BTCUSDT", D(value), exchange_ms=time_ms)


def test_store_round_trips_a_snapshot(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "cp.sqlite")
    assert store.load() is None
    store.save({"a": [1, "2"]})
    store.save({"b": 3})
    assert store.load() == {"b": 3}


def test_corrupted_snapshot_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cp.sqlite"
    CheckpointStore(path).save({"cursor": 10})
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE checkpoint SET payload = ?", (b'{"cursor":11}',))
    with pytest.raises(CheckpointCorrupted, match=r"corrupted: checksum .* refusing to load"):
        CheckpointStore(path).load()


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cp.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CheckpointCorrupted, match="not a readable checkpoint"):
        CheckpointStore(path).load()


def test_engine_refuses_to_load_a_corrupted_checkpoint_and_keeps_its_state(tmp_path: Path) -> None:
    path = tmp_path / "cp.sqlite"
    engine = make_engine(CheckpointStore(path))
    engine.handle_price(price("30000", 1))
    engine.checkpoint()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE checkpoint SET sha256 = 'x'")
    fresh = make_engine(CheckpointStore(path))
    before = fresh.snapshot()
    with pytest.raises(CheckpointCorrupted):
        fresh.load_checkpoint()
    assert fresh.snapshot() == before


def test_failed_save_leaves_memory_unchanged_and_is_retried(tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "cp.sqlite")
    engine = make_engine(store)
    engine.handle_price(price("30000", 1))
    before = engine.snapshot()
    assert engine.maybe_checkpoint() is False
    assert engine.failed_saves == 1
    assert engine.snapshot() == before
    with pytest.raises(CheckpointError):
        engine.checkpoint()
    assert engine.snapshot() == before
    store.fail = False
    assert engine.maybe_checkpoint() is True
    assert store.saved == [before]


def test_saves_are_rate_limited_to_one_per_500_ms(tmp_path: Path) -> None:
    clock = TestClock(1_000_000)
    store = FailingStore(tmp_path / "cp.sqlite")
    store.fail = False
    engine = make_engine(store, clock)
    engine.handle_price(price("30000", 1))
    assert engine.maybe_checkpoint()
    engine.handle_price(price("29990", 2))
    clock.advance(499)
    assert not engine.maybe_checkpoint()
    clock.advance(1)
    assert engine.maybe_checkpoint()
    assert len(store.saved) == 2
    assert not engine.maybe_checkpoint()  # nothing changed since


def test_a_risk_action_is_saved_at_once_despite_the_rate_limit(tmp_path: Path) -> None:
    clock = TestClock(1_000_000)
    store = FailingStore(tmp_path / "cp.sqlite")
    store.fail = False
    engine = make_engine(store, clock)
    engine.handle_price(price("30000", 1))
    engine.checkpoint()
    engine.set_trading_state(TradingState(TradingStateKind.HALTED, reason="crash", version=1))
    assert len(store.saved) == 2
    assert store.saved[-1]["trading_state"]["state"] == "HALTED"


def test_checkpoint_of_another_run_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cp.sqlite"
    engine = SimpleEngine(
        GridAgent(CONFIG, INSTRUMENT), AcceptingVenue(), store=CheckpointStore(path), run_id="a"
    )
    engine.handle_price(price("30000", 1))
    engine.checkpoint()
    other = SimpleEngine(
        GridAgent(CONFIG, INSTRUMENT), AcceptingVenue(), store=CheckpointStore(path), run_id="b"
    )
    with pytest.raises(CheckpointError, match="not of this run"):
        other.load_checkpoint()

    # the same run under an id its options had before: resumed, and saved under the new id
    renamed = SimpleEngine(
        GridAgent(CONFIG, INSTRUMENT), AcceptingVenue(), store=CheckpointStore(path), run_id="b"
    )
    renamed.earlier_run_ids = frozenset({"a"})
    assert renamed.load_checkpoint()
    assert renamed.snapshot() == {**engine.snapshot(), "run_id": "b"}


def test_restored_engine_has_the_same_slots_and_anchor(tmp_path: Path) -> None:
    path = tmp_path / "cp.sqlite"
    engine = make_engine(CheckpointStore(path))
    engine.handle_price(price("30000", 1))
    engine.checkpoint()
    restored = make_engine(CheckpointStore(path))
    assert restored.load_checkpoint()
    assert restored.snapshot() == engine.snapshot()
    assert isinstance(restored.agent, GridAgent)
    assert restored.agent.strategy.anchor == D("30000.0")


def test_simple_engine_serves_the_async_engine_protocol(tmp_path: Path) -> None:
    engine: Engine = make_engine(CheckpointStore(tmp_path / "cp.sqlite"))

    async def drive() -> None:
        await engine.start()
        await engine.on_price_update(price("30000", 1))
        await engine.stop()

    asyncio.run(drive())
    assert CheckpointStore(tmp_path / "cp.sqlite").load() is not None


class SteppingClock(TestClock):
    """Wall time that moves a second per look, so every rate-limited save goes through."""

    def monotonic(self) -> float:
        self.advance(1000)
        return super().monotonic()


class Interrupted(Exception):
    pass


def test_restart_from_a_checkpoint_gives_the_same_result_as_an_uninterrupted_run(tmp_path: Path) -> None:
    options = BacktestOptions(bars=12_000, seed=21)
    expected = build_run(options).execute()

    store = CheckpointStore(tmp_path / "run.sqlite")

    def crash_after_8192(done: int, total: int) -> None:
        if done >= 8192 and done < total:
            raise Interrupted

    first = build_run(options, store=store, progress=crash_after_8192)
    first.backtest.engine.clock = SteppingClock()
    with pytest.raises(Interrupted):
        first.execute()
    saved = store.load()
    assert saved is not None
    assert 0 < saved["extra"]["cursor"] < 12_000

    resumed = build_run(options, store=store)
    resumed.backtest.engine.clock = SteppingClock()
    result = resumed.execute()
    assert result == expected
