from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    SIDE_BUY: _ClassVar[Side]
    SIDE_SELL: _ClassVar[Side]

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    ORDER_TYPE_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_MARKET: _ClassVar[OrderType]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_IN_FORCE_UNSPECIFIED: _ClassVar[TimeInForce]
    TIME_IN_FORCE_GTC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_IOC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_FOK: _ClassVar[TimeInForce]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_NEW: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELED: _ClassVar[OrderStatus]
    ORDER_STATUS_REJECTED: _ClassVar[OrderStatus]
    ORDER_STATUS_EXPIRED: _ClassVar[OrderStatus]

class MarketType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MARKET_TYPE_UNSPECIFIED: _ClassVar[MarketType]
    MARKET_TYPE_SPOT: _ClassVar[MarketType]
    MARKET_TYPE_MARGIN: _ClassVar[MarketType]
    MARKET_TYPE_PERPETUAL: _ClassVar[MarketType]
SIDE_UNSPECIFIED: Side
SIDE_BUY: Side
SIDE_SELL: Side
ORDER_TYPE_UNSPECIFIED: OrderType
ORDER_TYPE_LIMIT: OrderType
ORDER_TYPE_MARKET: OrderType
TIME_IN_FORCE_UNSPECIFIED: TimeInForce
TIME_IN_FORCE_GTC: TimeInForce
TIME_IN_FORCE_IOC: TimeInForce
TIME_IN_FORCE_FOK: TimeInForce
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_NEW: OrderStatus
ORDER_STATUS_PARTIALLY_FILLED: OrderStatus
ORDER_STATUS_FILLED: OrderStatus
ORDER_STATUS_CANCELED: OrderStatus
ORDER_STATUS_REJECTED: OrderStatus
ORDER_STATUS_EXPIRED: OrderStatus
MARKET_TYPE_UNSPECIFIED: MarketType
MARKET_TYPE_SPOT: MarketType
MARKET_TYPE_MARGIN: MarketType
MARKET_TYPE_PERPETUAL: MarketType

