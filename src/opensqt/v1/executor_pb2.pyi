from opensqt.v1 import events_pb2 as _events_pb2
from opensqt.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SequenceStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEQUENCE_STATUS_UNSPECIFIED: _ClassVar[SequenceStatus]
    SEQUENCE_STATUS_COMPLETED: _ClassVar[SequenceStatus]
    SEQUENCE_STATUS_COMPENSATED: _ClassVar[SequenceStatus]
    SEQUENCE_STATUS_FAILED: _ClassVar[SequenceStatus]
    SEQUENCE_STATUS_ABORTED: _ClassVar[SequenceStatus]
SEQUENCE_STATUS_UNSPECIFIED: SequenceStatus
SEQUENCE_STATUS_COMPLETED: SequenceStatus
SEQUENCE_STATUS_COMPENSATED: SequenceStatus
SEQUENCE_STATUS_FAILED: SequenceStatus
SEQUENCE_STATUS_ABORTED: SequenceStatus

class OrderRequest(_message.Message):
    __slots__ = ("symbol", "market_type", "client_order_id", "side", "type", "time_in_force", "price", "quantity", "post_only", "reduce_only")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MARKET_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    POST_ONLY_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    market_type: _resources_pb2.MarketType
    client_order_id: str
    side: _resources_pb2.Side
    type: _resources_pb2.OrderType
    time_in_force: _resources_pb2.TimeInForce
    price: str
    quantity: str
    post_only: bool
    reduce_only: bool
    def __init__(self, symbol: _Optional[str] = ..., market_type: _Optional[_Union[_resources_pb2.MarketType, str]] = ..., client_order_id: _Optional[str] = ..., side: _Optional[_Union[_resources_pb2.Side, str]] = ..., type: _Optional[_Union[_resources_pb2.OrderType, str]] = ..., time_in_force: _Optional[_Union[_resources_pb2.TimeInForce, str]] = ..., price: _Optional[str] = ..., quantity: _Optional[str] = ..., post_only: _Optional[bool] = ..., reduce_only: _Optional[bool] = ...) -> None: ...

