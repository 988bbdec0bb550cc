"""Binance JSON bodies for balances and positions: the futures account, balance and position
risk, leverage brackets, and the spot and cross-margin accounts."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opensqt.model.enums import Side
from opensqt.model.money import ZERO
from opensqt.paper.records import Family, Wallet, core_account
from opensqt.paper.reports import money_text, qty_text
from opensqt.paper.venue import PaperVenue
from opensqt.paper.wire import SPOT_DECIMALS, fmt

__all__ = ["BalanceReports", "FuturesSummary", "PositionFigures"]


@dataclass(frozen=True, slots=True)
class PositionFigures:
    """A futures position with the margins Binance reports."""

    symbol: str
    size: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    liquidation_price: Decimal
    notional: Decimal
    leverage: Decimal
    position_margin: Decimal
    order_margin: Decimal
    maintenance_margin: Decimal
    bid_notional: Decimal
    ask_notional: Decimal


@dataclass(frozen=True, slots=True)
class FuturesSummary:
    """A futures wallet: balance, unrealized PnL, margins and what remains available.

    The figures follow the matching core's margin rule (initial margin = notional / leverage
    for positions and for open orders that add exposure); they are recomputed here because the
    core keeps its own computation private.
    """

    asset: str
    wallet_balance: Decimal
    unrealized_pnl: Decimal
    position_margin: Decimal
    order_margin: Decimal
    maintenance_margin: Decimal
    positions: tuple[PositionFigures, ...]

    @property
    def margin_balance(self) -> Decimal:
        return self.wallet_balance + self.unrealized_pnl

    @property
    def initial_margin(self) -> Decimal:
        return self.position_margin + self.order_margin

    @property
    def available(self) -> Decimal:
        return self.margin_balance - self.initial_margin


class BalanceReports:
    """Builds the balance and position bodies; one instance per venue."""

    def __init__(self, venue: PaperVenue) -> None:
        self.venue = venue

    def futures_summary(self, account: str) -> FuturesSummary:
        venue = self.venue
        core = venue.core
        core_id = core_account(account, Wallet.USDM)
        held = core.account(core_id)
        quote = "USDT"
        figures: list[PositionFigures] = []
        open_orders = core.open_orders(core_id, Family.USDM.value)
        for listing in venue.family_listings(Family.USDM):
            symbol = listing.symbol
            position = core.position(core_id, Family.USDM.value, symbol)
            mine = [order for order in open_orders if order.symbol == symbol]
            if position.size == 0 and not mine:
                continue
            leverage = venue.leverage(account, symbol)
            mark = position.mark_price or position.entry_price
            notional = position.size * mark
            order_margin = ZERO
            bid_notional = ZERO
            ask_notional = ZERO
            for order in mine:
                if order.side is Side.BUY:
                    bid_notional += order.remaining_qty * order.price
                else:
                    ask_notional += order.remaining_qty * order.price
                if order.reduce_only:
                    continue
                size = position.size
                same = size == 0 or (size > 0) == (order.side is Side.BUY)
                opening = order.remaining_qty if same else max(order.remaining_qty - abs(size), ZERO)
                order_margin += opening * order.price / leverage
            figures.append(
                PositionFigures(
                    symbol=symbol,
                    size=position.size,
                    entry_price=position.entry_price,
                    mark_price=mark,
                    unrealized_pnl=position.unrealized_pnl,
                    liquidation_price=position.liquidation_price,
                    notional=notional,
                    leverage=leverage,
                    position_margin=abs(notional) / leverage,
                    order_margin=order_margin,
                    maintenance_margin=abs(notional) * listing.rules.maintenance_margin_rate,
                    bid_notional=bid_notional,
                    ask_notional=ask_notional,
                )
            )
        return FuturesSummary(
            asset=quote,
            wallet_balance=held.balance(quote),
            unrealized_pnl=sum((f.unrealized_pnl for f in figures), ZERO),
            position_margin=sum((f.position_margin for f in figures), ZERO),
            order_margin=sum((f.order_margin for f in figures), ZERO),
            maintenance_margin=sum((f.maintenance_margin for f in figures), ZERO),
            positions=tuple(figures),
        )

    def futures_account(self, account: str, now_ms: int, *, version: int) -> dict[str, Any]:
        summary = self.futures_summary(account)
        m = money_text
        held = self.venue.core.account(core_account(account, Wallet.USDM))
        assets = []
        for asset in sorted(set(held.balances) | {summary.asset}):
            is_quote = asset == summary.asset
            wallet = held.balance(asset)
            unrealized = summary.unrealized_pnl if is_quote else ZERO
            available = summary.available if is_quote else wallet
            row: dict[str, Any] = {
                "asset": asset,
                "walletBalance": m(wallet),
                "unrealizedProfit": m(unrealized),
                "marginBalance": m(wallet + unrealized),
                "maintMargin": m(summary.maintenance_margin if is_quote else ZERO),
                "initialMargin": m(summary.initial_margin if is_quote else ZERO),
                "positionInitialMargin": m(summary.position_margin if is_quote else ZERO),
                "openOrderInitialMargin": m(summary.order_margin if is_quote else ZERO),
                "crossWalletBalance": m(wallet),
                "crossUnPnl": m(unrealized),
                "availableBalance": m(available),
                "maxWithdrawAmount": m(max(available, ZERO)),
            }
            if version == 2:
                row["marginAvailable"] = True
            row["updateTime"] = now_ms
            assets.append(row)
        positions = []
        for figure in summary.positions:
            row = {
                "symbol": figure.symbol,
                "positionSide": "BOTH",
                "positionAmt": qty_text(self.venue.listing(Family.USDM, figure.symbol), figure.size),
                "unrealizedProfit": m(figure.unrealized_pnl),
                "isolatedMargin": m(ZERO),
                "notional": m(figure.notional),
                "isolatedWallet": "0",
                "initialMargin": m(figure.position_margin + figure.order_margin),
                "maintMargin": m(figure.maintenance_margin),
                "updateTime": now_ms,
            }
            if version == 2:
                row.update(
                    {
                        "leverage": format(figure.leverage.normalize(), "f"),
                        "entryPrice": m(figure.entry_price),
                        "isolated": False,
                        "maxNotional": "1000000000",
                        "positionInitialMargin": m(figure.position_margin),
                        "openOrderInitialMargin": m(figure.order_margin),
                    }
                )
            positions.append(row)
        return {
            "totalInitialMargin": m(summary.initial_margin),
            "totalMaintMargin": m(summary.maintenance_margin),
            "totalWalletBalance": m(summary.wallet_balance),
            "totalUnrealizedProfit": m(summary.unrealized_pnl),
            "totalMarginBalance": m(summary.margin_balance),
            "totalPositionInitialMargin": m(summary.position_margin),
            "totalOpenOrderInitialMargin": m(summary.order_margin),
            "totalCrossWalletBalance": m(summary.wallet_balance),
            "totalCrossUnPnl": m(summary.unrealized_pnl),
            "availableBalance": m(summary.available),
            "maxWithdrawAmount": m(max(summary.available, ZERO)),
            "assets": assets,
            "positions": positions,
        }

    def futures_balance(self, account: str, now_ms: int) -> list[dict[str, Any]]:
        summary = self.futures_summary(account)
        held = self.venue.core.account(core_account(account, Wallet.USDM))
        rows = []
        for asset in sorted(set(held.balances) | {summary.asset}):
            is_quote = asset == summary.asset
            wallet = held.balance(asset)
            available = summary.available if is_quote else wallet
            rows.append(
                {
                    "accountAlias": "paper",
                    "asset": asset,
                    "balance": money_text(wallet),
                    "crossWalletBalance": money_text(wallet),
                    "crossUnPnl": money_text(summary.unrealized_pnl if is_quote else ZERO),
                    "availableBalance": money_text(available),
                    "maxWithdrawAmount": money_text(max(available, ZERO)),
                    "marginAvailable": True,
                    "updateTime": now_ms,
                }
            )
        return rows

    def position_risk(
        self, account: str, symbol: str | None, now_ms: int, *, version: int
    ) -> list[dict[str, Any]]:
        summary = self.futures_summary(account)
        m = money_text
        rows = []
        by_symbol = {figure.symbol: figure for figure in summary.positions}
        listings = self.venue.family_listings(Family.USDM)
        for listing in listings:
            if symbol is not None and listing.symbol != symbol:
                continue
            figure = by_symbol.get(listing.symbol)
            if figure is None and version == 3:
                continue
            size = figure.size if figure else ZERO
            mark = (
                figure.mark_price if figure else (self.venue.last_price(Family.USDM, listing.symbol) or ZERO)
            )
            entry = figure.entry_price if figure else ZERO
            liquidation = figure.liquidation_price if figure else ZERO
            unrealized = figure.unrealized_pnl if figure else ZERO
            notional = figure.notional if figure else ZERO
            if version == 3:
                assert figure is not None
                rows.append(
                    {
                        "symbol": listing.symbol,
                        "positionSide": "BOTH",
                        "positionAmt": qty_text(listing, size),
                        "entryPrice": m(entry),
                        "breakEvenPrice": m(entry),
                        "markPrice": m(mark),
                        "unRealizedProfit": m(unrealized),
                        "liquidationPrice": m(liquidation),
                        "isolatedMargin": "0",
                        "notional": m(notional),
                        "marginAsset": listing.instrument.quote,
                        "isolatedWallet": "0",
                        "initialMargin": m(figure.position_margin + figure.order_margin),
                        "maintMargin": m(figure.maintenance_margin),
                        "positionInitialMargin": m(figure.position_margin),
                        "openOrderInitialMargin": m(figure.order_margin),
                        "adl": 0,
                        "bidNotional": m(figure.bid_notional),
                        "askNotional": m(figure.ask_notional),
                        "updateTime": now_ms,
                    }
                )
            else:
                rows.append(
                    {
                        "entryPrice": m(entry),
                        "breakEvenPrice": m(entry),
                        "marginType": "cross",
                        "isAutoAddMargin": "false",
                        "isolatedMargin": "0.00000000",
                        "leverage": format(self.venue.leverage(account, listing.symbol).normalize(), "f"),
                        "liquidationPrice": m(liquidation),
                        "markPrice": m(mark),
                        "maxNotionalValue": "1000000000",
                        "positionAmt": qty_text(listing, size),
                        "notional": m(notional),
                        "isolatedWallet": "0",
                        "symbol": listing.symbol,
                        "unRealizedProfit": m(unrealized),
                        "positionSide": "BOTH",
                        "updateTime": now_ms,
                    }
                )
        return rows

    def leverage_brackets(self, symbol: str | None) -> list[dict[str, Any]]:
        return [
            {
                "symbol": listing.symbol,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": int(listing.rules.max_leverage),
                        "notionalCap": 1_000_000_000,
                        "notionalFloor": 0,
                        "maintMarginRatio": float(listing.rules.maintenance_margin_rate),
                        "cum": 0.0,
                    }
                ],
            }
            for listing in self.venue.family_listings(Family.USDM)
            if symbol is None or listing.symbol == symbol
        ]

    def spot_account(self, account: str, now_ms: int, fees: tuple[Decimal, Decimal]) -> dict[str, Any]:
        d = SPOT_DECIMALS
        balances = self.venue.balances(account, Wallet.SPOT)
        locked = self.venue.locked(account, Wallet.SPOT)
        rows = [
            {
                "asset": asset,
                "free": fmt(balances.get(asset, ZERO) - locked.get(asset, ZERO), d),
                "locked": fmt(locked.get(asset, ZERO), d),
            }
            for asset in sorted(set(balances) | set(locked))
        ]
        maker, taker = fees
        return {
            "makerCommission": int(maker * 10000),
            "takerCommission": int(taker * 10000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": fmt(maker, d),
                "taker": fmt(taker, d),
                "buyer": fmt(ZERO, d),
                "seller": fmt(ZERO, d),
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": now_ms,
            "accountType": "SPOT",
            "balances": rows,
            "permissions": ["SPOT"],
            "uid": zlib.crc32(account.encode()),
        }

    def margin_account(self, account: str) -> dict[str, Any]:
        d = SPOT_DECIMALS
        balances = self.venue.balances(account, Wallet.MARGIN)
        locked = self.venue.locked(account, Wallet.MARGIN)
        rows = []
        for asset in sorted(set(balances) | set(locked)):
            balance = balances.get(asset, ZERO)
            held = locked.get(asset, ZERO)
            borrowed = -balance if balance < 0 else ZERO
            free = balance - held if balance > 0 else ZERO
            rows.append(
                {
                    "asset": asset,
                    "borrowed": fmt(borrowed, d),
                    "free": fmt(free, d),
                    "interest": fmt(ZERO, d),
                    "locked": fmt(held, d),
                    "netAsset": fmt(balance, d),
                }
            )
        assets, liabilities = self.venue.margin_totals(account)
        level = assets / liabilities if liabilities else Decimal(999)
        btc = self.venue.asset_price("BTC") or Decimal(1)
        return {
            "created": True,
            "borrowEnabled": True,
            "marginLevel": fmt(level, 8),
            "collateralMarginLevel": fmt(level, 8),
            "totalAssetOfBtc": fmt(assets / btc, d),
            "totalLiabilityOfBtc": fmt(liabilities / btc, d),
            "totalNetAssetOfBtc": fmt((assets - liabilities) / btc, d),
            "TotalCollateralValueInUSDT": fmt(assets, d),
            "totalCollateralValueInUSDT": fmt(assets, d),
            "tradeEnabled": True,
            "transferInEnabled": True,
            "transferOutEnabled": True,
            "accountType": "MARGIN_1",
            "userAssets": rows,
        }
