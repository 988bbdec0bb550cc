"""StrategyServicer over agents that run and agents whose start failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from opensqt.engine.service import AgentFigures, AgentRegistry, StrategyServicer
from opensqt.errors import NotStarted
from opensqt.model import InventorySlot, Leg
from opensqt.model.enums import MarketType, TradingStateKind
from opensqt.model.events import TradingState
from opensqt.transport.bus import EventContext
from opensqt.v1 import strategy_pb2

D = Decimal


@dataclass
class Agent:
    """An agent handle with fixed state (the servicer's side of the protocol)."""

    name: str
    kind: str
    symbols: tuple[str, ...]
    start_error: str = ""
    paused: bool = False
    pause_reason: str = ""
    reducing_reason: str = ""
    held_legs: list[Leg] = field(default_factory=list)
    held_slots: list[InventorySlot] = field(default_factory=list)
    state_changes: int = 0

    async def slots(self, symbol: str = "") -> list[InventorySlot]:
        return list(self.held_slots)

    async def legs(self) -> list[Leg]:
        return list(self.held_legs)

    def pause(self, reason: str) -> None:
        self.paused, self.pause_reason = True, reason

    def resume(self) -> None:
        self.paused, self.pause_reason = False, ""

    def trading_state_changed(self) -> None:
        self.state_changes += 1

    def figures(self) -> AgentFigures:
        return AgentFigures()


def leg(agent: str, size: str) -> Leg:
    return Leg(agent=agent, venue="paper", symbol="BTCUSDT", market_type=MarketType.PERPETUAL, size=D(size))


def servicer(*agents: Agent) -> StrategyServicer:
    registry = AgentRegistry()
    for agent in agents:
        registry.add(agent)
    return StrategyServicer(registry)


async def test_slots_of_an_agent_that_did_not_start_are_refused_not_empty() -> None:
    broken = Agent("mm0", "market_maker", ("ETHUSDT",), start_error="start failed (SlotDecodeError: x)")
    with pytest.raises(NotStarted, match=r"agent 'mm0': start failed \(SlotDecodeError"):
        await servicer(broken).ListSlots(strategy_pb2.ListSlotsRequest(agent="mm0"), None)


async def test_legs_of_every_bot_leave_out_a_bot_that_did_not_start() -> None:
    running = Agent("arb1", "arbitrage_bot", ("BTCUSDT",), held_legs=[leg("arb1", "-0.01")])
    broken = Agent(
        "arb0", "arbitrage_bot", ("ETHUSDT",), start_error="start failed (x)", held_legs=[leg("arb0", "1")]
    )
    service = servicer(broken, running)
    reply = await service.ListLegs(strategy_pb2.ListLegsRequest(), None)
    assert [(item.agent, D(item.size)) for item in reply.legs] == [("arb1", D("-0.01"))]
    assert not reply.delta_neutral  # and could not be told with arb0's legs unknown
    hedged = Agent("arb2", "arbitrage_bot", ("ETHUSDT",), held_legs=[leg("arb2", "1"), leg("arb2", "-1")])
    assert (await servicer(hedged).ListLegs(strategy_pb2.ListLegsRequest(), None)).delta_neutral
    with pytest.raises(NotStarted, match="agent 'arb0': start failed"):
        await service.ListLegs(strategy_pb2.ListLegsRequest(agent="arb0"), None)


async def test_a_change_of_trading_state_reaches_every_running_agent_once() -> None:
    grid = Agent("mm1", "market_maker", ("BTCUSDT",))
    bot = Agent("arb1", "arbitrage_bot", ("BTCUSDT",))
    broken = Agent("mm0", "market_maker", ("ETHUSDT",), start_error="start failed (x)")
    registry = AgentRegistry()
    for agent in (grid, bot, broken):
        registry.add(agent)

    def state(kind: TradingStateKind, version: int) -> TradingState:
        return TradingState(state=kind, reason="test", version=version)

    await registry.on_trading_state(
        state(TradingStateKind.REDUCING, 1), EventContext("risk.trading_state", "")
    )
    assert (grid.state_changes, bot.state_changes, broken.state_changes) == (1, 1, 0)
    # the same state again (a newer version), and an older version: nothing to act on
    await registry.on_trading_state(
        state(TradingStateKind.REDUCING, 2), EventContext("risk.trading_state", "")
    )
    await registry.on_trading_state(state(TradingStateKind.ACTIVE, 1), EventContext("risk.trading_state", ""))
    assert (grid.state_changes, bot.state_changes) == (1, 1)
    assert registry.current_kind() is TradingStateKind.REDUCING
    await registry.on_trading_state(state(TradingStateKind.ACTIVE, 3), EventContext("risk.trading_state", ""))
    assert (grid.state_changes, bot.state_changes, broken.state_changes) == (2, 2, 0)
