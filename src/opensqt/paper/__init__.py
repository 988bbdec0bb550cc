"""The paper exchange: a venue simulator behind Binance's REST and WebSocket API.

The unmodified ccxt ``binance`` / ``binanceusdm`` clients trade on it (only the URLs change):
spot, cross margin (borrow to short) and USDⓈ-M perpetuals, with matching, fees, positions,
leverage, liquidation and funding from :class:`~opensqt.exchange.MatchingCore`. Commissions
follow Binance without BNB fees: a spot or margin buy pays its commission in the base asset it
receives (buying 0.01 BTC at 0.1% leaves 0.00999 BTC), a sell and every futures fill in the
quote asset. See
:mod:`opensqt.paper.app` (the process), :mod:`opensqt.paper.rest` and
:mod:`opensqt.paper.streams` (the API), :mod:`opensqt.paper.admin` (driving it in tests) and
:mod:`opensqt.paper.faults` (fault injection).
"""

from opensqt.paper.app import PaperExchange, serve
from opensqt.paper.settings import (
    AccountSettings,
    ApiKeySettings,
    MarketSettings,
    PaperSettings,
    SourceSettings,
)

__all__ = [
    "AccountSettings",
    "ApiKeySettings",
    "MarketSettings",
    "PaperExchange",
    "PaperSettings",
    "SourceSettings",
    "serve",
]
