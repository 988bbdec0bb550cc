"""Errors named by what the caller should do, and their gRPC status codes.

Exchange errors are translated into these classes in exactly one place (the exchange adapter);
services map them to gRPC status codes with :func:`grpc_code_name`.
"""

from __future__ import annotations

__all__ = [
    "AuthFailed",
    "BudgetExhausted",
    "BusUnavailable",
    "ClientOrderIdConflict",
    "DuplicateOrder",
    "PostOnlyRejected",
    "OrderNotFound",
    "ExchangeError",
    "ExchangeUnavailable",
    "InsufficientFunds",
    "InvalidArgument",
    "InvalidOrder",
    "NotFound",
    "NotStarted",
    "OpenSQTError",
    "PermissionDenied",
    "RateLimited",
    "Rejected",
    "Retryable",
    "TradingHalted",
]


class OpenSQTError(Exception):
    """Base of every error OpenSQT raises on purpose. ``grpc_code`` names the status to send."""

    grpc_code: str = "INTERNAL"


class InvalidArgument(OpenSQTError, ValueError):
    """A request argument is malformed. ``field`` names it."""

    grpc_code = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class PermissionDenied(OpenSQTError):
    grpc_code = "PERMISSION_DENIED"


class NotFound(OpenSQTError):
    grpc_code = "NOT_FOUND"


class NotStarted(OpenSQTError):
    """The target exists but is not running (e.g. an agent whose start failed): it has nothing
    to answer with until it is fixed and restarted."""

    grpc_code = "FAILED_PRECONDITION"


class TradingHalted(OpenSQTError):
    """The trading state forbids this order (HALTED, or REDUCING and not reduce-only)."""

    grpc_code = "FAILED_PRECONDITION"


class BusUnavailable(OpenSQTError):
    """NATS did not take an event (disconnected, no JetStream acknowledgement in time): nothing
    is known to have been stored. Publish it again (JetStream de-duplicates by its id)."""

    grpc_code = "UNAVAILABLE"


class ExchangeError(OpenSQTError):
    """An error reported by (or on the way to) an exchange."""


class Retryable(ExchangeError):
    """Transient: network error or timeout. Retry with backoff (after resolving ambiguity).

    ``ambiguous`` is True when an order submission may have reached the venue anyway: look the
    order up by its client id before sending it again.
    """

    grpc_code = "UNAVAILABLE"
    ambiguous: bool = False


class RateLimited(Retryable):
    """HTTP 429/418: back off for ``retry_after_s`` seconds when the venue says so."""

    grpc_code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


class BudgetExhausted(RateLimited):
    """Our own rate budget could not grant a token in time: nothing was sent, the venue said
    nothing, so nothing must be blocked for the account."""


class ExchangeUnavailable(Retryable):
    """The venue is down or in maintenance."""

    grpc_code = "UNAVAILABLE"


class InvalidOrder(ExchangeError):
    """The order breaks a venue rule (precision, min notional, unknown symbol). Fix the order."""

    grpc_code = "INVALID_ARGUMENT"


class InsufficientFunds(ExchangeError):
    """Not enough balance or margin. Never retried."""

    grpc_code = "FAILED_PRECONDITION"


class Rejected(ExchangeError):
    """The venue refused the order for a reason other than the above (e.g. post-only would cross)."""

    grpc_code = "FAILED_PRECONDITION"


class PostOnlyRejected(Rejected):
    """A post-only order would have taken liquidity; nothing was placed."""


class DuplicateOrder(Rejected):
    """The venue already has an order with this client order id: look it up, do not resend."""


class ClientOrderIdConflict(Rejected):
    """The venue already holds this client order id for a different order (side, type, quantity
    or limit price): nothing was sent, and the venue's order is not this request's. Use a new id."""

    grpc_code = "ALREADY_EXISTS"


class OrderNotFound(ExchangeError):
    """The venue knows no such order (unknown id, or too old). Final for a cancel."""

    grpc_code = "NOT_FOUND"


class AuthFailed(ExchangeError):
    """Bad API key or signature. Stop: retrying cannot help."""

    grpc_code = "UNAUTHENTICATED"
