"""The venue core: accounts, order books of resting orders, matching, fees, positions, funding.

:class:`MatchingCore` simulates one venue against an exogenous market: the market's prices come
in (trades, quotes, or a price path from candles) and the core fills the participants' orders
that the price trades through. It is pure and deterministic: no I/O, no clock (every call takes
``now_ms``), no randomness. The backtester drives it directly; a paper exchange wraps it behind
an API.

What it simulates:

* markets: spot (balances, locks for open orders; MARGIN orders may borrow) and linear
  perpetuals (signed position, entry price, realized/unrealized PnL, leverage, cross-margin
  liquidation price, funding), each with maker/taker fees;
* orders: LIMIT GTC/IOC/FOK, post-only (expires instead of taking), MARKET, reduce-only
  (refused when it cannot reduce, clamped to the position when it fills);
* fills: a resting order fills at its limit price when the market trades through it (or touches
  it, see :class:`FillRule`); an order that is marketable on arrival fills at once at the
  current price, as taker. Liquidity is unlimited unless a market sets ``MarketRules.book_depth``
  (the quantity on the book at the touch, all an arriving order can take: a MARKET or IOC order
  fills that much and expires with the rest, a FOK order larger than it expires unfilled, a GTC
  limit order rests with the rest at its price); a reduce-only order may fill partly, then
  expire. A market may split fills into trades of at most
  ``MarketRules.max_trade_qty`` (one event per trade, the order PARTIALLY_FILLED until the
  last), and :meth:`MatchingCore.fill_partially` fills part of a resting order, which keeps
  resting (what a paper exchange uses to show a busy book).

Results are :class:`~opensqt.exchange.orders.OrderEvent` values holding domain
:class:`~opensqt.model.OrderUpdate` and :class:`~opensqt.model.Trade` objects; refusals raise
:class:`~opensqt.exchange.orders.OrderRejected` and change nothing.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from opensqt.exchange.accounts import Account, PerpPosition, apply_perp_fill
from opensqt.exchange.fees import FeeSchedule
from opensqt.exchange.orders import (
    FillRule,
    FundingPayment,
    OrderEvent,
    OrderRejected,
    OrderRequest,
    RejectReason,
    UnknownOrder,
)
from opensqt.exchange.state import decode, encode
from opensqt.model.enums import MarketType, OrderStatus, OrderType, Side, TimeInForce
from opensqt.model.events import OrderUpdate
from opensqt.model.instrument import Instrument, InstrumentRuleError
from opensqt.model.money import ZERO
from opensqt.model.resources import Order, Position, Trade

__all__ = ["MarketRules", "MatchingCore", "market_key"]

_ONE = Decimal(1)


def market_key(venue: str, symbol: str) -> str:
    """The key of a market inside the core: ``venue:symbol``."""
    return f"{venue}:{symbol}"


@dataclass(frozen=True, slots=True)
class MarketRules:
    """Simulation parameters of one market.

    Attributes:
        fees: maker and taker rates.
        maintenance_margin_rate: perpetuals: the maintenance margin as a fraction of the
            position's notional, used for the liquidation price.
        max_leverage: perpetuals: the highest leverage an account may set.
        buy_fee_in_base: spot and margin: a buy pays its commission in the base asset it
            receives (Binance's rule when fees are not paid in BNB: buying 1 BTC at 0.1% leaves
            0.999 BTC), rounded to ``base_fee_quantum``; otherwise every fee is in the quote asset.
        base_fee_quantum: the precision of a commission paid in the base asset (Binance keeps
            spot balances to 8 decimals).
        max_trade_qty: the most one trade fills; a larger fill is made of several trades,
            each its own event (``None``: every fill is one trade).
        book_depth: the quantity on the book at the touch: the most an order takes on arrival
            (``None``: unlimited). What it cannot take: a MARKET or IOC order expires with it,
            a FOK order larger than the depth expires unfilled, a GTC limit order rests with it
            at its limit price (its funds checked, and the rest locked, at that price). The
            rest is then the best order on its side, through the last price; a simplification:
            it fills, as maker at its price, when the market next trades through it (for a buy,
            a fall; a rise alone does not fill it) or a quote crosses it.
    """

    fees: FeeSchedule = field(default_factory=FeeSchedule)
    maintenance_margin_rate: Decimal = Decimal("0.004")
    max_leverage: Decimal = Decimal(125)
    buy_fee_in_base: bool = False
    base_fee_quantum: Decimal = Decimal("0.00000001")
    max_trade_qty: Decimal | None = None
    book_depth: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("max_trade_qty", "book_depth"):
            value: Decimal | None = getattr(self, name)
            if value is not None and not (value.is_finite() and value > 0):
                raise ValueError(f"{name} must be a positive quantity, got {value}")


class _Resting:
    """A working order on the book (mutable; ``order`` is replaced as it changes)."""

    __slots__ = ("lock_amount", "lock_asset", "order", "sequence")

    def __init__(self, order: Order, sequence: int, lock_asset: str, lock_amount: Decimal) -> None:
        self.order = order
        self.sequence = sequence
        self.lock_asset = lock_asset
        self.lock_amount = lock_amount

    def sort_key(self) -> tuple[Decimal, int]:
        price = self.order.price
        return (-price if self.order.side is Side.BUY else price, self.sequence)


class _Market:
    __slots__ = ("ask", "bid", "buys", "holders", "instrument", "is_perp", "key", "last", "rules", "sells")

    def __init__(self, instrument: Instrument, rules: MarketRules) -> None:
        self.instrument = instrument
        self.rules = rules
        self.key = market_key(instrument.venue, instrument.symbol)
        self.is_perp = instrument.market_type is MarketType.PERPETUAL
        self.last: Decimal | None = None
        self.bid: Decimal | None = None
        self.ask: Decimal | None = None
        # best first: buys by price descending, sells ascending; ties by arrival
        self.buys: list[_Resting] = []
        self.sells: list[_Resting] = []
        # accounts holding a position here (perpetuals), in order of first position
        self.holders: dict[str, None] = {}

    def book(self, side: Side) -> list[_Resting]:
        return self.buys if side is Side.BUY else self.sells


class MatchingCore:
    """A deterministic venue simulator (see the module docstring).

    Args:
        fill_rule: when resting orders fill against the market price.
        keep_history: keep final orders so :meth:`get_order` finds them (a paper exchange needs
            it; a long backtest may turn it off to save memory).

    ``version`` increases with every change of books, balances or positions, so a caller can
    cache what it derives (e.g. :meth:`quiet_range`) until the next change.
    """

    def __init__(self, *, fill_rule: FillRule = FillRule.THROUGH, keep_history: bool = True) -> None:
        self.fill_rule = fill_rule
        self.keep_history = keep_history
        self.version = 0
        self._markets: dict[str, _Market] = {}
        self._accounts: dict[str, Account] = {}
        self._open: dict[str, _Resting] = {}
        self._by_client: dict[tuple[str, str], str] = {}
        self._history: dict[tuple[str, str], Order] = {}
        self._next_order_id = 1
        self._next_event_id = 1

    # -- set-up ---------------------------------------------------------------------------------

    def add_market(self, instrument: Instrument, rules: MarketRules | None = None) -> None:
        """List ``instrument`` (keyed ``venue:symbol``) with its fees and margin rules."""
        key = market_key(instrument.venue, instrument.symbol)
        if key in self._markets:
            raise ValueError(f"market {key} is listed twice")
        self._markets[key] = _Market(instrument, rules or MarketRules())

    def rules(self, venue: str, symbol: str) -> MarketRules:
        """A market's rules as they stand."""
        return self._market(venue, symbol).rules

    def set_book_depth(self, venue: str, symbol: str, depth: Decimal | None) -> None:
        """Change a market's ``book_depth`` (``None``: unlimited) for the orders that arrive from
        now on (a book that thins out in a crash, or fills again).

        Raises:
            ValueError: ``depth`` is not a positive quantity. Nothing changed.
        """
        market = self._market(venue, symbol)
        market.rules = replace(market.rules, book_depth=depth)

    def instrument(self, venue: str, symbol: str) -> Instrument:
        return self._market(venue, symbol).instrument

    def open_account(self, account_id: str, balances: dict[str, Decimal] | None = None) -> Account:
        """Create an account with starting balances."""
        if account_id in self._accounts:
            raise ValueError(f"account {account_id!r} exists")
        account = Account(account_id, balances=dict(balances or {}))
        self._accounts[account_id] = account
        self.version += 1
        return account

    def account(self, account_id: str) -> Account:
        """The account (live object; treat it as read-only)."""
        account = self._accounts.get(account_id)
        if account is None:
            raise OrderRejected(RejectReason.UNKNOWN_ACCOUNT, f"no account {account_id!r}")
        return account

    def set_leverage(self, account_id: str, venue: str, symbol: str, leverage: Decimal) -> None:
        """Set the leverage of a perpetual market for an account (initial margin = notional / it)."""
        market = self._market(venue, symbol)
        if not market.is_perp:
            raise ValueError(f"{market.key} is not a perpetual; leverage applies to perpetuals")
        if not leverage.is_finite() or not 1 <= leverage <= market.rules.max_leverage:
            raise ValueError(f"leverage must be in [1, {market.rules.max_leverage}], got {leverage}")
        self.account(account_id).leverage[market.key] = leverage
        self.version += 1

    # -- market data ----------------------------------------------------------------------------

    def last_price(self, venue: str, symbol: str) -> Decimal | None:
        """The market's last price (trade, path point or mid), ``None`` before the first."""
        return self._market(venue, symbol).last

    def set_mark(self, venue: str, symbol: str, price: Decimal) -> None:
        """Set the last price without matching (e.g. a first price, or a mark-price stream)."""
        self._market(venue, symbol).last = price

    def sweep(self, venue: str, symbol: str, price: Decimal, now_ms: int) -> list[OrderEvent]:
        """The market price moves continuously from the last price to ``price``.

        Resting orders the move trades through fill at their limit price (maker), in the order
        the path meets them; positions whose liquidation price is on the path are liquidated
        where the path meets it. The first price of a market only sets the last price.
        """
        market = self._market(venue, symbol)
        start = market.last
        market.last = price
        market.bid = market.ask = None
        if start is None or price == start:
            return []
        events: list[OrderEvent] = []
        falling = price < start
        book = market.buys if falling else market.sells
        touch = self.fill_rule is FillRule.TOUCH
        while True:
            resting = book[0] if book else None
            if resting is not None:
                limit = resting.order.price
                crossed = (
                    (limit > price or (touch and limit == price))
                    if falling
                    else (limit < price or (touch and limit == price))
                )
                if not crossed:
                    resting = None
            liquidation = self._next_liquidation(market, price, falling) if market.holders else None
            if liquidation is not None and (
                resting is None
                or (liquidation[1] > resting.order.price if falling else liquidation[1] < resting.order.price)
            ):
                events.extend(self._liquidate(market, liquidation[0], liquidation[1], now_ms))
                continue
            if resting is None:
                return events
            events.extend(self._fill_resting(market, resting, now_ms))

    def on_trade(self, venue: str, symbol: str, price: Decimal, now_ms: int) -> list[OrderEvent]:
        """A trade printed at ``price``: same as :meth:`sweep` to it."""
        return self.sweep(venue, symbol, price, now_ms)

    def on_quote(self, venue: str, symbol: str, bid: Decimal, ask: Decimal, now_ms: int) -> list[OrderEvent]:
        """New best bid and ask: resting BUYs the ask crosses and SELLs the bid crosses fill at
        their limit (maker); positions whose liquidation price the mid reaches are liquidated.

        The last price becomes the mid (for marks, PnL and liquidation); marketability of new
        orders is judged against the quotes until the next :meth:`sweep`.
        """
        market = self._market(venue, symbol)
        if not bid < ask:
            raise ValueError(f"{market.key}: bid {bid} must be below ask {ask}")
        mid = (bid + ask) / 2
        market.last = mid
        market.bid = bid
        market.ask = ask
        touch = self.fill_rule is FillRule.TOUCH
        events: list[OrderEvent] = []
        buys, sells = market.buys, market.sells
        while buys and (buys[0].order.price > ask or (touch and buys[0].order.price == ask)):
            events.extend(self._fill_resting(market, buys[0], now_ms))
        while sells and (sells[0].order.price < bid or (touch and sells[0].order.price == bid)):
            events.extend(self._fill_resting(market, sells[0], now_ms))
        for falling in (True, False):
            while market.holders and (found := self._next_liquidation(market, mid, falling)) is not None:
                events.extend(self._liquidate(market, found[0], found[1], now_ms))
        return events

    def quiet_range(self, venue: str, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """``(low, high)``: while the price stays within ``low <= p <= high`` (with quotes: both
        the bid and the ask do) nothing fills and nothing is liquidated. ``None`` means unbounded.
        Prices are assumed on the instrument's tick.
        """
        market = self._market(venue, symbol)
        tick = market.instrument.tick_size
        touch = self.fill_rule is FillRule.TOUCH
        low: Decimal | None = None
        high: Decimal | None = None
        if market.buys:
            low = market.buys[0].order.price + (tick if touch else ZERO)
        if market.sells:
            high = market.sells[0].order.price - (tick if touch else ZERO)
        for account_id in market.holders:
            account = self._accounts[account_id]
            size = account.positions[market.key].size
            liq = self.liquidation_price(account_id, market.instrument.venue, market.instrument.symbol)
            if liq <= 0:
                continue
            if size > 0:
                safe = market.instrument.round_price(liq, mode="down") + tick
                low = safe if low is None else max(low, safe)
            else:
                safe = market.instrument.round_price(liq, mode="up") - tick
                high = safe if high is None else min(high, safe)
        return low, high

    # -- orders ---------------------------------------------------------------------------------

    def submit(self, request: OrderRequest, now_ms: int) -> list[OrderEvent]:
        """Accept an order: it rests, fills at once (taker), or expires (post-only, IOC, FOK).

        Returns the order's events: NEW when it rests; a fill; or EXPIRED.

        Raises:
            OrderRejected: the order is invalid, its client id is in use by an open order, funds
                or margin are insufficient, or a reduce-only order cannot reduce. Nothing changed.
        """
        market = self._market(request.venue, request.symbol, request.client_order_id)
        account = self._account_for(request)
        instrument = market.instrument
        market_type = request.market_type or instrument.market_type
        self._validate(request, market, market_type)
        client_id = request.client_order_id or f"core-{self._next_order_id}"
        if (account.account_id, client_id) in self._by_client:
            raise OrderRejected(
                RejectReason.DUPLICATE_CLIENT_ORDER_ID,
                f"client order id {client_id!r} is already used by an open order",
                client_id,
            )
        is_market = request.order_type is OrderType.MARKET
        taker_price = self._taker_price(market, request.side, None if is_market else request.price)
        if is_market and taker_price is None:
            raise OrderRejected(RejectReason.NO_PRICE, f"{market.key} has no price yet", client_id)
        if request.reduce_only:
            self._check_reduce_only(account, market, request, client_id)
        depth = market.rules.book_depth
        # the book at the touch cannot take all of it: what it leaves expires, or rests (GTC)
        thin = taker_price is not None and depth is not None and request.quantity > depth
        rests_rest = (
            thin and not is_market and request.time_in_force is TimeInForce.GTC and not request.post_only
        )
        # a limit order that may rest is paid for at its limit price, as a venue locks it
        reference = taker_price if taker_price is not None and not rests_rest else request.price
        lock_asset, lock_amount = self._check_funds(
            account, market, market_type, request, reference, client_id
        )

        order = Order(
            symbol=instrument.symbol,
            side=request.side,
            order_type=request.order_type,
            quantity=request.quantity,
            price=ZERO if is_market else request.price,
            client_order_id=client_id,
            exchange_order_id=str(self._next_order_id),
            venue=instrument.venue,
            account=account.account_id,
            market_type=market_type,
            time_in_force=request.time_in_force,
            post_only=request.post_only,
            reduce_only=request.reduce_only,
            status=OrderStatus.NEW,
            created_ms=now_ms,
            updated_ms=now_ms,
        )
        self._next_order_id += 1
        self.version += 1
        if taker_price is not None:
            if request.post_only:
                return [
                    self._finish(order, OrderStatus.EXPIRED, now_ms, "post-only order would take liquidity")
                ]
            if thin and not is_market and request.time_in_force is TimeInForce.FOK:
                reason = f"FOK order: the book holds only {depth} at the touch"
                return [self._finish(order, OrderStatus.EXPIRED, now_ms, reason)]
            taker = _Resting(order, 0, "", ZERO)
            events = self._fill(
                market, taker, taker_price, maker=False, now_ms=now_ms, upto=depth if thin else None
            )
            last = events[-1].order
            if not thin or last.status.is_final:
                return events
            if not rests_rest:  # MARKET or IOC: the book is empty at the touch
                events.append(self._finish(last, OrderStatus.EXPIRED, now_ms, "no more liquidity"))
                return events
            # the lock of what rests: the same proportion _trade releases as it fills
            lock = lock_amount * last.remaining_qty / order.quantity
            self._rest(account, market, _Resting(last, int(order.exchange_order_id), lock_asset, lock))
            return events
        if request.time_in_force is not TimeInForce.GTC:
            reason = f"{request.time_in_force.value} order is not marketable"
            return [self._finish(order, OrderStatus.EXPIRED, now_ms, reason)]
        self._rest(account, market, _Resting(order, int(order.exchange_order_id), lock_asset, lock_amount))
        return [self._event(order, reason="accepted")]

    def _rest(self, account: Account, market: _Market, resting: _Resting) -> None:
        """Put an order on the book, locking what it holds back."""
        if resting.lock_amount:
            account.lock(resting.lock_asset, resting.lock_amount)
        order = resting.order
        bisect.insort(market.book(order.side), resting, key=_Resting.sort_key)
        self._open[order.exchange_order_id] = resting
        self._by_client[(account.account_id, order.client_order_id)] = order.exchange_order_id

    def cancel(
        self,
        account_id: str,
        venue: str,
        symbol: str,
        now_ms: int,
        *,
        client_order_id: str = "",
        exchange_order_id: str = "",
    ) -> OrderEvent:
        """Cancel one open order by client or exchange id.

        Raises:
            UnknownOrder: no such open order (already final, or never existed).
        """
        resting = self._open_order(account_id, venue, symbol, client_order_id, exchange_order_id)
        market = self._markets[market_key(venue, symbol)]
        self._remove(market, resting)
        self.version += 1
        return self._finish(resting.order, OrderStatus.CANCELED, now_ms, "canceled")

    def fill_partially(
        self,
        account_id: str,
        venue: str,
        symbol: str,
        qty: Decimal,
        now_ms: int,
        *,
        client_order_id: str = "",
        exchange_order_id: str = "",
    ) -> list[OrderEvent]:
        """A taker trades ``qty`` against one resting order, at its limit price (the order is
        maker): the order keeps resting, PARTIALLY_FILLED, unless that was all it had left.
        One trade, whatever ``max_trade_qty`` says (a reduce-only order still stops at the
        position, and expires there).

        Raises:
            UnknownOrder: no such open order.
            ValueError: ``qty`` is not a positive multiple of the step size, or exceeds what
                the order has left. Nothing changed.
        """
        resting = self._open_order(account_id, venue, symbol, client_order_id, exchange_order_id)
        market = self._markets[market_key(venue, symbol)]
        remaining = resting.order.remaining_qty
        step = market.instrument.step_size
        if not (qty.is_finite() and qty > 0) or (step > 0 and qty % step != 0):
            raise ValueError(f"qty must be a positive multiple of the step size {step}, got {qty}")
        if qty > remaining:
            raise ValueError(f"qty {qty} exceeds what the order has left ({remaining})")
        return [self._trade(market, resting, resting.order.price, qty, maker=True, now_ms=now_ms)]

    def cancel_all(self, account_id: str, venue: str, symbol: str, now_ms: int) -> list[OrderEvent]:
        """Cancel every open order of the account on one market."""
        market = self._market(venue, symbol)
        mine = [r for r in (*market.buys, *market.sells) if r.order.account == account_id]
        mine.sort(key=lambda resting: resting.sequence)
        return [
            self.cancel(account_id, venue, symbol, now_ms, exchange_order_id=r.order.exchange_order_id)
            for r in mine
        ]

    def open_orders(self, account_id: str, venue: str = "", symbol: str = "") -> list[Order]:
        """The account's open orders (optionally of one market), oldest first."""
        return [
            resting.order
            for resting in self._open.values()
            if resting.order.account == account_id
            and (not venue or resting.order.venue == venue)
            and (not symbol or resting.order.symbol == symbol)
        ]

    def get_order(self, account_id: str, client_order_id: str) -> Order | None:
        """An open order, or a final one when history is kept, by client id."""
        exchange_id = self._by_client.get((account_id, client_order_id))
        if exchange_id is not None:
            return self._open[exchange_id].order
        return self._history.get((account_id, client_order_id))

    # -- positions, equity, funding -------------------------------------------------------------

    def position(self, account_id: str, venue: str, symbol: str) -> Position:
        """The account's perpetual position with mark, unrealized PnL, leverage and liquidation."""
        market = self._market(venue, symbol)
        account = self.account(account_id)
        held = account.positions.get(market.key) or PerpPosition()
        mark = market.last or ZERO
        return Position(
            symbol=symbol,
            size=held.size,
            entry_price=held.entry_price,
            mark_price=mark,
            liquidation_price=self.liquidation_price(account_id, venue, symbol),
            unrealized_pnl=held.unrealized_pnl(mark) if mark else ZERO,
            leverage=account.leverage.get(market.key, _ONE),
            venue=venue,
            account=account_id,
            market_type=market.instrument.market_type,
        )

    def liquidation_price(self, account_id: str, venue: str, symbol: str) -> Decimal:
        """Cross-margin liquidation price of the account's position (0: none).

        The wallet in the quote asset plus the other positions' unrealized PnL, less their
        maintenance margin, backs the position; it is liquidated where its equity falls to its
        maintenance margin: longs at ``(s*e - W) / (s*(1 - mmr))``, shorts at
        ``(W + q*e) / (q*(1 + mmr))``.
        """
        market = self._market(venue, symbol)
        account = self.account(account_id)
        held = account.positions.get(market.key)
        if not market.is_perp or held is None or held.size == 0:
            return ZERO
        quote = market.instrument.quote
        wallet = account.balance(quote)
        for key, other in account.positions.items():
            other_market = self._markets[key]
            if key == market.key or other.size == 0 or other_market.instrument.quote != quote:
                continue
            mark = other_market.last or other.entry_price
            wallet += (
                other.unrealized_pnl(mark)
                - abs(other.size) * mark * other_market.rules.maintenance_margin_rate
            )
        mmr = market.rules.maintenance_margin_rate
        size = held.size
        if size > 0:
            price = (size * held.entry_price - wallet) / (size * (_ONE - mmr))
        else:
            price = (wallet - size * held.entry_price) / (-size * (_ONE + mmr))
        return price if price > 0 else ZERO

    def equity(self, account_id: str, quote: str) -> Decimal:
        """Account value in ``quote``: its balance, other assets at the last price of their spot
        market in ``quote``, and the unrealized PnL of perpetuals settled in ``quote``."""
        account = self.account(account_id)
        total = account.balance(quote)
        for asset, amount in account.balances.items():
            if asset == quote or not amount:
                continue
            price = self._spot_price(asset, quote)
            if price is not None:
                total += amount * price
        for key, held in account.positions.items():
            market = self._markets[key]
            if held.size and market.instrument.quote == quote and market.last is not None:
                total += held.unrealized_pnl(market.last)
        return total

    def settle_funding(
        self, venue: str, symbol: str, rate: Decimal, now_ms: int, mark_price: Decimal | None = None
    ) -> list[FundingPayment]:
        """Settle one funding event: each position pays ``size * mark * rate`` (longs pay a positive
        rate to shorts). ``mark_price`` defaults to the last price."""
        market = self._market(venue, symbol)
        if not market.is_perp:
            raise ValueError(f"{market.key} is not a perpetual; it has no funding")
        mark = mark_price if mark_price is not None else market.last
        if mark is None:
            raise ValueError(f"{market.key} has no price to settle funding at")
        payments: list[FundingPayment] = []
        quote = market.instrument.quote
        for account_id in market.holders:
            account = self._accounts[account_id]
            held = account.positions[market.key]
            amount = -held.size * mark * rate
            account.credit(quote, amount)
            held.funding += amount
            account.funding_paid += amount
            payments.append(FundingPayment(account_id, venue, symbol, rate, mark, held.size, amount, now_ms))
        if payments:
            self.version += 1
        return payments

    # -- snapshot -------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything that changes, as plain JSON data (markets and rules are configuration)."""
        return {
            "version": self.version,
            "next_order_id": self._next_order_id,
            "next_event_id": self._next_event_id,
            "accounts": [account.to_state() for account in self._accounts.values()],
            "markets": {
                key: {
                    "last": None if m.last is None else str(m.last),
                    "bid": None if m.bid is None else str(m.bid),
                    "ask": None if m.ask is None else str(m.ask),
                    "holders": list(m.holders),
                }
                for key, m in self._markets.items()
            },
            "open": [
                {
                    "order": encode(r.order),
                    "sequence": r.sequence,
                    "lock_asset": r.lock_asset,
                    "lock_amount": str(r.lock_amount),
                }
                for r in self._open.values()
            ],
            "history": [encode(order) for order in self._history.values()],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the accounts, books and counters with a :meth:`to_state` snapshot.

        The markets must be listed already (same keys as when the snapshot was taken).
        """
        markets = state["markets"]
        if set(markets) != set(self._markets):
            raise ValueError(f"snapshot markets {sorted(markets)} differ from listed {sorted(self._markets)}")
        self._accounts = {a["account_id"]: Account.from_state(a) for a in state["accounts"]}
        self._open = {}
        self._by_client = {}
        for key, data in markets.items():
            market = self._markets[key]
            market.last = None if data["last"] is None else Decimal(data["last"])
            market.bid = None if data["bid"] is None else Decimal(data["bid"])
            market.ask = None if data["ask"] is None else Decimal(data["ask"])
            market.holders = dict.fromkeys(data["holders"])
            market.buys = []
            market.sells = []
        for item in state["open"]:
            order = decode(Order, item["order"])
            resting = _Resting(order, item["sequence"], item["lock_asset"], Decimal(item["lock_amount"]))
            market = self._markets[market_key(order.venue, order.symbol)]
            bisect.insort(market.book(order.side), resting, key=_Resting.sort_key)
            self._open[order.exchange_order_id] = resting
            self._by_client[(order.account, order.client_order_id)] = order.exchange_order_id
        self._history = {}
        for item in state["history"]:
            order = decode(Order, item)
            self._history[(order.account, order.client_order_id)] = order
        self._next_order_id = state["next_order_id"]
        self._next_event_id = state["next_event_id"]
        self.version = state["version"]

    # -- internals ------------------------------------------------------------------------------

    def _market(self, venue: str, symbol: str, client_order_id: str = "") -> _Market:
        market = self._markets.get(market_key(venue, symbol))
        if market is None:
            raise OrderRejected(
                RejectReason.UNKNOWN_MARKET, f"no market {market_key(venue, symbol)}", client_order_id
            )
        return market

    def _account_for(self, request: OrderRequest) -> Account:
        account = self._accounts.get(request.account)
        if account is None:
            raise OrderRejected(
                RejectReason.UNKNOWN_ACCOUNT, f"no account {request.account!r}", request.client_order_id
            )
        return account

    def _validate(self, request: OrderRequest, market: _Market, market_type: MarketType) -> None:
        instrument = market.instrument
        client_id = request.client_order_id
        is_market = request.order_type is OrderType.MARKET
        try:
            instrument.check_order(None, request.quantity)
            if not is_market:
                price = request.price
                if not price.is_finite() or price <= 0:
                    raise InstrumentRuleError("price", f"must be greater than zero, got {price}")
                if not instrument.is_on_tick(price):
                    raise InstrumentRuleError(
                        "price", f"{price} is not a multiple of tick size {instrument.tick_size}"
                    )
                if not request.reduce_only and price * request.quantity < instrument.min_notional:
                    raise InstrumentRuleError(
                        "quantity",
                        f"notional {price * request.quantity} is below the minimum notional "
                        f"{instrument.min_notional}",
                    )
        except InstrumentRuleError as error:
            raise OrderRejected(RejectReason.INVALID_ORDER, str(error), client_id) from error
        if is_market and request.post_only:
            raise OrderRejected(RejectReason.INVALID_ORDER, "a MARKET order cannot be post-only", client_id)
        if request.post_only and request.time_in_force is not TimeInForce.GTC:
            raise OrderRejected(RejectReason.INVALID_ORDER, "post-only orders are GTC", client_id)
        if market.is_perp != (market_type is MarketType.PERPETUAL):
            raise OrderRejected(
                RejectReason.INVALID_ORDER,
                f"a {market_type.value} order cannot trade "
                f"{instrument.market_type.value} market {market.key}",
                client_id,
            )
        if request.reduce_only and not market.is_perp:
            raise OrderRejected(RejectReason.INVALID_ORDER, "reduce-only applies to perpetuals", client_id)

    def _taker_price(self, market: _Market, side: Side, limit: Decimal | None) -> Decimal | None:
        """The price an arriving order would take at, or ``None`` when it would rest."""
        quoted = market.ask if side is Side.BUY else market.bid
        reference = quoted if quoted is not None else market.last
        if reference is None:
            return None
        if limit is None:
            return reference
        if quoted is not None or self.fill_rule is FillRule.TOUCH:
            marketable = reference <= limit if side is Side.BUY else reference >= limit
        else:
            marketable = reference < limit if side is Side.BUY else reference > limit
        return reference if marketable else None

    def _check_reduce_only(
        self, account: Account, market: _Market, request: OrderRequest, client_id: str
    ) -> None:
        held = account.positions.get(market.key)
        size = held.size if held is not None else ZERO
        if size == 0 or (size > 0) == (request.side is Side.BUY):
            raise OrderRejected(
                RejectReason.REDUCE_ONLY_REJECTED,
                f"reduce-only {request.side.value} cannot reduce position {size} on {market.key}",
                client_id,
            )

    def _check_funds(
        self,
        account: Account,
        market: _Market,
        market_type: MarketType,
        request: OrderRequest,
        price: Decimal,
        client_id: str,
    ) -> tuple[str, Decimal]:
        """Refuse an order the account cannot pay for; return what a resting order locks."""
        instrument = market.instrument
        qty = request.quantity
        taker = market.rules.fees.taker
        if market.is_perp:
            if request.reduce_only:
                return "", ZERO
            required = self._added_margin(account, market, request.side, qty, price)
            if required > 0:
                available = self._available_margin(account, instrument.quote)
                if required > available:
                    raise OrderRejected(
                        RejectReason.INSUFFICIENT_MARGIN,
                        f"order needs margin {required} {instrument.quote}, available {available}",
                        client_id,
                    )
            return "", ZERO
        if market_type is MarketType.MARGIN:
            return "", ZERO
        if request.side is Side.BUY:
            # a fee paid in the base asset comes out of what the buy receives, not the quote
            fee_rate = ZERO if market.rules.buy_fee_in_base else max(taker, market.rules.fees.maker, ZERO)
            asset, needed = instrument.quote, price * qty * (_ONE + fee_rate)
        else:
            asset, needed = instrument.base, qty
        free = account.free(asset)
        if needed > free:
            raise OrderRejected(
                RejectReason.INSUFFICIENT_BALANCE,
                f"order needs {needed} {asset}, free balance {free}",
                client_id,
            )
        return asset, needed

    def _added_margin(
        self, account: Account, market: _Market, side: Side, qty: Decimal, price: Decimal
    ) -> Decimal:
        """Initial margin for the part of an order that increases the position's size."""
        held = account.positions.get(market.key)
        size = held.size if held is not None else ZERO
        opening = qty if size == 0 or (size > 0) == (side is Side.BUY) else max(qty - abs(size), ZERO)
        return opening * price / account.leverage.get(market.key, _ONE)

    def _available_margin(self, account: Account, quote: str) -> Decimal:
        """Wallet + unrealized PnL - margin held by positions and by open orders that add exposure."""
        available = account.balance(quote)
        for key, held in account.positions.items():
            market = self._markets[key]
            if held.size == 0 or market.instrument.quote != quote:
                continue
            mark = market.last or held.entry_price
            leverage = account.leverage.get(key, _ONE)
            available += held.unrealized_pnl(mark) - abs(held.size) * mark / leverage
        for resting in self._open.values():
            order = resting.order
            if order.account != account.account_id or order.reduce_only:
                continue
            market = self._markets[market_key(order.venue, order.symbol)]
            if market.is_perp and market.instrument.quote == quote:
                available -= self._added_margin(account, market, order.side, order.remaining_qty, order.price)
        return available

    def _spot_price(self, asset: str, quote: str) -> Decimal | None:
        for market in self._markets.values():
            instrument = market.instrument
            if not market.is_perp and instrument.base == asset and instrument.quote == quote:
                return market.last
        return None

    def _find_open(
        self, account_id: str, venue: str, symbol: str, client_order_id: str, exchange_order_id: str
    ) -> _Resting | None:
        exchange_id = exchange_order_id or self._by_client.get((account_id, client_order_id), "")
        resting = self._open.get(exchange_id)
        if resting is None:
            return None
        order = resting.order
        if order.account != account_id or order.venue != venue or order.symbol != symbol:
            return None
        return resting

    def _open_order(
        self, account_id: str, venue: str, symbol: str, client_order_id: str, exchange_order_id: str
    ) -> _Resting:
        """An open order by client or exchange id (:class:`UnknownOrder` when there is none)."""
        resting = self._find_open(account_id, venue, symbol, client_order_id, exchange_order_id)
        if resting is None:
            raise UnknownOrder(
                f"no open order {client_order_id or exchange_order_id!r} of {account_id!r} on "
                f"{market_key(venue, symbol)}"
            )
        return resting

    def _remove(self, market: _Market, resting: _Resting) -> None:
        book = market.book(resting.order.side)
        book.pop(bisect.bisect_left(book, resting.sort_key(), key=_Resting.sort_key))
        order = resting.order
        del self._open[order.exchange_order_id]
        del self._by_client[(order.account, order.client_order_id)]
        if resting.lock_amount:
            self._accounts[order.account].unlock(resting.lock_asset, resting.lock_amount)

    def _fill_resting(self, market: _Market, resting: _Resting, now_ms: int) -> list[OrderEvent]:
        return self._fill(market, resting, resting.order.price, maker=True, now_ms=now_ms)

    def _fill(
        self,
        market: _Market,
        resting: _Resting,
        price: Decimal,
        *,
        maker: bool,
        now_ms: int,
        upto: Decimal | None = None,
    ) -> list[OrderEvent]:
        """Fill an order completely (a reduce-only one up to the position), or ``upto`` that much
        of it, at ``price``: one trade, or trades of at most ``max_trade_qty``."""
        most = market.rules.max_trade_qty
        left = resting.order.remaining_qty if upto is None else min(upto, resting.order.remaining_qty)
        events: list[OrderEvent] = []
        while True:
            event = self._trade(
                market, resting, price, left if most is None else min(most, left), maker=maker, now_ms=now_ms
            )
            events.append(event)
            left -= event.update.last_fill_qty
            if event.order.status.is_final or left <= 0:
                return events

    def _trade(
        self, market: _Market, resting: _Resting, price: Decimal, qty: Decimal, *, maker: bool, now_ms: int
    ) -> OrderEvent:
        """One trade of ``qty`` (at most what the order has left; a reduce-only order's up to
        the position) at ``price``. An order on the book leaves it once it is final; while it
        rests, PARTIALLY_FILLED, its lock shrinks with what it filled."""
        self.version += 1
        order = resting.order
        account = self._accounts[order.account]
        remaining = order.remaining_qty
        on_book = self._open.get(order.exchange_order_id) is resting
        realized = ZERO
        capped = False
        if order.reduce_only:
            held = account.positions.get(market.key)
            size = held.size if held is not None else ZERO
            reducible = abs(size) if size != 0 and (size > 0) != (order.side is Side.BUY) else ZERO
            capped = qty > reducible
            qty = min(qty, reducible)
            if qty == 0:
                if on_book:
                    self._remove(market, resting)
                return self._finish(
                    order, OrderStatus.EXPIRED, now_ms, "reduce-only: no position left to reduce"
                )
        filled = order.filled_qty + qty
        if filled == order.quantity:
            status = OrderStatus.FILLED
        elif capped:
            status = OrderStatus.EXPIRED
        else:
            status = OrderStatus.PARTIALLY_FILLED
        if on_book:
            if status.is_final:
                self._remove(market, resting)  # releases what is still locked
            elif resting.lock_amount:
                release = resting.lock_amount * qty / remaining
                account.unlock(resting.lock_asset, release)
                resting.lock_amount -= release
        instrument = market.instrument
        notional = qty * price
        fee = market.rules.fees.fee(notional, maker=maker)
        fee_asset, fee_value = instrument.quote, fee
        if market.is_perp:
            held = account.position(market.key)
            held.size, held.entry_price, realized = apply_perp_fill(
                held.size, held.entry_price, order.side, qty, price
            )
            held.realized_pnl += realized
            held.fees += fee
            account.credit(instrument.quote, realized - fee)
            if held.size:
                market.holders[account.account_id] = None
            else:
                market.holders.pop(account.account_id, None)
        elif order.side is Side.BUY and market.rules.buy_fee_in_base:
            fee = market.rules.fees.fee(qty, maker=maker).quantize(
                market.rules.base_fee_quantum, rounding=ROUND_HALF_UP
            )
            fee_asset, fee_value = instrument.base, fee * price
            account.credit(instrument.base, qty - fee)
            account.credit(instrument.quote, -notional)
        else:
            signed = qty if order.side is Side.BUY else -qty
            account.credit(instrument.base, signed)
            account.credit(instrument.quote, -signed * price - fee)
        account.fees_paid += fee_value
        average = (order.filled_qty * order.average_price + notional) / filled
        updated = replace(order, status=status, filled_qty=filled, average_price=average, updated_ms=now_ms)
        resting.order = updated
        if status.is_final:
            self._remember(updated)
        trade = Trade(
            symbol=order.symbol,
            trade_id=str(self._next_event_id),
            side=order.side,
            price=price,
            quantity=qty,
            fee=fee,
            fee_asset=fee_asset,
            is_maker=maker,
            client_order_id=order.client_order_id,
            exchange_order_id=order.exchange_order_id,
            venue=order.venue,
            account=order.account,
            time_ms=now_ms,
        )
        reason = {
            OrderStatus.FILLED: "filled",
            OrderStatus.PARTIALLY_FILLED: "partially filled",
        }.get(status, "reduce-only: filled up to the position")
        return OrderEvent(self._update(updated, price, qty, reason), trade, realized)

    def _next_liquidation(self, market: _Market, price: Decimal, falling: bool) -> tuple[str, Decimal] | None:
        """The first position the move to ``price`` liquidates, with its liquidation price."""
        best: tuple[str, Decimal] | None = None
        instrument = market.instrument
        for account_id in market.holders:
            size = self._accounts[account_id].positions[market.key].size
            if (size > 0) != falling:
                continue
            liq = self.liquidation_price(account_id, instrument.venue, instrument.symbol)
            if liq <= 0 or (falling and price > liq) or (not falling and price < liq):
                continue
            if best is None or (liq > best[1] if falling else liq < best[1]):
                best = (account_id, liq)
        return best

    def _liquidate(self, market: _Market, account_id: str, price: Decimal, now_ms: int) -> list[OrderEvent]:
        """Cancel the account's orders on the market and close its position at ``price``."""
        instrument = market.instrument
        events = self.cancel_all(account_id, instrument.venue, instrument.symbol, now_ms)
        size = self._accounts[account_id].positions[market.key].size
        order = Order(
            symbol=instrument.symbol,
            side=Side.SELL if size > 0 else Side.BUY,
            order_type=OrderType.MARKET,
            quantity=abs(size),
            client_order_id=f"autoclose-{self._next_order_id}",
            exchange_order_id=str(self._next_order_id),
            venue=instrument.venue,
            account=account_id,
            market_type=MarketType.PERPETUAL,
            reduce_only=True,
            created_ms=now_ms,
            updated_ms=now_ms,
        )
        self._next_order_id += 1
        fills = self._fill(market, _Resting(order, 0, "", ZERO), price, maker=False, now_ms=now_ms)
        events.extend(replace(event, liquidation=True) for event in fills)
        return events

    def _finish(self, order: Order, status: OrderStatus, now_ms: int, reason: str) -> OrderEvent:
        updated = replace(order, status=status, updated_ms=now_ms)
        self._remember(updated)
        return self._event(updated, reason=reason)

    def _remember(self, order: Order) -> None:
        if self.keep_history:
            self._history[(order.account, order.client_order_id)] = order

    def _event(self, order: Order, *, reason: str) -> OrderEvent:
        return OrderEvent(self._update(order, ZERO, ZERO, reason))

    def _update(self, order: Order, fill_price: Decimal, fill_qty: Decimal, reason: str) -> OrderUpdate:
        event_id = f"core-{self._next_event_id}"
        self._next_event_id += 1
        return OrderUpdate(
            event_id=event_id,
            order=order,
            last_fill_price=fill_price,
            last_fill_qty=fill_qty,
            reason=reason,
            source="matching-core",
        )
