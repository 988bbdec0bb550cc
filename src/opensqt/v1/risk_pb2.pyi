from opensqt.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetTradingStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTradingStateResponse(_message.Message):
    __slots__ = ("trading_state",)
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    trading_state: _events_pb2.TradingState
    def __init__(self, trading_state: _Optional[_Union[_events_pb2.TradingState, _Mapping]] = ...) -> None: ...

class HaltRequest(_message.Message):
    __slots__ = ("reason", "state")
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    state: _events_pb2.TradingStateKind
    def __init__(self, reason: _Optional[str] = ..., state: _Optional[_Union[_events_pb2.TradingStateKind, str]] = ...) -> None: ...

class ExecutorAck(_message.Message):
    __slots__ = ("executor_id", "address", "acknowledged", "error", "cancelled_orders")
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_ORDERS_FIELD_NUMBER: _ClassVar[int]
    executor_id: str
    address: str
    acknowledged: bool
    error: str
    cancelled_orders: int
    def __init__(self, executor_id: _Optional[str] = ..., address: _Optional[str] = ..., acknowledged: _Optional[bool] = ..., error: _Optional[str] = ..., cancelled_orders: _Optional[int] = ...) -> None: ...

class HaltResponse(_message.Message):
    __slots__ = ("trading_state", "executors")
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    EXECUTORS_FIELD_NUMBER: _ClassVar[int]
    trading_state: _events_pb2.TradingState
    executors: _containers.RepeatedCompositeFieldContainer[ExecutorAck]
    def __init__(self, trading_state: _Optional[_Union[_events_pb2.TradingState, _Mapping]] = ..., executors: _Optional[_Iterable[_Union[ExecutorAck, _Mapping]]] = ...) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ResumeResponse(_message.Message):
    __slots__ = ("trading_state", "executors")
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    EXECUTORS_FIELD_NUMBER: _ClassVar[int]
    trading_state: _events_pb2.TradingState
    executors: _containers.RepeatedCompositeFieldContainer[ExecutorAck]
    def __init__(self, trading_state: _Optional[_Union[_events_pb2.TradingState, _Mapping]] = ..., executors: _Optional[_Iterable[_Union[ExecutorAck, _Mapping]]] = ...) -> None: ...

class ListAlertsRequest(_message.Message):
    __slots__ = ("limit", "since_ms")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    limit: int
    since_ms: int
    def __init__(self, limit: _Optional[int] = ..., since_ms: _Optional[int] = ...) -> None: ...

class ListAlertsResponse(_message.Message):
    __slots__ = ("alerts",)
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[_events_pb2.RiskAlert]
    def __init__(self, alerts: _Optional[_Iterable[_Union[_events_pb2.RiskAlert, _Mapping]]] = ...) -> None: ...
