"""What the paper venue records besides the matching core's state: families, wallets, order
extras, trades, the ledger (deposits, PnL, fees, funding) and the order log."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from opensqt.model.enums import OrderType, Side, TimeInForce
from opensqt.model.money import ZERO
from opensqt.model.resources import Order

__all__ = [
    "AccountChanged",
    "Family",
    "LedgerEntry",
    "OrderChanged",
    "OrderExtra",
    "OrderLogEntry",
    "OrderParams",
    "PriceMoved",
    "TradeRecord",
    "VenueEvent",
    "Wallet",
    "core_account",
    "split_core_account",
]


class Family(StrEnum):
    """An API family: Binance spot/margin (``/api``, ``/sapi``) or USDⓈ-M futures (``/fapi``)."""

    SPOT = "spot"
    USDM = "usdm"


class Wallet(StrEnum):
    """One account's wallets; each is its own account inside the matching core."""

    SPOT = "spot"
    MARGIN = "margin"
    USDM = "usdm"

    @property
    def family(self) -> Family:
        return Family.USDM if self is Wallet.USDM else Family.SPOT


def core_account(account: str, wallet: Wallet) -> str:
    """The matching core's account id of ``account``'s ``wallet``."""
    return f"{account}/{wallet.value}"


def split_core_account(core_id: str) -> tuple[str, Wallet]:
    account, _, wallet = core_id.rpartition("/")
    return account, Wallet(wallet)


@dataclass(frozen=True, slots=True)
class OrderParams:
    """A validated new-order request (parsed from Binance parameters)."""

    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal | None
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    reduce_only: bool = False
    client_order_id: str = ""
    quote_quantity: Decimal | None = None
    side_effect: str = "NO_SIDE_EFFECT"
    wire_type: str = "LIMIT"
    wire_time_in_force: str = "GTC"


@dataclass(slots=True)
class OrderExtra:
    """What Binance reports about an order that the core does not keep."""

    account: str
    wallet: Wallet
    wire_type: str
    wire_time_in_force: str
    cum_quote: Decimal = ZERO
    side_effect: str = "NO_SIDE_EFFECT"


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One fill, as ``userTrades`` / ``myTrades`` report it."""

    trade_id: int
    order_id: int
    client_order_id: str
    account: str
    wallet: Wallet
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    commission: Decimal
    commission_asset: str
    realized_pnl: Decimal
    maker: bool
    time_ms: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A change of a wallet balance that is not a trade's price flow.

    ``kind`` is Binance's income type: ``TRANSFER`` (a deposit), ``REALIZED_PNL``,
    ``COMMISSION`` (negative: paid), ``FUNDING_FEE`` (signed).
    """

    tran_id: int
    account: str
    wallet: Wallet
    kind: str
    asset: str
    amount: Decimal
    symbol: str
    time_ms: int
    trade_id: str = ""


@dataclass(frozen=True, slots=True)
class OrderLogEntry:
    """One change of one order (``execution``: NEW, TRADE, CANCELED, EXPIRED), with the order
    as it is after the change (the log alone rebuilds every order and its extras)."""

    seq: int
    time_ms: int
    account: str
    wallet: Wallet
    execution: str
    order: Order
    trade_id: int = 0
    last_price: Decimal = ZERO
    last_quantity: Decimal = ZERO
    commission: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    maker: bool = False
    liquidation: bool = False
    wire_type: str = "LIMIT"
    wire_time_in_force: str = "GTC"
    side_effect: str = "NO_SIDE_EFFECT"
    cum_quote: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """An order changed (for the user data streams)."""

    entry: OrderLogEntry
    extra: OrderExtra
    commission_asset: str


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """Balances or positions of a wallet changed; ``reason`` is Binance's (ORDER, FUNDING_FEE,
    DEPOSIT)."""

    account: str
    wallet: Wallet
    reason: str
    assets: tuple[str, ...]
    symbols: tuple[str, ...]
    time_ms: int


@dataclass(frozen=True, slots=True)
class PriceMoved:
    """A market's price moved (for the market streams)."""

    family: Family
    symbol: str
    price: Decimal
    time_ms: int


VenueEvent = OrderChanged | AccountChanged | PriceMoved
