from opensqt.v1 import events_pb2 as _events_pb2
from opensqt.v1 import state_pb2 as _state_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_KIND_UNSPECIFIED: _ClassVar[AgentKind]
    AGENT_KIND_MARKET_MAKER: _ClassVar[AgentKind]
    AGENT_KIND_ARBITRAGE_BOT: _ClassVar[AgentKind]
AGENT_KIND_UNSPECIFIED: AgentKind
AGENT_KIND_MARKET_MAKER: AgentKind
AGENT_KIND_ARBITRAGE_BOT: AgentKind

class AgentStatus(_message.Message):
    __slots__ = ("agent", "kind", "symbols", "paused", "pause_reason", "working_orders", "exposure", "realized_pnl", "last_event_ms", "reducing_reason")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    PAUSE_REASON_FIELD_NUMBER: _ClassVar[int]
    WORKING_ORDERS_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_MS_FIELD_NUMBER: _ClassVar[int]
    REDUCING_REASON_FIELD_NUMBER: _ClassVar[int]
    agent: str
    kind: AgentKind
    symbols: _containers.RepeatedScalarFieldContainer[str]
    paused: bool
    pause_reason: str
    working_orders: int
    exposure: str
    realized_pnl: str
    last_event_ms: int
    reducing_reason: str
    def __init__(self, agent: _Optional[str] = ..., kind: _Optional[_Union[AgentKind, str]] = ..., symbols: _Optional[_Iterable[str]] = ..., paused: _Optional[bool] = ..., pause_reason: _Optional[str] = ..., working_orders: _Optional[int] = ..., exposure: _Optional[str] = ..., realized_pnl: _Optional[str] = ..., last_event_ms: _Optional[int] = ..., reducing_reason: _Optional[str] = ...) -> None: ...

class GetStrategyStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStrategyStatusResponse(_message.Message):
    __slots__ = ("agents", "trading_state")
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentStatus]
    trading_state: _events_pb2.TradingState
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentStatus, _Mapping]]] = ..., trading_state: _Optional[_Union[_events_pb2.TradingState, _Mapping]] = ...) -> None: ...

class ListSlotsRequest(_message.Message):
    __slots__ = ("agent", "symbol")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    agent: str
    symbol: str
    def __init__(self, agent: _Optional[str] = ..., symbol: _Optional[str] = ...) -> None: ...

class ListSlotsResponse(_message.Message):
    __slots__ = ("slots",)
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    slots: _containers.RepeatedCompositeFieldContainer[_state_pb2.InventorySlot]
    def __init__(self, slots: _Optional[_Iterable[_Union[_state_pb2.InventorySlot, _Mapping]]] = ...) -> None: ...

class ListLegsRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: str
    def __init__(self, agent: _Optional[str] = ...) -> None: ...

class ListLegsResponse(_message.Message):
    __slots__ = ("legs", "delta_neutral")
    LEGS_FIELD_NUMBER: _ClassVar[int]
    DELTA_NEUTRAL_FIELD_NUMBER: _ClassVar[int]
    legs: _containers.RepeatedCompositeFieldContainer[_state_pb2.Leg]
    delta_neutral: bool
    def __init__(self, legs: _Optional[_Iterable[_Union[_state_pb2.Leg, _Mapping]]] = ..., delta_neutral: _Optional[bool] = ...) -> None: ...

class PauseRequest(_message.Message):
    __slots__ = ("agent", "reason")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    agent: str
    reason: str
    def __init__(self, agent: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PauseResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentStatus]
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentStatus, _Mapping]]] = ...) -> None: ...

class ResumeStrategyRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: str
    def __init__(self, agent: _Optional[str] = ...) -> None: ...

class ResumeStrategyResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentStatus]
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentStatus, _Mapping]]] = ...) -> None: ...
