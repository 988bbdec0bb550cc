from opensqt.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TradingStateKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRADING_STATE_KIND_UNSPECIFIED: _ClassVar[TradingStateKind]
    TRADING_STATE_KIND_ACTIVE: _ClassVar[TradingStateKind]
    TRADING_STATE_KIND_REDUCING: _ClassVar[TradingStateKind]
    TRADING_STATE_KIND_HALTED: _ClassVar[TradingStateKind]

class AlertSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_SEVERITY_UNSPECIFIED: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_INFO: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_WARNING: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_CRITICAL: _ClassVar[AlertSeverity]

class AlertKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_KIND_UNSPECIFIED: _ClassVar[AlertKind]
    ALERT_KIND_CRASH: _ClassVar[AlertKind]
    ALERT_KIND_RECOVERY: _ClassVar[AlertKind]
    ALERT_KIND_LIQUIDATION: _ClassVar[AlertKind]
    ALERT_KIND_POSITION_DRIFT: _ClassVar[AlertKind]
    ALERT_KIND_OPERATOR: _ClassVar[AlertKind]
    ALERT_KIND_FEED_STALE: _ClassVar[AlertKind]
    ALERT_KIND_AGENT_REDUCING: _ClassVar[AlertKind]
TRADING_STATE_KIND_UNSPECIFIED: TradingStateKind
TRADING_STATE_KIND_ACTIVE: TradingStateKind
TRADING_STATE_KIND_REDUCING: TradingStateKind
TRADING_STATE_KIND_HALTED: TradingStateKind
ALERT_SEVERITY_UNSPECIFIED: AlertSeverity
ALERT_SEVERITY_INFO: AlertSeverity
ALERT_SEVERITY_WARNING: AlertSeverity
ALERT_SEVERITY_CRITICAL: AlertSeverity
ALERT_KIND_UNSPECIFIED: AlertKind
ALERT_KIND_CRASH: AlertKind
ALERT_KIND_RECOVERY: AlertKind
ALERT_KIND_LIQUIDATION: AlertKind
ALERT_KIND_POSITION_DRIFT: AlertKind
ALERT_KIND_OPERATOR: AlertKind
ALERT_KIND_FEED_STALE: AlertKind
ALERT_KIND_AGENT_REDUCING: AlertKind

class PriceChange(_message.Message):
    __slots__ = ("venue", "symbol", "price", "bid", "ask", "exchange_ms", "received_ms", "sequence")
    VENUE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_FIELD_NUMBER: _ClassVar[int]
    ASK_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_MS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_MS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    venue: str
    symbol: str
    price: str
    bid: str
    ask: str
    exchange_ms: int
    received_ms: int
    sequence: int
    def __init__(self, venue: _Optional[str] = ..., symbol: _Optional[str] = ..., price: _Optional[str] = ..., bid: _Optional[str] = ..., ask: _Optional[str] = ..., exchange_ms: _Optional[int] = ..., received_ms: _Optional[int] = ..., sequence: _Optional[int] = ...) -> None: ...

class OrderUpdate(_message.Message):
    __slots__ = ("event_id", "order", "last_fill_price", "last_fill_quantity", "reason", "source")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    LAST_FILL_PRICE_FIELD_NUMBER: _ClassVar[int]
    LAST_FILL_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    order: _resources_pb2.Order
    last_fill_price: str
    last_fill_quantity: str
    reason: str
    source: str
    def __init__(self, event_id: _Optional[str] = ..., order: _Optional[_Union[_resources_pb2.Order, _Mapping]] = ..., last_fill_price: _Optional[str] = ..., last_fill_quantity: _Optional[str] = ..., reason: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class FundingUpdate(_message.Message):
    __slots__ = ("funding",)
    FUNDING_FIELD_NUMBER: _ClassVar[int]
    funding: _resources_pb2.FundingRate
    def __init__(self, funding: _Optional[_Union[_resources_pb2.FundingRate, _Mapping]] = ...) -> None: ...

class PositionUpdate(_message.Message):
    __slots__ = ("event_id", "position")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    position: _resources_pb2.Position
    def __init__(self, event_id: _Optional[str] = ..., position: _Optional[_Union[_resources_pb2.Position, _Mapping]] = ...) -> None: ...

class TradingState(_message.Message):
    __slots__ = ("state", "reason", "set_by", "updated_ms", "version")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SET_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_MS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    state: TradingStateKind
    reason: str
    set_by: str
    updated_ms: int
    version: int
    def __init__(self, state: _Optional[_Union[TradingStateKind, str]] = ..., reason: _Optional[str] = ..., set_by: _Optional[str] = ..., updated_ms: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class RiskAlert(_message.Message):
    __slots__ = ("alert_id", "kind", "severity", "message", "symbols", "created_ms", "resulting_state")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    RESULTING_STATE_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    kind: AlertKind
    severity: AlertSeverity
    message: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    created_ms: int
    resulting_state: TradingStateKind
    def __init__(self, alert_id: _Optional[str] = ..., kind: _Optional[_Union[AlertKind, str]] = ..., severity: _Optional[_Union[AlertSeverity, str]] = ..., message: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ..., created_ms: _Optional[int] = ..., resulting_state: _Optional[_Union[TradingStateKind, str]] = ...) -> None: ...
