from opensqt.v1 import events_pb2 as _events_pb2
from opensqt.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetLatestPriceRequest(_message.Message):
    __slots__ = ("symbol", "venue")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    VENUE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    venue: str
    def __init__(self, symbol: _Optional[str] = ..., venue: _Optional[str] = ...) -> None: ...

class GetLatestPriceResponse(_message.Message):
    __slots__ = ("price",)
    PRICE_FIELD_NUMBER: _ClassVar[int]
    price: _events_pb2.PriceChange
    def __init__(self, price: _Optional[_Union[_events_pb2.PriceChange, _Mapping]] = ...) -> None: ...

class GetFundingRateRequest(_message.Message):
    __slots__ = ("symbol", "venue")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    VENUE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    venue: str
    def __init__(self, symbol: _Optional[str] = ..., venue: _Optional[str] = ...) -> None: ...

class GetFundingRateResponse(_message.Message):
    __slots__ = ("funding",)
    FUNDING_FIELD_NUMBER: _ClassVar[int]
    funding: _resources_pb2.FundingRate
    def __init__(self, funding: _Optional[_Union[_resources_pb2.FundingRate, _Mapping]] = ...) -> None: ...

class GetFeedHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FeedHealth(_message.Message):
    __slots__ = ("feed", "venue", "symbol", "connected", "stale", "last_event_ms", "reconnects", "last_error")
    FEED_FIELD_NUMBER: _ClassVar[int]
    VENUE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_MS_FIELD_NUMBER: _ClassVar[int]
    RECONNECTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    feed: str
    venue: str
    symbol: str
    connected: bool
    stale: bool
    last_event_ms: int
    reconnects: int
    last_error: str
    def __init__(self, feed: _Optional[str] = ..., venue: _Optional[str] = ..., symbol: _Optional[str] = ..., connected: _Optional[bool] = ..., stale: _Optional[bool] = ..., last_event_ms: _Optional[int] = ..., reconnects: _Optional[int] = ..., last_error: _Optional[str] = ...) -> None: ...

class GetFeedHealthResponse(_message.Message):
    __slots__ = ("feeds",)
    FEEDS_FIELD_NUMBER: _ClassVar[int]
    feeds: _containers.RepeatedCompositeFieldContainer[FeedHealth]
    def __init__(self, feeds: _Optional[_Iterable[_Union[FeedHealth, _Mapping]]] = ...) -> None: ...

class GetCandlesRequest(_message.Message):
    __slots__ = ("symbol", "interval", "limit")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    interval: str
    limit: int
    def __init__(self, symbol: _Optional[str] = ..., interval: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class GetCandlesResponse(_message.Message):
    __slots__ = ("candles",)
    CANDLES_FIELD_NUMBER: _ClassVar[int]
    candles: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Candle]
    def __init__(self, candles: _Optional[_Iterable[_Union[_resources_pb2.Candle, _Mapping]]] = ...) -> None: ...
