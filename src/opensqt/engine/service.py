"""The strategy service's gRPC API over the agents it runs.

Agents register an :class:`AgentHandle`; the service answers status, slot and leg queries and
pauses or resumes agents. With no agent configured every query answers honestly (no agents,
NOT_FOUND for a named one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import grpc

from opensqt.errors import InvalidArgument, NotFound, NotStarted
from opensqt.model import InventorySlot, Leg, TradingState, TradingStateKind
from opensqt.telemetry import get_logger
from opensqt.transport import codec
from opensqt.transport.bus import EventContext
from opensqt.v1 import strategy_pb2, strategy_pb2_grpc

__all__ = ["AgentFigures", "AgentHandle", "AgentRegistry", "StrategyServicer"]

log = get_logger(__name__)


class AgentHandle(Protocol):
    """What the service needs of a running agent."""

    name: str
    kind: str  # "market_maker" or "arbitrage_bot"
    symbols: tuple[str, ...]
    paused: bool
    pause_reason: str
    reducing_reason: str
    start_error: str  # set when its start failed: it is neither subscribed nor running

    async def slots(self, symbol: str = "") -> list[InventorySlot]: ...

    async def legs(self) -> list[Leg]: ...

    def pause(self, reason: str) -> None: ...

    def resume(self) -> None: ...

    def trading_state_changed(self) -> None:
        """The trading state moved: act on it now, not at the next market event (a quiet
        market, or a stale feed, would leave REDUCING's cancels waiting)."""

    def figures(self) -> AgentFigures: ...


@dataclass(frozen=True, slots=True)
class AgentFigures:
    """What GetStatus reports of an agent besides its names and pause state.

    ``exposure`` is the net signed position in the quote asset at the latest price the agent
    has seen (``None`` before the first price).
    """

    working_orders: int = 0
    exposure: Decimal | None = None
    last_event_ms: int = 0


_KINDS = {
    "market_maker": strategy_pb2.AGENT_KIND_MARKET_MAKER,
    "arbitrage_bot": strategy_pb2.AGENT_KIND_ARBITRAGE_BOT,
}


@dataclass(slots=True)
class AgentRegistry:
    """The agents of this strategy service and the trading state it follows."""

    agents: dict[str, AgentHandle] = field(default_factory=dict)
    trading_state: TradingState = field(
        default_factory=lambda: TradingState(state=TradingStateKind.ACTIVE, reason="initial")
    )

    def add(self, agent: AgentHandle) -> None:
        if agent.name in self.agents:
            raise ValueError(f"agent {agent.name!r} is configured twice")
        self.agents[agent.name] = agent

    def select(self, name: str) -> list[AgentHandle]:
        """One agent by name, or all of them for an empty name."""
        if not name:
            return list(self.agents.values())
        agent = self.agents.get(name)
        if agent is None:
            known = ", ".join(sorted(self.agents)) or "none"
            raise NotFound(f"no agent {name!r} (configured agents: {known})")
        return [agent]

    def current_kind(self) -> TradingStateKind:
        """The trading state the agents obey."""
        return self.trading_state.state

    async def on_trading_state(self, state: TradingState, ctx: EventContext) -> None:
        if state.version > self.trading_state.version:
            changed = state.state is not self.trading_state.state
            self.trading_state = state
            log.info("trading_state_followed", state=state.state.value, version=state.version)
            if changed:
                for agent in self.agents.values():
                    if agent.start_error:
                        continue
                    try:
                        agent.trading_state_changed()
                    except Exception:  # the others must still hear of it
                        log.exception("trading_state_not_taken", agent=agent.name)


def _status(agent: AgentHandle) -> strategy_pb2.AgentStatus:
    figures = agent.figures()
    return strategy_pb2.AgentStatus(
        working_orders=figures.working_orders,
        exposure=codec.decimal_to_wire(figures.exposure) if figures.exposure is not None else "",
        last_event_ms=figures.last_event_ms,
        agent=agent.name,
        kind=_KINDS.get(agent.kind, strategy_pb2.AGENT_KIND_UNSPECIFIED),
        symbols=list(agent.symbols),
        paused=agent.paused,
        pause_reason=agent.pause_reason,
        reducing_reason=agent.reducing_reason,
    )


def _started(agent: AgentHandle) -> None:
    """An agent whose start failed has no state to show (its slots or legs were never loaded)."""
    if agent.start_error:
        raise NotStarted(f"agent {agent.name!r}: {agent.start_error}")


class StrategyServicer(strategy_pb2_grpc.StrategyServiceServicer):
    """Serves StrategyService from an :class:`AgentRegistry`."""

    def __init__(self, registry: AgentRegistry) -> None:
        self._registry = registry

    async def GetStatus(
        self, request: strategy_pb2.GetStrategyStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> strategy_pb2.GetStrategyStatusResponse:
        return strategy_pb2.GetStrategyStatusResponse(
            agents=[_status(a) for a in self._registry.agents.values()],
            trading_state=codec.trading_state_to_proto(self._registry.trading_state),
        )

    async def ListSlots(
        self, request: strategy_pb2.ListSlotsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> strategy_pb2.ListSlotsResponse:
        if not request.agent:
            raise InvalidArgument("agent", "is required (a market_maker agent name)")
        (agent,) = self._registry.select(request.agent)
        if agent.kind != "market_maker":
            raise InvalidArgument("agent", f"{request.agent!r} is a {agent.kind}, which has no grid slots")
        if request.symbol and request.symbol not in agent.symbols:
            raise NotFound(f"agent {agent.name!r} does not trade {request.symbol!r}")
        _started(agent)
        slots = await agent.slots(request.symbol)
        return strategy_pb2.ListSlotsResponse(slots=[codec.inventory_slot_to_proto(s) for s in slots])

    async def ListLegs(
        self, request: strategy_pb2.ListLegsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> strategy_pb2.ListLegsResponse:
        agents = [a for a in self._registry.select(request.agent) if a.kind == "arbitrage_bot"]
        if request.agent and not agents:
            raise InvalidArgument("agent", f"{request.agent!r} is not an arbitrage_bot")
        if request.agent:
            _started(agents[0])
        # every bot: those that run (a failed start may have loaded some legs and not others);
        # with one that did not start, delta neutrality cannot be told
        running = [a for a in agents if not a.start_error]
        legs: list[Leg] = []
        for agent in running:
            legs.extend(await agent.legs())
        return strategy_pb2.ListLegsResponse(
            legs=[codec.leg_to_proto(leg) for leg in legs],
            delta_neutral=len(running) == len(agents) and sum(leg.size for leg in legs) == 0,
        )

    async def Pause(
        self, request: strategy_pb2.PauseRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> strategy_pb2.PauseResponse:
        agents = self._registry.select(request.agent)
        for agent in agents:
            agent.pause(request.reason or "paused by operator")
        return strategy_pb2.PauseResponse(agents=[_status(a) for a in agents])

    async def Resume(
        self, request: strategy_pb2.ResumeStrategyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> strategy_pb2.ResumeStrategyResponse:
        agents = self._registry.select(request.agent)
        for agent in agents:
            agent.resume()
        return strategy_pb2.ResumeStrategyResponse(agents=[_status(a) for a in agents])
