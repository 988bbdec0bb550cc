from opensqt.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PositionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POSITION_STATUS_UNSPECIFIED: _ClassVar[PositionStatus]
    POSITION_STATUS_EMPTY: _ClassVar[PositionStatus]
    POSITION_STATUS_FILLED: _ClassVar[PositionStatus]

class LockStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOCK_STATUS_UNSPECIFIED: _ClassVar[LockStatus]
    LOCK_STATUS_FREE: _ClassVar[LockStatus]
    LOCK_STATUS_PENDING: _ClassVar[LockStatus]
    LOCK_STATUS_LOCKED: _ClassVar[LockStatus]
POSITION_STATUS_UNSPECIFIED: PositionStatus
POSITION_STATUS_EMPTY: PositionStatus
POSITION_STATUS_FILLED: PositionStatus
LOCK_STATUS_UNSPECIFIED: LockStatus
LOCK_STATUS_FREE: LockStatus
LOCK_STATUS_PENDING: LockStatus
LOCK_STATUS_LOCKED: LockStatus

class InventorySlot(_message.Message):
    __slots__ = ("agent", "symbol", "slot_price", "position_status", "position_quantity", "order_side", "order_price", "order_quantity", "client_order_id", "exchange_order_id", "order_filled_quantity", "order_status", "lock_status", "cycle", "post_only_rejects", "version", "order_requested_ms", "order_reduce_only", "order_post_only")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SLOT_PRICE_FIELD_NUMBER: _ClassVar[int]
    POSITION_STATUS_FIELD_NUMBER: _ClassVar[int]
    POSITION_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_SIDE_FIELD_NUMBER: _ClassVar[int]
    ORDER_PRICE_FIELD_NUMBER: _ClassVar[int]
    ORDER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_STATUS_FIELD_NUMBER: _ClassVar[int]
    LOCK_STATUS_FIELD_NUMBER: _ClassVar[int]
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    POST_ONLY_REJECTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ORDER_REQUESTED_MS_FIELD_NUMBER: _ClassVar[int]
    ORDER_REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    ORDER_POST_ONLY_FIELD_NUMBER: _ClassVar[int]
    agent: str
    symbol: str
    slot_price: str
    position_status: PositionStatus
    position_quantity: str
    order_side: _resources_pb2.Side
    order_price: str
    order_quantity: str
    client_order_id: str
    exchange_order_id: str
    order_filled_quantity: str
    order_status: _resources_pb2.OrderStatus
    lock_status: LockStatus
    cycle: int
    post_only_rejects: int
    version: int
    order_requested_ms: int
    order_reduce_only: bool
    order_post_only: bool
    def __init__(self, agent: _Optional[str] = ..., symbol: _Optional[str] = ..., slot_price: _Optional[str] = ..., position_status: _Optional[_Union[PositionStatus, str]] = ..., position_quantity: _Optional[str] = ..., order_side: _Optional[_Union[_resources_pb2.Side, str]] = ..., order_price: _Optional[str] = ..., order_quantity: _Optional[str] = ..., client_order_id: _Optional[str] = ..., exchange_order_id: _Optional[str] = ..., order_filled_quantity: _Optional[str] = ..., order_status: _Optional[_Union[_resources_pb2.OrderStatus, str]] = ..., lock_status: _Optional[_Union[LockStatus, str]] = ..., cycle: _Optional[int] = ..., post_only_rejects: _Optional[int] = ..., version: _Optional[int] = ..., order_requested_ms: _Optional[int] = ..., order_reduce_only: _Optional[bool] = ..., order_post_only: _Optional[bool] = ...) -> None: ...

class Leg(_message.Message):
    __slots__ = ("agent", "venue", "symbol", "market_type", "size", "entry_price", "updated_ms", "version")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    VENUE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MARKET_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_PRICE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_MS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    agent: str
    venue: str
    symbol: str
    market_type: _resources_pb2.MarketType
    size: str
    entry_price: str
    updated_ms: int
    version: int
    def __init__(self, agent: _Optional[str] = ..., venue: _Optional[str] = ..., symbol: _Optional[str] = ..., market_type: _Optional[_Union[_resources_pb2.MarketType, str]] = ..., size: _Optional[str] = ..., entry_price: _Optional[str] = ..., updated_ms: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...
