"""The paper venue: the matching core plus what a Binance-like venue keeps around it.

:class:`PaperVenue` is synchronous and does no I/O (the HTTP server, the streams and the store
call it and listen to it). It owns one :class:`~opensqt.exchange.MatchingCore` in which every
paper account has three core accounts, one per wallet (spot, cross margin, USDⓈ-M futures);
spot and margin orders trade the same spot book, futures orders the perpetual book. Around the
core it keeps:

* every order's latest state and what Binance reports that the core does not (wire type,
  time in force, cumulative quote), so orders are found by id or client id after they end;
* trades, a ledger of deposits, realized PnL, commissions and funding, and the order log;
* funding rates, the funding schedule and its history; candles for klines and tickers.

It validates orders against Binance's filters before the core sees them (so a refused order
changes nothing) and raises :class:`~opensqt.paper.binance_errors.BinanceError` with the code
Binance would send. Listeners receive :data:`~opensqt.paper.records.VenueEvent` values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from opensqt.exchange.fees import FeeSchedule
from opensqt.exchange.matching import MarketRules, MatchingCore, market_key
from opensqt.exchange.orders import (
    FillRule,
    OrderEvent,
    OrderRejected,
    OrderRequest,
    RejectReason,
    UnknownOrder,
)
from opensqt.model.enums import MarketType, OrderStatus, OrderType, Side
from opensqt.model.instrument import Instrument
from opensqt.model.money import ZERO, round_to_step
from opensqt.model.resources import Order
from opensqt.paper.binance_errors import BinanceError, errors
from opensqt.paper.market_data import CandleBook
from opensqt.paper.records import (
    AccountChanged,
    Family,
    LedgerEntry,
    OrderChanged,
    OrderExtra,
    OrderLogEntry,
    OrderParams,
    PriceMoved,
    TradeRecord,
    VenueEvent,
    Wallet,
    core_account,
    split_core_account,
)
from opensqt.paper.settings import MarketSettings
from opensqt.paper.wire import decimals_of
from opensqt.telemetry import get_logger

__all__ = ["FundingState", "Listing", "PaperVenue", "next_funding_ms"]

log = get_logger(__name__)

_HOUR_MS = 3_600_000
_MAX_PRICE = Decimal(10_000_000)


@dataclass(frozen=True, slots=True)
class Listing:
    """A market as one API family lists it, with the filters Binance publishes."""

    family: Family
    instrument: Instrument
    rules: MarketRules
    max_qty: Decimal
    funding_interval_hours: int = 0

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def price_decimals(self) -> int:
        """Futures ``pricePrecision``: the tick's decimals, at least 2 (Binance lists BTCUSDT
        with tick 0.10 and precision 2, so 30000.05 is a tick error, not a precision one)."""
        return max(decimals_of(self.instrument.tick_size), 2)

    @property
    def qty_decimals(self) -> int:
        return decimals_of(self.instrument.step_size)

    @property
    def core_venue(self) -> str:
        return self.family.value


@dataclass(slots=True)
class FundingState:
    """A perpetual's current funding rate and its next settlement time."""

    rate: Decimal
    next_ms: int


def _listings(markets: Iterable[MarketSettings]) -> dict[tuple[Family, str], Listing]:
    listings: dict[tuple[Family, str], Listing] = {}
    for market in markets:
        if market.spot is not None:
            spot = market.spot
            instrument = Instrument(
                Family.SPOT.value,
                market.symbol,
                MarketType.SPOT,
                market.base,
                market.quote,
                spot.tick_size,
                spot.step_size,
                spot.min_qty,
                spot.min_notional,
            )
            # Binance spot and margin: a buy pays its commission in the base asset (no BNB fees)
            rules = MarketRules(
                fees=FeeSchedule(maker=spot.fees.maker, taker=spot.fees.taker),
                buy_fee_in_base=True,
                max_trade_qty=spot.max_trade_qty,
                book_depth=spot.book_depth,
            )
            listings[(Family.SPOT, market.symbol)] = Listing(Family.SPOT, instrument, rules, spot.max_qty)
        if market.perp is not None:
            perp = market.perp
            instrument = Instrument(
                Family.USDM.value,
                market.symbol,
                MarketType.PERPETUAL,
                market.base,
                market.quote,
                perp.tick_size,
                perp.step_size,
                perp.min_qty,
                perp.min_notional,
                funding_interval_hours=perp.funding_interval_hours,
            )
            rules = MarketRules(
                fees=FeeSchedule(maker=perp.fees.maker, taker=perp.fees.taker),
                maintenance_margin_rate=perp.maintenance_margin_rate,
                max_leverage=Decimal(perp.max_leverage),
                max_trade_qty=perp.max_trade_qty,
                book_depth=perp.book_depth,
            )
            listings[(Family.USDM, market.symbol)] = Listing(
                Family.USDM, instrument, rules, perp.max_qty, perp.funding_interval_hours
            )
    return listings