class Instrument(_message.Message):
    __slots__ = ("venue", "symbol", "market_type", "base", "quote", "tick_size", "step_size", "min_qty", "min_notional", "funding_interval_hours", "max_client_order_id_length")
    VENUE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MARKET_TYPE_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    TICK_SIZE_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIN_QTY_FIELD_NUMBER: _ClassVar[int]
    MIN_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    FUNDING_INTERVAL_HOURS_FIELD_NUMBER: _ClassVar[int]
    MAX_CLIENT_ORDER_ID_LENGTH_FIELD_NUMBER: _ClassVar[int]
    venue: str
    symbol: str
    market_type: MarketType
    base: str
    quote: str
    tick_size: str
    step_size: str
    min_qty: str
    min_notional: str
    funding_interval_hours: int
    max_client_order_id_length: int
    def __init__(self, venue: _Optional[str] = ..., symbol: _Optional[str] = ..., market_type: _Optional[_Union[MarketType, str]] = ..., base: _Optional[str] = ..., quote: _Optional[str] = ..., tick_size: _Optional[str] = ..., step_size: _Optional[str] = ..., min_qty: _Optional[str] = ..., min_notional: _Optional[str] = ..., funding_interval_hours: _Optional[int] = ..., max_client_order_id_length: _Optional[int] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("venue", "account", "symbol", "market_type", "client_order_id", "exchange_order_id", "side", "type", "time_in_force", "post_only", "reduce_only", "price", "quantity", "filled_quantity", "average_price", "status", "created_ms", "updated_ms", "base_commission")
    VENUE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MARKET_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    POST_ONLY_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_PRICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_MS_FIELD_NUMBER: _ClassVar[int]
    BASE_COMMISSION_FIELD_NUMBER: _ClassVar[int]
    venue: str
    account: str
    symbol: str
    market_type: MarketType
    client_order_id: str
    exchange_order_id: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    post_only: bool
    reduce_only: bool
    price: str
    quantity: str
    filled_quantity: str
    average_price: str
    status: OrderStatus
    created_ms: int
    updated_ms: int
    base_commission: str
    def __init__(self, venue: _Optional[str] = ..., account: _Optional[str] = ..., symbol: _Optional[str] = ..., market_type: _Optional[_Union[MarketType, str]] = ..., client_order_id: _Optional[str] = ..., exchange_order_id: _Optional[str] = ..., side: _Optional[_Union[Side, str]] = ..., type: _Optional[_Union[OrderType, str]] = ..., time_in_force: _Optional[_Union[TimeInForce, str]] = ..., post_only: _Optional[bool] = ..., reduce_only: _Optional[bool] = ..., price: _Optional[str] = ..., quantity: _Optional[str] = ..., filled_quantity: _Optional[str] = ..., average_price: _Optional[str] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., created_ms: _Optional[int] = ..., updated_ms: _Optional[int] = ..., base_commission: _Optional[str] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("venue", "account", "symbol", "market_type", "size", "entry_price", "mark_price", "liquidation_price", "unrealized_pnl", "leverage", "updated_ms")
    VENUE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MARKET_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_PRICE_FIELD_NUMBER: _ClassVar[int]
    MARK_PRICE_FIELD_NUMBER: _ClassVar[int]
    LIQUIDATION_PRICE_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    LEVERAGE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_MS_FIELD_NUMBER: _ClassVar[int]
    venue: str
    account: str
    symbol: str
    market_type: MarketType
    size: str
    entry_price: str
    mark_price: str
    liquidation_price: str
    unrealized_pnl: str
    leverage: str
    updated_ms: int
    def __init__(self, venue: _Optional[str] = ..., account: _Optional[str] = ..., symbol: _Optional[str] = ..., market_type: _Optional[_Union[MarketType, str]] = ..., size: _Optional[str] = ..., entry_price: _Optional[str] = ..., mark_price: _Optional[str] = ..., liquidation_price: _Optional[str] = ..., unrealized_pnl: _Optional[str] = ..., leverage: _Optional[str] = ..., updated_ms: _Optional[int] = ...) -> None: ...

class Trade(_message.Message):
    __slots__ = ("venue", "account", "symbol", "trade_id", "client_order_id", "exchange_order_id", "side", "price", "quantity", "fee", "fee_asset", "is_maker", "time_ms")
    VENUE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    FEE_ASSET_FIELD_NUMBER: _ClassVar[int]
    IS_MAKER_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    venue: str
    account: str
    symbol: str
    trade_id: str
    client_order_id: str
    exchange_order_id: str
    side: Side
    price: str
    quantity: str
    fee: str
    fee_asset: str
    is_maker: bool
    time_ms: int
    def __init__(self, venue: _Optional[str] = ..., account: _Optional[str] = ..., symbol: _Optional[str] = ..., trade_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., exchange_order_id: _Optional[str] = ..., side: _Optional[_Union[Side, str]] = ..., price: _Optional[str] = ..., quantity: _Optional[str] = ..., fee: _Optional[str] = ..., fee_asset: _Optional[str] = ..., is_maker: _Optional[bool] = ..., time_ms: _Optional[int] = ...) -> None: ...

class FundingRate(_message.Message):
    __slots__ = ("venue", "symbol", "rate", "interval_hours", "next_funding_ms", "mark_price", "index_price", "time_ms")
    VENUE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_HOURS_FIELD_NUMBER: _ClassVar[int]
    NEXT_FUNDING_MS_FIELD_NUMBER: _ClassVar[int]
    MARK_PRICE_FIELD_NUMBER: _ClassVar[int]
    INDEX_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    venue: str
    symbol: str
    rate: str
    interval_hours: int
    next_funding_ms: int
    mark_price: str
    index_price: str
    time_ms: int
    def __init__(self, venue: _Optional[str] = ..., symbol: _Optional[str] = ..., rate: _Optional[str] = ..., interval_hours: _Optional[int] = ..., next_funding_ms: _Optional[int] = ..., mark_price: _Optional[str] = ..., index_price: _Optional[str] = ..., time_ms: _Optional[int] = ...) -> None: ...

class Candle(_message.Message):
    __slots__ = ("venue", "symbol", "interval", "open_ms", "open", "high", "low", "close", "volume", "closed")
    VENUE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    OPEN_MS_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    venue: str
    symbol: str
    interval: str
    open_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    closed: bool
    def __init__(self, venue: _Optional[str] = ..., symbol: _Optional[str] = ..., interval: _Optional[str] = ..., open_ms: _Optional[int] = ..., open: _Optional[str] = ..., high: _Optional[str] = ..., low: _Optional[str] = ..., close: _Optional[str] = ..., volume: _Optional[str] = ..., closed: _Optional[bool] = ...) -> None: ...
