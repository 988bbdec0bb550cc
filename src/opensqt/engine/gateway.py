"""The strategy's way to the executor over mTLS gRPC (orders, lookups, account snapshots; errors
intact), and to the monitor's candle history."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import grpc

from opensqt.errors import NotFound, OrderNotFound
from opensqt.model import Candle, Instrument, Order
from opensqt.transport import codec
from opensqt.transport.grpc_client import error_from_rpc
from opensqt.v1 import executor_pb2, executor_pb2_grpc, monitor_pb2, monitor_pb2_grpc

__all__ = [
    "AccountSnapshot",
    "AccountSource",
    "CandleHistory",
    "ExecutorGateway",
    "MonitorCandles",
    "OrderGateway",
]


class OrderGateway(Protocol):
    async def place(self, order: Order) -> Order: ...

    async def cancel(self, symbol: str, client_order_id: str) -> Order | None: ...


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """The venue's open orders of one symbol and, after them, the account's position in it.

    ``position`` is the signed size, ``None`` on a venue that holds balances, not positions;
    ``entry_price`` the venue's average entry price of a position it reports (``None`` if none).
    """

    open_orders: tuple[Order, ...]
    position: Decimal | None
    fetched_ms: int
    entry_price: Decimal | None = None


class AccountSource(Protocol):
    """What a strategy reconciles with: a consistent read of the account, and lookups by id."""

    async def account_snapshot(self, symbol: str) -> AccountSnapshot: ...

    async def get_order(self, symbol: str, client_order_id: str) -> Order | None: ...


class ExecutorGateway:
    """:class:`OrderGateway` over an executor's gRPC API (the channel carries the strategy identity)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = executor_pb2_grpc.ExecutorServiceStub(channel)

    async def place(self, order: Order) -> Order:
        request = executor_pb2.OrderRequest(
            symbol=order.symbol,
            market_type=codec.MARKET_TYPE.to_proto(order.market_type),
            client_order_id=order.client_order_id,
            side=codec.SIDE.to_proto(order.side),
            type=codec.ORDER_TYPE.to_proto(order.order_type),
            time_in_force=codec.TIME_IN_FORCE.to_proto(order.time_in_force),
            price=codec.decimal_to_wire(order.price) if order.price else "",
            quantity=codec.decimal_to_wire(order.quantity),
            post_only=order.post_only,
            reduce_only=order.reduce_only,
        )
        try:
            reply = await self._stub.PlaceOrder(executor_pb2.PlaceOrderRequest(order=request))
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        return codec.order_from_proto(reply.order)

    async def instruments(self, symbols: list[str]) -> dict[str, Instrument]:
        """The executor's instrument rules for ``symbols``."""
        try:
            reply = await self._stub.ListInstruments(executor_pb2.ListInstrumentsRequest(symbols=symbols))
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        found = [codec.instrument_from_proto(i) for i in reply.instruments]
        return {i.symbol: i for i in found}

    async def cancel(self, symbol: str, client_order_id: str) -> Order | None:
        try:
            reply = await self._stub.CancelOrder(
                executor_pb2.CancelOrderRequest(symbol=symbol, client_order_id=client_order_id)
            )
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        return codec.order_from_proto(reply.order) if reply.HasField("order") else None

    async def account_snapshot(self, symbol: str) -> AccountSnapshot:
        """The venue's open orders of ``symbol`` and the account's position in it, read now."""
        try:
            reply = await self._stub.GetAccountSnapshot(executor_pb2.GetAccountSnapshotRequest(symbol=symbol))
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        held = codec.position_from_proto(reply.position) if reply.HasField("position") else None
        return AccountSnapshot(
            open_orders=tuple(codec.order_from_proto(o) for o in reply.open_orders),
            position=held.size if held is not None else None,
            fetched_ms=reply.fetched_ms,
            entry_price=held.entry_price if held is not None and held.entry_price > 0 else None,
        )

    async def get_order(self, symbol: str, client_order_id: str) -> Order | None:
        """The order as the venue has it now, by client id; ``None`` when the venue has none."""
        try:
            reply = await self._stub.GetOrder(
                executor_pb2.GetOrderRequest(symbol=symbol, client_order_id=client_order_id)
            )
        except grpc.aio.AioRpcError as exc:
            error = error_from_rpc(exc)
            if isinstance(error, NotFound | OrderNotFound):
                return None
            raise error from exc
        return codec.order_from_proto(reply.order)


class CandleHistory(Protocol):
    """A venue's latest closed candles, oldest first (:class:`MonitorCandles`)."""

    async def candles(self, symbol: str, interval: str, limit: int) -> list[Candle]: ...


class MonitorCandles:
    """A venue's candle history through the monitor's gRPC API (GetCandles), for the ATR a grid's
    interval is widened by when it starts."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = monitor_pb2_grpc.MonitorServiceStub(channel)

    async def candles(self, symbol: str, interval: str, limit: int) -> list[Candle]:
        """The latest ``limit`` closed candles, oldest first (fewer when the venue has less)."""
        request = monitor_pb2.GetCandlesRequest(symbol=symbol, interval=interval, limit=limit)
        try:
            reply = await self._stub.GetCandles(request)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        return [codec.candle_from_proto(c, f"candles[{i}]") for i, c in enumerate(reply.candles)]
