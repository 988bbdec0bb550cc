"""The one place where ccxt exceptions become OpenSQT errors, named by what the caller does.

| ccxt                                              | OpenSQT              | caller           |
|---------------------------------------------------|----------------------|------------------|
| RateLimitExceeded, DDoSProtection (HTTP 429/418)  | RateLimited          | back off         |
| OnMaintenance, ExchangeNotAvailable               | ExchangeUnavailable  | retry later      |
| RequestTimeout, other NetworkError, BadResponse   | Retryable            | look up, retry   |
| InsufficientFunds                                 | InsufficientFunds    | stop, never retry|
| DuplicateOrderId, or a rejection saying duplicate | DuplicateOrder       | look the order up|
| OrderNotFound                                     | OrderNotFound        | final for cancel |
| OrderImmediatelyFillable (post-only would take)   | PostOnlyRejected     | degrade / skip   |
| BadSymbol, other InvalidOrder, BadRequest         | InvalidOrder         | fix the order    |
| AuthenticationError, PermissionDenied             | AuthFailed           | stop             |
| any other ExchangeError / BaseError               | Rejected             | report           |

A timeout on a submit is *ambiguous*: the order may have been accepted. ``Retryable.ambiguous``
says so, and the executor resolves it by fetching the order by client id before any retry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import ccxt

from opensqt.errors import (
    AuthFailed,
    DuplicateOrder,
    ExchangeError,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    PostOnlyRejected,
    RateLimited,
    Rejected,
    Retryable,
)

__all__ = ["retry_after_seconds", "translate"]

_DUPLICATE = re.compile(r"duplicate", re.IGNORECASE)

# Most specific first: ccxt's classes form a hierarchy (e.g. OrderNotFound is an InvalidOrder).
_TABLE: tuple[tuple[type[BaseException], type[ExchangeError]], ...] = (
    (ccxt.RateLimitExceeded, RateLimited),
    (ccxt.DDoSProtection, RateLimited),
    (ccxt.ExchangeNotAvailable, ExchangeUnavailable),
    (ccxt.RequestTimeout, Retryable),
    (ccxt.NetworkError, Retryable),
    (ccxt.BadResponse, Retryable),
    (ccxt.InsufficientFunds, InsufficientFunds),
    (ccxt.DuplicateOrderId, DuplicateOrder),
    (ccxt.OrderNotFound, OrderNotFound),
    (ccxt.OrderImmediatelyFillable, PostOnlyRejected),
    (ccxt.InvalidOrder, InvalidOrder),
    (ccxt.BadRequest, InvalidOrder),
    (ccxt.AuthenticationError, AuthFailed),
    (ccxt.ExchangeError, Rejected),
    (ccxt.BaseError, Rejected),
)


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float | None:
    """The ``Retry-After`` header in seconds, if the venue sent one."""
    if not headers:
        return None
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def translate(
    exc: BaseException, *, headers: Mapping[str, Any] | None = None, submit: bool = False
) -> ExchangeError:
    """The OpenSQT error for a ccxt exception (``exc`` itself if it is one already).

    ``submit`` marks an order submission, for which a timeout or network error is ambiguous.
    """
    if isinstance(exc, ExchangeError):
        return exc
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ccxt.InvalidOrder | ccxt.ExchangeError) and _DUPLICATE.search(str(exc)):
        # Binance's generic -2010 "Duplicate order sent." / "ClientOrderId is duplicated."
        duplicate = DuplicateOrder(message)
        duplicate.__cause__ = exc
        return duplicate
    for ccxt_class, ours in _TABLE:
        if isinstance(exc, ccxt_class):
            if ours is RateLimited:
                error: ExchangeError = RateLimited(message, retry_after_s=retry_after_seconds(headers))
            else:
                error = ours(message)
            if isinstance(error, Retryable) and not isinstance(error, RateLimited):
                # a dropped connection or an unavailable answer after sending may hide an accepted order
                error.ambiguous = submit
            error.__cause__ = exc
            return error
    retryable = Retryable(f"unexpected {message}")
    retryable.ambiguous = submit
    retryable.__cause__ = exc
    return retryable