def next_funding_ms(now_ms: int, interval_hours: int) -> int:
    """The first funding time after ``now_ms`` on the interval's grid (00:00 UTC aligned)."""
    step = interval_hours * _HOUR_MS
    return (now_ms // step + 1) * step


class PaperVenue:
    """A Binance-like venue around the matching core (see the module docstring).

    Args:
        markets: the listed symbols and their rules.
        fill_rule: when resting orders fill as the price moves.
        default_leverage: the leverage new futures accounts start with (Binance's is 20).
        margin_max_leverage: cross margin: borrowing stops where the margin level (assets over
            liabilities) would fall below ``L / (L - 1)`` (1.5 for 3x).
        now_ms: the start time (for the funding schedule).
    """

    def __init__(
        self,
        markets: Iterable[MarketSettings],
        *,
        fill_rule: FillRule = FillRule.THROUGH,
        default_leverage: int = 20,
        margin_max_leverage: Decimal = Decimal(3),
        now_ms: int = 0,
    ) -> None:
        markets = list(markets)
        self.core = MatchingCore(fill_rule=fill_rule, keep_history=False)
        self.listings = _listings(markets)
        for listing in self.listings.values():
            self.core.add_market(listing.instrument, listing.rules)
        self.default_leverage = default_leverage
        self.margin_min_level = margin_max_leverage / (margin_max_leverage - 1)
        self.funding: dict[str, FundingState] = {
            market.symbol: FundingState(
                market.perp.funding_rate, next_funding_ms(now_ms, market.perp.funding_interval_hours)
            )
            for market in markets
            if market.perp is not None
        }
        self.funding_history: dict[str, list[tuple[int, Decimal, Decimal]]] = {}
        self.candles: dict[tuple[Family, str], CandleBook] = {key: CandleBook() for key in self.listings}
        self.quotes: dict[tuple[Family, str], tuple[Decimal, Decimal]] = {}
        self.accounts: dict[str, int] = {}  # account -> creation time
        self.orders: dict[int, Order] = {}
        self.extras: dict[int, OrderExtra] = {}
        self._by_client: dict[tuple[str, str], int] = {}  # (core account, client id) -> latest order id
        self.order_log: list[OrderLogEntry] = []
        self.trades: list[TradeRecord] = []
        self.ledger: list[LedgerEntry] = []
        self.unsaved: list[OrderLogEntry | TradeRecord | LedgerEntry] = []
        self.dirty = False
        # book depths set while running (POST /admin/book), over the settings' until changed back
        self.book_overrides: dict[tuple[Family, str], Decimal | None] = {}
        self._listeners: list[Callable[[VenueEvent], None]] = []
        self._next_seq = 1
        self._next_tran_id = 1

    # -- listeners --------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[VenueEvent], None]) -> None:
        """Call ``listener`` with every event, synchronously, after the change is applied."""
        self._listeners.append(listener)

    def _emit(self, event: VenueEvent) -> None:
        for listener in self._listeners:
            listener(event)

    # -- markets ----------------------------------------------------------------------------

    def listing(self, family: Family, symbol: str) -> Listing:
        """The listing of ``symbol`` on ``family`` (-1121 when there is none)."""
        listing = self.listings.get((family, symbol))
        if listing is None:
            raise errors.invalid_symbol()
        return listing

    def family_listings(self, family: Family) -> list[Listing]:
        return [listing for (fam, _), listing in self.listings.items() if fam is family]

    def last_price(self, family: Family, symbol: str) -> Decimal | None:
        return self.core.last_price(family.value, symbol)

    def book_top(self, family: Family, symbol: str) -> tuple[Decimal, Decimal] | None:
        """Best bid and ask: the quotes when set, else one tick either side of the last price
        (the nearest prices at which an arriving order would take)."""
        quoted = self.quotes.get((family, symbol))
        if quoted is not None:
            return quoted
        last = self.last_price(family, symbol)
        if last is None:
            return None
        tick = self.listing(family, symbol).instrument.tick_size
        return max(last - tick, tick), last + tick

    def taker_price(self, family: Family, symbol: str, side: Side) -> Decimal | None:
        """The price a market order of ``side`` takes at: the quote when set, else the last."""
        quoted = self.quotes.get((family, symbol))
        if quoted is not None:
            return quoted[1] if side is Side.BUY else quoted[0]
        return self.last_price(family, symbol)

    def index_price(self, symbol: str) -> Decimal | None:
        """The spot price when the symbol is listed spot, else the perpetual's."""
        if (Family.SPOT, symbol) in self.listings:
            spot = self.last_price(Family.SPOT, symbol)
            if spot is not None:
                return spot
        return self.last_price(Family.USDM, symbol)

    def move_price(
        self,
        family: Family,
        symbol: str,
        price: Decimal,
        now_ms: int,
        volume: Decimal = ZERO,
        *,
        market_ms: int | None = None,
    ) -> int:
        """The market trades at ``price``: resting orders it crosses fill, positions whose
        liquidation price it reaches are liquidated. Returns the number of order events.

        ``market_ms`` is the source's own time for the price (a replayed bar's time): candles
        are keyed by it, so an accelerated replay closes a candle per replayed minute. Orders,
        trades and events keep the exchange clock (``now_ms``)."""
        listing = self.listing(family, symbol)
        if not price.is_finite() or price <= 0:
            raise errors.invalid_value("price")
        events = self.core.sweep(listing.core_venue, symbol, price, now_ms)
        self.quotes.pop((family, symbol), None)
        self.candles[(family, symbol)].on_price(now_ms if market_ms is None else market_ms, price, volume)
        self.dirty = True
        self._apply(events, now_ms)
        self._emit(PriceMoved(family, symbol, price, now_ms))
        return len(events)

    def set_quote(self, family: Family, symbol: str, bid: Decimal, ask: Decimal, now_ms: int) -> int:
        """New best bid and ask (orders they cross fill; the last price becomes the mid)."""
        listing = self.listing(family, symbol)
        if not (bid.is_finite() and ask.is_finite() and 0 < bid < ask):
            raise errors.invalid_value("bid")
        events = self.core.on_quote(listing.core_venue, symbol, bid, ask, now_ms)
        self.quotes[(family, symbol)] = (bid, ask)
        mid = (bid + ask) / 2
        self.candles[(family, symbol)].on_price(now_ms, mid)
        self.dirty = True
        self._apply(events, now_ms)
        self._emit(PriceMoved(family, symbol, mid, now_ms))
        return len(events)

    # -- accounts ---------------------------------------------------------------------------

    def add_account(self, account: str, balances: dict[Wallet, dict[str, Decimal]], now_ms: int) -> None:
        """Open ``account`` with a deposit in each wallet (recorded as TRANSFER in the ledger)."""
        if account in self.accounts:
            raise ValueError(f"account {account!r} exists")
        if "/" in account:
            raise ValueError("account names cannot contain '/'")
        self.accounts[account] = now_ms
        for wallet in Wallet:
            deposit = {asset: amount for asset, amount in balances.get(wallet, {}).items() if amount}
            self.core.open_account(core_account(account, wallet), deposit)
            for asset, amount in deposit.items():
                self._record_ledger(account, wallet, "TRANSFER", asset, amount, "", now_ms)
        futures = core_account(account, Wallet.USDM)
        for listing in self.family_listings(Family.USDM):
            leverage = min(Decimal(self.default_leverage), listing.rules.max_leverage)
            self.core.set_leverage(futures, listing.core_venue, listing.symbol, leverage)
        self.dirty = True
        for wallet in Wallet:
            if balances.get(wallet):
                assets = tuple(balances[wallet])
                self._emit(AccountChanged(account, wallet, "DEPOSIT", assets, (), now_ms))

    def balances(self, account: str, wallet: Wallet) -> dict[str, Decimal]:
        return dict(self.core.account(core_account(account, wallet)).balances)

    def locked(self, account: str, wallet: Wallet) -> dict[str, Decimal]:
        return dict(self.core.account(core_account(account, wallet)).locked)

    def leverage(self, account: str, symbol: str) -> Decimal:
        held = self.core.account(core_account(account, Wallet.USDM))
        return held.leverage.get(market_key(Family.USDM.value, symbol), Decimal(1))

    def set_leverage(self, account: str, symbol: str, leverage: int) -> Decimal:
        listing = self.listing(Family.USDM, symbol)
        if not 1 <= leverage <= listing.rules.max_leverage:
            raise errors.invalid_leverage(str(leverage))
        self.core.set_leverage(
            core_account(account, Wallet.USDM), listing.core_venue, symbol, Decimal(leverage)
        )
        self.dirty = True
        return Decimal(leverage)

    # -- orders -----------------------------------------------------------------------------

    def submit(self, account: str, wallet: Wallet, params: OrderParams, now_ms: int) -> Order:
        """Place an order; returns its state after the submission (filled, resting, expired).

        Raises:
            BinanceError: the order breaks a filter, its client id is in use by an open order,
                funds are short, or a post-only order would take. Nothing changed.
        """
        family = wallet.family
        listing = self.listing(family, params.symbol)
        instrument = listing.instrument
        core_id = core_account(account, wallet)
        quantity = params.quantity
        if quantity is None:
            quantity = self._quantity_for_quote(listing, params)
        self._check_filters(listing, params, quantity)
        if params.client_order_id:
            existing = self._by_client.get((core_id, params.client_order_id))
            if existing is not None and self.orders[existing].status.is_working:
                raise errors.duplicate_client_id(family.value)
        market_type: MarketType | None = None
        if wallet is Wallet.MARGIN and params.side_effect != "NO_SIDE_EFFECT":
            market_type = MarketType.MARGIN
            self._check_margin_level(account, listing, params, quantity)
        request = OrderRequest(
            account=core_id,
            venue=listing.core_venue,
            symbol=instrument.symbol,
            side=params.side,
            order_type=params.order_type,
            quantity=quantity,
            price=params.price if params.price is not None else ZERO,
            client_order_id=params.client_order_id or self._generated_client_id(family),
            time_in_force=params.time_in_force,
            post_only=params.post_only,
            reduce_only=params.reduce_only,
            market_type=market_type,
        )
        try:
            events = self.core.submit(request, now_ms)
        except OrderRejected as rejected:
            raise _rejection(rejected, family, listing) from rejected
        self.dirty = True
        order_id = int(events[0].order.exchange_order_id)
        if params.post_only and events[0].order.status is OrderStatus.EXPIRED and events[0].trade is None:
            # Binance refuses a post-only order that would take and does not record it.
            raise errors.would_take()
        self.extras[order_id] = OrderExtra(
            account, wallet, params.wire_type, params.wire_time_in_force, side_effect=params.side_effect
        )
        self._apply(events, now_ms)
        return self.orders[order_id]

    def _generated_client_id(self, family: Family) -> str:
        prefix = "web_" if family is Family.SPOT else "paper_"
        return f"{prefix}{self._next_seq:016d}"

    def _quantity_for_quote(self, listing: Listing, params: OrderParams) -> Decimal:
        if params.quote_quantity is None:
            raise errors.mandatory("quantity")
        price = self.taker_price(listing.family, listing.symbol, params.side)
        if price is None:
            raise errors.no_price()
        return round_to_step(params.quote_quantity / price, listing.instrument.step_size, mode="down")

    def _check_filters(self, listing: Listing, params: OrderParams, quantity: Decimal) -> None:
        family = listing.family.value
        instrument = listing.instrument
        qty_limit = listing.qty_decimals if listing.family is Family.USDM else 8
        if decimals_of(quantity) > qty_limit:
            raise errors.precision_over_max()
        if quantity <= 0 or quantity < instrument.min_qty:
            raise errors.quantity_min(family)
        if quantity > listing.max_qty:
            raise errors.quantity_max(family)
        if not instrument.is_on_step(quantity):
            raise errors.quantity_step(family)
        price = params.price
        if params.order_type is OrderType.LIMIT:
            assert price is not None
            price_limit = listing.price_decimals if listing.family is Family.USDM else 8
            if decimals_of(price) > price_limit:
                raise errors.precision_over_max()
            if price < instrument.tick_size or price > _MAX_PRICE:
                raise errors.price_out_of_range(family)
            if not instrument.is_on_tick(price):
                raise errors.price_filter(family)
            reference = price
        else:
            taker = self.taker_price(listing.family, listing.symbol, params.side)
            if taker is None:
                raise errors.no_price()
            reference = taker
        if not params.reduce_only and reference * quantity < instrument.min_notional:
            raise errors.min_notional(family, format(instrument.min_notional.normalize(), "f"))

    def _check_margin_level(self, account: str, listing: Listing, params: OrderParams, qty: Decimal) -> None:
        """Refuse a borrowing order that would leave the margin level below the minimum."""
        price = params.price
        if price is None:
            price = self.taker_price(Family.SPOT, listing.symbol, params.side)
        if price is None:
            raise errors.no_price()
        balances = self.balances(account, Wallet.MARGIN)
        before = self._margin_totals(balances)
        instrument = listing.instrument
        signed = qty if params.side is Side.BUY else -qty
        fee = qty * price * max(listing.rules.fees.taker, listing.rules.fees.maker, ZERO)
        balances[instrument.base] = balances.get(instrument.base, ZERO) + signed
        balances[instrument.quote] = balances.get(instrument.quote, ZERO) - signed * price - fee
        assets, liabilities = self._margin_totals(balances, override=(instrument.base, price))
        if liabilities > before[1] and (assets < liabilities * self.margin_min_level):
            raise errors.insufficient_balance()

    def _margin_totals(
        self, balances: dict[str, Decimal], override: tuple[str, Decimal] | None = None
    ) -> tuple[Decimal, Decimal]:
        """(assets, liabilities) of a margin wallet in USDT at the last spot prices."""
        assets = ZERO
        liabilities = ZERO
        for asset, amount in balances.items():
            price = self.asset_price(asset)
            if override is not None and asset == override[0]:
                price = override[1]
            if price is None:
                continue
            if amount > 0:
                assets += amount * price
            else:
                liabilities -= amount * price
        return assets, liabilities

    def asset_price(self, asset: str, quote: str = "USDT") -> Decimal | None:
        """The value of one ``asset`` in ``quote`` (its spot market's last price)."""
        if asset == quote:
            return Decimal(1)
        return (
            self.last_price(Family.SPOT, asset + quote)
            if (Family.SPOT, asset + quote) in self.listings
            else None
        )

    def margin_totals(self, account: str) -> tuple[Decimal, Decimal]:
        """(assets, liabilities) of the account's cross-margin wallet in USDT."""
        return self._margin_totals(self.balances(account, Wallet.MARGIN))

    def find(self, account: str, wallet: Wallet, symbol: str, order_id: int | None, client_id: str) -> Order:
        """An order of the account's wallet by id or client id (-2013 when there is none)."""
        found: Order | None = None
        if order_id is not None:
            found = self.orders.get(order_id)
        elif client_id:
            latest = self._by_client.get((core_account(account, wallet), client_id))
            found = self.orders.get(latest) if latest is not None else None
        if found is None or found.account != core_account(account, wallet) or found.symbol != symbol:
            raise errors.order_does_not_exist()
        return found

    def _working(
        self, account: str, wallet: Wallet, symbol: str, order_id: int | None, client_id: str
    ) -> Order:
        """An open order of the account's wallet (-2011 when it is unknown or already final)."""
        self.listing(wallet.family, symbol)
        try:
            order = self.find(account, wallet, symbol, order_id, client_id)
        except BinanceError:
            raise errors.unknown_order() from None
        if order.status.is_final:
            raise errors.unknown_order()
        return order

    def cancel(
        self, account: str, wallet: Wallet, symbol: str, order_id: int | None, client_id: str, now_ms: int
    ) -> Order:
        """Cancel an open order (-2011 when it is unknown or already final)."""
        order = self._working(account, wallet, symbol, order_id, client_id)
        try:
            event = self.core.cancel(
                order.account,
                wallet.family.value,
                symbol,
                now_ms,
                exchange_order_id=order.exchange_order_id,
            )
        except UnknownOrder:
            raise errors.unknown_order() from None
        self.dirty = True
        self._apply([event], now_ms)
        return self.orders[int(order.exchange_order_id)]

    def fill(
        self,
        account: str,
        wallet: Wallet,
        symbol: str,
        order_id: int | None,
        client_id: str,
        qty: Decimal,
        now_ms: int,
    ) -> Order:
        """Someone takes ``qty`` of an open order, at its limit price: one trade, the order
        PARTIALLY_FILLED and still resting unless that was all it had left.

        Raises:
            BinanceError: no such open order (-2011).
            ValueError: ``qty`` is not a positive multiple of the step size, or is more than
                the order has left. Nothing changed.
        """
        order = self._working(account, wallet, symbol, order_id, client_id)
        try:
            events = self.core.fill_partially(
                order.account, wallet.family.value, symbol, qty, now_ms,
                exchange_order_id=order.exchange_order_id,
            )  # fmt: skip
        except UnknownOrder:
            raise errors.unknown_order() from None
        self.dirty = True
        self._apply(events, now_ms)
        return self.orders[int(order.exchange_order_id)]

    def cancel_all(self, account: str, wallet: Wallet, symbol: str, now_ms: int) -> list[Order]:
        listing = self.listing(wallet.family, symbol)
        events = self.core.cancel_all(core_account(account, wallet), listing.core_venue, symbol, now_ms)
        if events:
            self.dirty = True
        self._apply(events, now_ms)
        return [self.orders[int(event.order.exchange_order_id)] for event in events]

    def open_orders(self, account: str, wallet: Wallet, symbol: str = "") -> list[Order]:
        if symbol:
            self.listing(wallet.family, symbol)
        return self.core.open_orders(core_account(account, wallet), wallet.family.value, symbol)

    def all_orders(self, account: str, wallet: Wallet, symbol: str) -> list[Order]:
        self.listing(wallet.family, symbol)
        core_id = core_account(account, wallet)
        return [
            order
            for _, order in sorted(self.orders.items())
            if order.account == core_id and order.symbol == symbol
        ]

    # -- events -----------------------------------------------------------------------------

    def _apply(self, events: list[OrderEvent], now_ms: int) -> None:
        touched: dict[tuple[str, Wallet], tuple[set[str], set[str]]] = {}
        for event in events:
            order = event.order
            account, wallet = split_core_account(order.account)
            order_id = int(order.exchange_order_id)
            extra = self.extras.get(order_id)
            if extra is None:  # the venue's own orders (liquidation)
                extra = self.extras[order_id] = OrderExtra(account, wallet, "MARKET", "GTC")
            listing = self.listing(wallet.family, order.symbol)
            trade = event.trade
            if trade is not None:
                execution = "TRADE"
            elif order.status is OrderStatus.NEW:
                execution = "NEW"
            else:
                execution = order.status.value
            quote_qty = trade.quantity * trade.price if trade is not None else ZERO
            extra.cum_quote += quote_qty
            entry = OrderLogEntry(
                seq=self._next_seq,
                time_ms=now_ms,
                account=account,
                wallet=wallet,
                execution=execution,
                order=order,
                liquidation=event.liquidation,
                wire_type=extra.wire_type,
                wire_time_in_force=extra.wire_time_in_force,
                side_effect=extra.side_effect,
                cum_quote=extra.cum_quote,
            )
            self._next_seq += 1
            if trade is not None:
                entry = self._record_fill(entry, event, listing, quote_qty)
                assets, symbols = touched.setdefault((account, wallet), (set(), set()))
                instrument = listing.instrument
                assets.update(
                    (instrument.quote,) if wallet is Wallet.USDM else (instrument.base, instrument.quote)
                )
                symbols.add(order.symbol)
            elif wallet is not Wallet.USDM:
                # a spot lock taken or released
                assets, _ = touched.setdefault((account, wallet), (set(), set()))
                assets.update((listing.instrument.base, listing.instrument.quote))
            self.orders[order_id] = order
            self._by_client[(order.account, order.client_order_id)] = order_id
            self.order_log.append(entry)
            self.unsaved.append(entry)
            # the asset the trade's commission was paid in (a spot buy's: the base asset)
            fee_asset = trade.fee_asset if trade is not None else listing.instrument.quote
            self._emit(OrderChanged(entry, extra, fee_asset))
        for (account, wallet), (assets, symbols) in touched.items():
            self._emit(
                AccountChanged(
                    account, wallet, "ORDER", tuple(sorted(assets)), tuple(sorted(symbols)), now_ms
                )
            )

    def _record_fill(
        self, entry: OrderLogEntry, event: OrderEvent, listing: Listing, quote_qty: Decimal
    ) -> OrderLogEntry:
        """Record a fill: the trade, and for futures its realized PnL and commission."""
        trade = event.trade
        assert trade is not None
        order = entry.order
        trade_id = int(trade.trade_id)
        record = TradeRecord(
            trade_id=trade_id,
            order_id=int(order.exchange_order_id),
            client_order_id=order.client_order_id,
            account=entry.account,
            wallet=entry.wallet,
            symbol=order.symbol,
            side=order.side,
            price=trade.price,
            quantity=trade.quantity,
            quote_quantity=quote_qty,
            commission=trade.fee,
            commission_asset=trade.fee_asset,
            realized_pnl=event.realized_pnl,
            maker=trade.is_maker,
            time_ms=entry.time_ms,
        )
        self.trades.append(record)
        self.unsaved.append(record)
        if entry.wallet is Wallet.USDM:
            quote = listing.instrument.quote
            if event.realized_pnl:
                self._record_ledger(
                    entry.account,
                    entry.wallet,
                    "REALIZED_PNL",
                    quote,
                    event.realized_pnl,
                    order.symbol,
                    entry.time_ms,
                    trade.trade_id,
                )
            if trade.fee:
                self._record_ledger(
                    entry.account,
                    entry.wallet,
                    "COMMISSION",
                    quote,
                    -trade.fee,
                    order.symbol,
                    entry.time_ms,
                    trade.trade_id,
                )
        return replace(
            entry,
            trade_id=trade_id,
            last_price=trade.price,
            last_quantity=trade.quantity,
            commission=trade.fee,
            realized_pnl=event.realized_pnl,
            maker=trade.is_maker,
        )

    def _record_ledger(
        self,
        account: str,
        wallet: Wallet,
        kind: str,
        asset: str,
        amount: Decimal,
        symbol: str,
        now_ms: int,
        trade_id: str = "",
    ) -> None:
        entry = LedgerEntry(
            self._next_tran_id, account, wallet, kind, asset, amount, symbol, now_ms, trade_id
        )
        self._next_tran_id += 1
        self.ledger.append(entry)
        self.unsaved.append(entry)

    # -- funding ----------------------------------------------------------------------------

    def set_book_depth(self, family: Family, symbol: str, depth: Decimal | None) -> None:
        """The quantity on the book at the touch from now on (``None``: unlimited; see
        :class:`~opensqt.exchange.matching.MarketRules`).

        Raises:
            BinanceError: no such market.
            ValueError: ``depth`` is not a positive multiple of the market's step. Nothing changed.
        """
        self.check_book_depth(family, symbol, depth)
        self.core.set_book_depth(family.value, symbol, depth)
        self.book_overrides[(family, symbol)] = depth
        self.dirty = True

    def check_book_depth(self, family: Family, symbol: str, depth: Decimal | None) -> None:
        """Refuse (ValueError) a book depth that is not a positive multiple of the step."""
        step = self.listing(family, symbol).instrument.step_size
        if depth is not None and (not depth.is_finite() or depth <= 0 or depth % step != 0):
            raise ValueError(
                f"depth must be a positive multiple of the step size {step} of {family.value} "
                f"{symbol}, got {depth}"
            )

    def book_depth(self, family: Family, symbol: str) -> Decimal | None:
        return self.core.rules(family.value, symbol).book_depth

    def set_funding_rate(self, symbol: str, rate: Decimal) -> None:
        self.listing(Family.USDM, symbol)
        self.funding[symbol].rate = rate
        self.dirty = True

    def settle_funding(self, symbol: str, now_ms: int, rate: Decimal | None = None) -> list[LedgerEntry]:
        """Settle funding on ``symbol`` now at ``rate`` (default: the current rate) and the
        mark price; move the next funding time one interval past now."""
        listing = self.listing(Family.USDM, symbol)
        state = self.funding[symbol]
        if rate is not None:
            state.rate = rate
        mark = self.last_price(Family.USDM, symbol)
        if mark is None:
            raise errors.no_price()
        payments = self.core.settle_funding(listing.core_venue, symbol, state.rate, now_ms)
        self.funding_history.setdefault(symbol, []).append((now_ms, state.rate, mark))
        state.next_ms = next_funding_ms(now_ms, listing.funding_interval_hours)
        self.dirty = True
        entries = []
        for payment in payments:
            account, wallet = split_core_account(payment.account)
            self._record_ledger(
                account, wallet, "FUNDING_FEE", listing.instrument.quote, payment.amount, symbol, now_ms
            )
            entries.append(self.ledger[-1])
            self._emit(
                AccountChanged(account, wallet, "FUNDING_FEE", (listing.instrument.quote,), (symbol,), now_ms)
            )
        return entries

    def settle_due_funding(self, now_ms: int) -> int:
        """Settle every perpetual whose funding time has come; returns how many settled."""
        settled = 0
        for symbol, state in self.funding.items():
            if state.next_ms <= now_ms and self.last_price(Family.USDM, symbol) is not None:
                self.settle_funding(symbol, now_ms)
                settled += 1
        return settled

    # -- snapshot ---------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything but the append-only logs (order log, trades, ledger), as JSON data; the
        orders themselves are rebuilt from the order log on :meth:`restore`, so the snapshot
        stays as small as the open books."""
        return {
            "core": self.core.to_state(),
            "accounts": self.accounts,
            "funding": {
                symbol: {"rate": str(state.rate), "next_ms": state.next_ms}
                for symbol, state in self.funding.items()
            },
            "funding_history": {
                symbol: [[time_ms, str(rate), str(mark)] for time_ms, rate, mark in history]
                for symbol, history in self.funding_history.items()
            },
            "quotes": {
                f"{family.value}:{symbol}": [str(bid), str(ask)]
                for (family, symbol), (bid, ask) in self.quotes.items()
            },
            "next_seq": self._next_seq,
            "next_tran_id": self._next_tran_id,
            # only the depths set while running (POST /admin/book): the settings give the rest
            "book_depth": {
                f"{family.value}:{symbol}": None if depth is None else str(depth)
                for (family, symbol), depth in self.book_overrides.items()
            },
        }

    def restore(
        self,
        state: dict[str, Any],
        order_log: list[OrderLogEntry],
        trades: list[TradeRecord],
        ledger: list[LedgerEntry],
        now_ms: int,
    ) -> None:
        """Load a :meth:`to_state` snapshot and the saved logs (same markets required)."""
        self.core.restore(state["core"])
        self.accounts = {name: int(created) for name, created in state["accounts"].items()}
        self.orders = {}
        self.extras = {}
        self._by_client = {}
        for entry in order_log:
            order_id = int(entry.order.exchange_order_id)
            self.orders[order_id] = entry.order
            self.extras[order_id] = OrderExtra(
                entry.account,
                entry.wallet,
                entry.wire_type,
                entry.wire_time_in_force,
                cum_quote=entry.cum_quote,
                side_effect=entry.side_effect,
            )
            self._by_client[(entry.order.account, entry.order.client_order_id)] = order_id
        for symbol, data in state["funding"].items():
            if symbol in self.funding:
                self.funding[symbol] = FundingState(Decimal(data["rate"]), int(data["next_ms"]))
        self.funding_history = {
            symbol: [(int(time_ms), Decimal(rate), Decimal(mark)) for time_ms, rate, mark in history]
            for symbol, history in state["funding_history"].items()
        }
        self.quotes = {}
        for key, (bid, ask) in state["quotes"].items():
            family, _, symbol = key.partition(":")
            self.quotes[(Family(family), symbol)] = (Decimal(bid), Decimal(ask))
        self._next_seq = int(state["next_seq"])
        self._next_tran_id = int(state["next_tran_id"])
        self.book_overrides = {}
        for key, depth in state.get("book_depth", {}).items():
            family, _, symbol = key.partition(":")
            try:
                self.set_book_depth(Family(family), symbol, None if depth is None else Decimal(depth))
            except (ValueError, BinanceError) as exc:  # a market gone, or a new step size
                log.warning("paper_book_depth_dropped", market=key, depth=depth, error=str(exc))
        self.order_log = list(order_log)
        self.trades = list(trades)
        self.ledger = list(ledger)
        for (family, symbol), book in self.candles.items():
            last = self.last_price(family, symbol)
            if last is not None:
                book.on_price(now_ms, last)
        self.unsaved = []
        self.dirty = False


def _rejection(rejected: OrderRejected, family: Family, listing: Listing) -> BinanceError:
    reason = rejected.reason
    if reason is RejectReason.UNKNOWN_MARKET:
        return errors.invalid_symbol()
    if reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID:
        return errors.duplicate_client_id(family.value)
    if reason in (RejectReason.INSUFFICIENT_BALANCE, RejectReason.INSUFFICIENT_MARGIN):
        return errors.insufficient_balance()
    if reason is RejectReason.REDUCE_ONLY_REJECTED:
        return errors.reduce_only_rejected()
    if reason is RejectReason.NO_PRICE:
        return errors.no_price()
    if reason is RejectReason.UNKNOWN_ACCOUNT:
        return errors.invalid_api_key()
    return BinanceError(400, -1013, str(rejected))
