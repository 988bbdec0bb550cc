"""The interval a grid agent starts on (services/strategy ``grid_start_config``): ATR-widened when
no slot is in use, kept while slots are, stored for the next start."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from opensqt.errors import ExchangeUnavailable, NotStarted
from opensqt.grid.manager import InMemorySlotStore
from opensqt.grid.slots import new_slot
from opensqt.model import Candle
from opensqt_services.strategy import main
from opensqt_services.strategy.settings import MarketMakerSettings
from tests.unit.grid import ETH

D = Decimal
MM = MarketMakerSettings(
    name="mm1", symbol="ETHUSDT", price_interval=D("2"), order_notional=D("30"), volatility_scale=D("0.5"),
    atr_period=2,
)  # fmt: skip


def candle(minute: int, high: str, low: str, close: str) -> Candle:
    return Candle(
        symbol="ETHUSDT", interval="1m", open_ms=minute * 60_000, open=D(close), high=D(high),
        low=D(low), close=D(close), volume=D(1), closed=True,
    )  # fmt: skip


# true ranges 12 and 16 (the second from the previous close 3007; its own range is 10):
# ATR 14, x 0.5 = 7
HISTORY = [
    candle(0, "3000", "2990", "2995"),
    candle(1, "3007", "2995", "3007"),
    candle(2, "3001", "2991", "2992"),
]


class Monitor:
    """The monitor's candle history; fails ``failures`` times first, as a monitor still starting."""

    def __init__(self, candles: list[Candle], failures: int = 0) -> None:
        self.history = candles
        self.failures = failures
        self.asked: list[tuple[str, str, int]] = []

    async def candles(self, symbol: str, interval: str, limit: int) -> list[Candle]:
        self.asked.append((symbol, interval, limit))
        if self.failures:
            self.failures -= 1
            raise ExchangeUnavailable("monitor not serving yet")
        return self.history[-limit:]


async def test_a_grid_with_no_slot_in_use_starts_widened_and_stores_the_interval() -> None:
    store = InMemorySlotStore("mm1", "ETHUSDT")
    monitor = Monitor(HISTORY)
    config = await main.grid_start_config(MM, ETH, store, monitor)
    assert config.price_interval == D("7.00")
    assert await store.get_interval() == D("7.00")
    assert monitor.asked == [("ETHUSDT", "1m", 3)]


async def test_a_restart_with_slots_in_use_keeps_their_interval_and_asks_for_no_candles() -> None:
    store = InMemorySlotStore("mm1", "ETHUSDT")
    await store.set_interval(D("4.1"))
    held = replace(new_slot("mm1", "ETHUSDT", D("2995.9")), position_qty=D("0.01"), version=1)
    assert (await store.compare_and_set(held, 0)).written
    monitor = Monitor(HISTORY)
    config = await main.grid_start_config(MM, ETH, store, monitor)
    assert config.price_interval == D("4.1")
    assert monitor.asked == []
    # turning the widening off does not move the levels of slots in use either
    unwidened = await main.grid_start_config(
        MM.model_copy(update={"volatility_scale": D(0)}), ETH, store, None
    )
    assert unwidened.price_interval == D("4.1")


async def test_too_little_history_starts_on_the_configured_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    store = InMemorySlotStore("mm1", "ETHUSDT")
    await store.set_interval(D("9"))  # from an earlier run whose slots are all done
    config = await main.grid_start_config(MM, ETH, store, Monitor(HISTORY[:2]))
    assert config.price_interval == D("2")
    assert await store.get_interval() == D("2")


async def test_a_monitor_not_answering_yet_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(main.asyncio, "sleep", no_wait)
    monitor = Monitor(HISTORY, failures=2)
    config = await main.grid_start_config(MM, ETH, InMemorySlotStore("mm1", "ETHUSDT"), monitor)
    assert config.price_interval == D("7.00")
    assert len(monitor.asked) == 3
    assert waits == [0.2, 0.4]


async def test_a_monitor_that_refuses_is_not_asked_again_and_the_grid_starts_unwidened() -> None:
    monitor = Monitor(HISTORY)

    async def refuse(symbol: str, interval: str, limit: int) -> list[Candle]:
        monitor.asked.append((symbol, interval, limit))
        raise NotStarted("this monitor watches no symbol (OPENSQT_SYMBOLS), so it has no venue client")

    monitor.candles = refuse  # type: ignore[method-assign]
    config = await main.grid_start_config(MM, ETH, InMemorySlotStore("mm1", "ETHUSDT"), monitor)
    assert config.price_interval == D("2")
    assert len(monitor.asked) == 1


async def test_a_monitor_silent_for_the_whole_wait_lets_the_grid_start_unwidened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_wait(seconds: float) -> None:
        return None

    monkeypatch.setattr(main.asyncio, "sleep", no_wait)
    monitor = Monitor(HISTORY, failures=10_000)
    config = await main.grid_start_config(MM, ETH, InMemorySlotStore("mm1", "ETHUSDT"), monitor)
    assert config.price_interval == D("2")
    waited = 0.2 * (2**5 - 1) + 5.0 * (len(monitor.asked) - 1 - 5)  # 0.2, 0.4, ... 3.2, then 5 s each
    assert main.CANDLES_WAIT_S <= waited < main.CANDLES_WAIT_S + 5.0


async def test_orders_or_a_position_at_the_venue_keep_the_stored_interval_when_redis_lost_the_slots() -> None:
    # the slots are gone from Redis, but the venue holds the grid's orders: the start rebuilds
    # slots from them on the stored interval, so it must not widen anew
    store = InMemorySlotStore("mm1", "ETHUSDT")
    await store.set_interval(D("4.1"))
    monitor = Monitor(HISTORY)
    asked: list[bool] = []

    async def holds() -> bool:
        asked.append(True)
        return True

    config = await main.grid_start_config(MM, ETH, store, monitor, holds)
    assert config.price_interval == D("4.1")
    assert monitor.asked == []

    async def holds_nothing() -> bool:
        return False

    config = await main.grid_start_config(MM, ETH, store, monitor, holds_nothing)
    assert config.price_interval == D("7.00")  # nothing anywhere: widened anew
    # orders from before any interval was stored were laid on the configured one
    fresh = InMemorySlotStore("mm1", "ETHUSDT")
    config = await main.grid_start_config(MM, ETH, fresh, Monitor(HISTORY), holds)
    assert config.price_interval == D("2")
    # without a stored interval or a widening, the venue cannot change the answer: not asked
    asked.clear()
    unwidened = MM.model_copy(update={"volatility_scale": D(0)})
    await main.grid_start_config(unwidened, ETH, InMemorySlotStore("mm1", "ETHUSDT"), None, holds)
    assert asked == []