class PlaceOrderRequest(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: OrderRequest
    def __init__(self, order: _Optional[_Union[OrderRequest, _Mapping]] = ...) -> None: ...

class PlaceOrderResponse(_message.Message):
    __slots__ = ("order", "replayed")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    order: _resources_pb2.Order
    replayed: bool
    def __init__(self, order: _Optional[_Union[_resources_pb2.Order, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class PlaceOrdersRequest(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[OrderRequest]
    def __init__(self, orders: _Optional[_Iterable[_Union[OrderRequest, _Mapping]]] = ...) -> None: ...

class OrderResult(_message.Message):
    __slots__ = ("order", "code", "message", "replayed")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    order: _resources_pb2.Order
    code: int
    message: str
    replayed: bool
    def __init__(self, order: _Optional[_Union[_resources_pb2.Order, _Mapping]] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class PlaceOrdersResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[OrderResult]
    def __init__(self, results: _Optional[_Iterable[_Union[OrderResult, _Mapping]]] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("symbol", "market_type", "client_order_id", "exchange_order_id")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MARKET_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    market_type: _resources_pb2.MarketType
    client_order_id: str
    exchange_order_id: str
    def __init__(self, symbol: _Optional[str] = ..., market_type: _Optional[_Union[_resources_pb2.MarketType, str]] = ..., client_order_id: _Optional[str] = ..., exchange_order_id: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("order", "already_final")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    ALREADY_FINAL_FIELD_NUMBER: _ClassVar[int]
    order: _resources_pb2.Order
    already_final: bool
    def __init__(self, order: _Optional[_Union[_resources_pb2.Order, _Mapping]] = ..., already_final: _Optional[bool] = ...) -> None: ...

class CancelAllRequest(_message.Message):
    __slots__ = ("symbol", "side", "reason")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    side: _resources_pb2.Side
    reason: str
    def __init__(self, symbol: _Optional[str] = ..., side: _Optional[_Union[_resources_pb2.Side, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelAllResponse(_message.Message):
    __slots__ = ("cancelled",)
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    cancelled: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Order]
    def __init__(self, cancelled: _Optional[_Iterable[_Union[_resources_pb2.Order, _Mapping]]] = ...) -> None: ...

class SequenceStep(_message.Message):
    __slots__ = ("step_id", "order", "compensate_on_failure", "size_from_step")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    COMPENSATE_ON_FAILURE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FROM_STEP_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    order: OrderRequest
    compensate_on_failure: bool
    size_from_step: str
    def __init__(self, step_id: _Optional[str] = ..., order: _Optional[_Union[OrderRequest, _Mapping]] = ..., compensate_on_failure: _Optional[bool] = ..., size_from_step: _Optional[str] = ...) -> None: ...

class StepResult(_message.Message):
    __slots__ = ("step_id", "order", "code", "message", "compensation")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COMPENSATION_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    order: _resources_pb2.Order
    code: int
    message: str
    compensation: _resources_pb2.Order
    def __init__(self, step_id: _Optional[str] = ..., order: _Optional[_Union[_resources_pb2.Order, _Mapping]] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., compensation: _Optional[_Union[_resources_pb2.Order, _Mapping]] = ...) -> None: ...

class ExecuteSequenceRequest(_message.Message):
    __slots__ = ("sequence_id", "steps", "parallel")
    SEQUENCE_ID_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_FIELD_NUMBER: _ClassVar[int]
    sequence_id: str
    steps: _containers.RepeatedCompositeFieldContainer[SequenceStep]
    parallel: bool
    def __init__(self, sequence_id: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[SequenceStep, _Mapping]]] = ..., parallel: _Optional[bool] = ...) -> None: ...

class ExecuteSequenceResponse(_message.Message):
    __slots__ = ("sequence_id", "status", "steps")
    SEQUENCE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    sequence_id: str
    status: SequenceStatus
    steps: _containers.RepeatedCompositeFieldContainer[StepResult]
    def __init__(self, sequence_id: _Optional[str] = ..., status: _Optional[_Union[SequenceStatus, str]] = ..., steps: _Optional[_Iterable[_Union[StepResult, _Mapping]]] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("symbol", "market_type", "client_order_id", "exchange_order_id")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MARKET_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    market_type: _resources_pb2.MarketType
    client_order_id: str
    exchange_order_id: str
    def __init__(self, symbol: _Optional[str] = ..., market_type: _Optional[_Union[_resources_pb2.MarketType, str]] = ..., client_order_id: _Optional[str] = ..., exchange_order_id: _Optional[str] = ...) -> None: ...

class GetOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _resources_pb2.Order
    def __init__(self, order: _Optional[_Union[_resources_pb2.Order, _Mapping]] = ...) -> None: ...

class GetAccountSnapshotRequest(_message.Message):
    __slots__ = ("symbol",)
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    def __init__(self, symbol: _Optional[str] = ...) -> None: ...

class GetAccountSnapshotResponse(_message.Message):
    __slots__ = ("open_orders", "position", "fetched_ms")
    OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    FETCHED_MS_FIELD_NUMBER: _ClassVar[int]
    open_orders: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Order]
    position: _resources_pb2.Position
    fetched_ms: int
    def __init__(self, open_orders: _Optional[_Iterable[_Union[_resources_pb2.Order, _Mapping]]] = ..., position: _Optional[_Union[_resources_pb2.Position, _Mapping]] = ..., fetched_ms: _Optional[int] = ...) -> None: ...

class ListInstrumentsRequest(_message.Message):
    __slots__ = ("symbols",)
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class ListInstrumentsResponse(_message.Message):
    __slots__ = ("instruments",)
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    instruments: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Instrument]
    def __init__(self, instruments: _Optional[_Iterable[_Union[_resources_pb2.Instrument, _Mapping]]] = ...) -> None: ...

class GetExecutorStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetExecutorStatusResponse(_message.Message):
    __slots__ = ("executor_id", "venue", "account", "trading_state", "orders_placed", "orders_rejected", "working_orders", "started_ms")
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    VENUE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    ORDERS_PLACED_FIELD_NUMBER: _ClassVar[int]
    ORDERS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    WORKING_ORDERS_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    executor_id: str
    venue: str
    account: str
    trading_state: _events_pb2.TradingState
    orders_placed: int
    orders_rejected: int
    working_orders: int
    started_ms: int
    def __init__(self, executor_id: _Optional[str] = ..., venue: _Optional[str] = ..., account: _Optional[str] = ..., trading_state: _Optional[_Union[_events_pb2.TradingState, _Mapping]] = ..., orders_placed: _Optional[int] = ..., orders_rejected: _Optional[int] = ..., working_orders: _Optional[int] = ..., started_ms: _Optional[int] = ...) -> None: ...

class HaltExecutorRequest(_message.Message):
    __slots__ = ("reason", "state", "version", "requested_by")
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    reason: str
    state: _events_pb2.TradingStateKind
    version: int
    requested_by: str
    def __init__(self, reason: _Optional[str] = ..., state: _Optional[_Union[_events_pb2.TradingStateKind, str]] = ..., version: _Optional[int] = ..., requested_by: _Optional[str] = ...) -> None: ...

class HaltExecutorResponse(_message.Message):
    __slots__ = ("trading_state", "cancelled_orders")
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_ORDERS_FIELD_NUMBER: _ClassVar[int]
    trading_state: _events_pb2.TradingState
    cancelled_orders: int
    def __init__(self, trading_state: _Optional[_Union[_events_pb2.TradingState, _Mapping]] = ..., cancelled_orders: _Optional[int] = ...) -> None: ...

class ResumeExecutorRequest(_message.Message):
    __slots__ = ("reason", "version", "requested_by")
    REASON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    reason: str
    version: int
    requested_by: str
    def __init__(self, reason: _Optional[str] = ..., version: _Optional[int] = ..., requested_by: _Optional[str] = ...) -> None: ...

class ResumeExecutorResponse(_message.Message):
    __slots__ = ("trading_state",)
    TRADING_STATE_FIELD_NUMBER: _ClassVar[int]
    trading_state: _events_pb2.TradingState
    def __init__(self, trading_state: _Optional[_Union[_events_pb2.TradingState, _Mapping]] = ...) -> None: ...
