"""Binance-style errors: ``{"code": -xxxx, "msg": "..."}`` with an HTTP status.

The codes and messages are Binance's. ccxt turns them into exception classes with two tables:
a generic one, and one per market type that it consults only when the URL's host is
``api.binance.com`` / ``fapi.binance.com``. Against a local URL only the generic table (and the
message strings it knows) applies. Where a real futures code lives only in ccxt's futures table
(-2019, -2022, -4116, -4164, -5022), the paper exchange sends -2010 NEW_ORDER_REJECTED, the
generic code Binance's spot API uses for the same refusals, so ccxt raises the class it raises
against Binance (or, for post-only and insufficient funds, the class the executor needs):

========================  =====================================  ==========================
case                      code / message                         ccxt class (local URL)
========================  =====================================  ==========================
unknown symbol            -1121 Invalid symbol.                  BadSymbol
spot price off tick       -1013 Filter failure: PRICE_FILTER     InvalidOrder
spot qty step / minimum   -1013 Filter failure: LOT_SIZE         InvalidOrder
spot notional too small   -1013 Filter failure: NOTIONAL         BadRequest
futures price off tick    -4014 Price not increased by tick size. BadRequest
futures qty off step      -4023 Quantity not increased by ...    BadRequest
futures qty below min     -4004 Quantity less than min qty.      BadRequest
futures notional too low  -2010 Order's notional must be ...     InvalidOrder
too many decimals         -1111 Precision is over the maximum    BadRequest
duplicate client id       -2010 Duplicate order sent. (spot) /   InvalidOrder
                          ClientOrderId is duplicated. (fapi)
reduce-only cannot reduce -2010 ReduceOnly Order is rejected.    InvalidOrder
insufficient funds        -2010 Account has insufficient balance InsufficientFunds
post-only would take      -2010 Order would immediately match    OrderImmediatelyFillable
unknown order (query)     -2013 Order does not exist.            OrderNotFound
unknown order (cancel)    -2011 Unknown order sent.              OrderNotFound
bad signature             -1022 Signature ... is not valid.      AuthenticationError
unknown key / no rights   -2015 Invalid API-key, IP, or ...      AuthenticationError
missing/garbled key       -2014 API-key format invalid.          AuthenticationError
stale timestamp           -1021 Timestamp ... outside recvWindow InvalidNonce
missing parameter         -1102 Mandatory parameter ...          BadRequest
malformed number          -1100 Illegal characters found ...     BadRequest
HTTP 429 / 418            -1003 Too many requests / banned       DDoSProtection (ccxt's
                                                                 binance raises it for both)
========================  =====================================  ==========================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BinanceError", "Family", "errors"]

Family = str  # "spot" (api/sapi) or "usdm" (fapi)

_NUMBER_RANGE = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"


@dataclass(frozen=True, slots=True)
class BinanceError(Exception):
    """An error response: HTTP ``status``, Binance ``code`` and ``msg``; ``headers`` are extra
    response headers (``Retry-After``)."""

    status: int
    code: int
    msg: str
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}

    def __str__(self) -> str:
        return f"{self.status} {self.code} {self.msg}"


class errors:  # noqa: N801 - a namespace of constructors, read as errors.invalid_symbol()
    """Constructors for every error the paper exchange sends."""

    @staticmethod
    def invalid_symbol() -> BinanceError:
        return BinanceError(400, -1121, "Invalid symbol.")

    @staticmethod
    def mandatory(name: str) -> BinanceError:
        return BinanceError(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )

    @staticmethod
    def illegal_number(name: str) -> BinanceError:
        return BinanceError(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{_NUMBER_RANGE}'."
        )

    @staticmethod
    def illegal_chars(name: str, legal: str) -> BinanceError:
        return BinanceError(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
        )

    @staticmethod
    def invalid_value(name: str) -> BinanceError:
        return BinanceError(400, -1130, f"Data sent for parameter '{name}' is not valid.")

    @staticmethod
    def not_required(name: str) -> BinanceError:
        return BinanceError(400, -1106, f"Parameter '{name}' sent when not required.")

    @staticmethod
    def invalid_side() -> BinanceError:
        return BinanceError(400, -1117, "Invalid side.")

    @staticmethod
    def invalid_order_type() -> BinanceError:
        return BinanceError(400, -1116, "Invalid orderType.")

    @staticmethod
    def invalid_tif() -> BinanceError:
        return BinanceError(400, -1115, "Invalid timeInForce.")

    @staticmethod
    def precision_over_max() -> BinanceError:
        return BinanceError(400, -1111, "Precision is over the maximum defined for this asset.")

    @staticmethod
    def price_filter(family: Family) -> BinanceError:
        if family == "usdm":
            return BinanceError(400, -4014, "Price not increased by tick size.")
        return BinanceError(400, -1013, "Filter failure: PRICE_FILTER")

    @staticmethod
    def price_out_of_range(family: Family) -> BinanceError:
        if family == "usdm":
            return BinanceError(400, -4013, "Price less than min price.")
        return BinanceError(400, -1013, "Filter failure: PRICE_FILTER")

    @staticmethod
    def quantity_step(family: Family) -> BinanceError:
        if family == "usdm":
            return BinanceError(400, -4023, "Quantity not increased by step size.")
        return BinanceError(400, -1013, "Filter failure: LOT_SIZE")

    @staticmethod
    def quantity_min(family: Family) -> BinanceError:
        if family == "usdm":
            return BinanceError(400, -4004, "Quantity less than min qty.")
        return BinanceError(400, -1013, "Filter failure: LOT_SIZE")

    @staticmethod
    def quantity_max(family: Family) -> BinanceError:
        if family == "usdm":
            return BinanceError(400, -4005, "Quantity greater than max quantity.")
        return BinanceError(400, -1013, "Filter failure: LOT_SIZE")

    @staticmethod
    def min_notional(family: Family, minimum: str) -> BinanceError:
        if family == "usdm":
            return BinanceError(
                400,
                -2010,
                f"Order's notional must be no smaller than {minimum} (unless you choose reduce only).",
            )
        return BinanceError(400, -1013, "Filter failure: NOTIONAL")

    @staticmethod
    def duplicate_client_id(family: Family) -> BinanceError:
        if family == "usdm":
            return BinanceError(400, -2010, "ClientOrderId is duplicated.")
        return BinanceError(400, -2010, "Duplicate order sent.")

    @staticmethod
    def client_id_invalid(family: Family) -> BinanceError:
        if family == "usdm":
            return BinanceError(400, -4015, "Client order id is not valid.")
        return errors.illegal_chars("newClientOrderId", "^[\\.A-Z\\:/a-z0-9_-]{1,36}$")

    @staticmethod
    def reduce_only_rejected() -> BinanceError:
        return BinanceError(400, -2010, "ReduceOnly Order is rejected.")

    @staticmethod
    def insufficient_balance() -> BinanceError:
        return BinanceError(400, -2010, "Account has insufficient balance for requested action.")

    @staticmethod
    def would_take() -> BinanceError:
        return BinanceError(400, -2010, "Order would immediately match and take.")

    @staticmethod
    def no_price() -> BinanceError:
        return BinanceError(400, -2010, "Market is closed.")

    @staticmethod
    def position_side() -> BinanceError:
        return BinanceError(400, -4061, "Order's position side does not match user's setting.")

    @staticmethod
    def invalid_leverage(leverage: str) -> BinanceError:
        return BinanceError(400, -4028, f"Leverage {leverage} is not valid")

    @staticmethod
    def order_does_not_exist() -> BinanceError:
        return BinanceError(400, -2013, "Order does not exist.")

    @staticmethod
    def unknown_order() -> BinanceError:
        return BinanceError(400, -2011, "Unknown order sent.")

    @staticmethod
    def bad_signature() -> BinanceError:
        return BinanceError(400, -1022, "Signature for this request is not valid.")

    @staticmethod
    def invalid_api_key() -> BinanceError:
        return BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")

    @staticmethod
    def api_key_format() -> BinanceError:
        return BinanceError(401, -2014, "API-key format invalid.")

    @staticmethod
    def outside_recv_window() -> BinanceError:
        return BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    @staticmethod
    def recv_window_too_large(maximum_ms: int) -> BinanceError:
        return BinanceError(400, -1131, f"recvWindow must be less than {maximum_ms}.")

    @staticmethod
    def listen_key_unknown() -> BinanceError:
        return BinanceError(400, -1125, "This listenKey does not exist.")

    @staticmethod
    def not_found() -> BinanceError:
        return BinanceError(404, -1000, "An unknown error occurred while processing the request.")

    @staticmethod
    def unsupported() -> BinanceError:
        return BinanceError(400, -1020, "This operation is not supported.")

    @staticmethod
    def too_many_requests(retry_after_s: int) -> BinanceError:
        return BinanceError(
            429,
            -1003,
            "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
            "Please use the websocket for live updates to avoid polling the API.",
            (("Retry-After", str(retry_after_s)),),
        )

    @staticmethod
    def banned(retry_after_s: int, until_ms: int) -> BinanceError:
        return BinanceError(
            418,
            -1003,
            f"Way too many requests; IP(127.0.0.1) banned until {until_ms}. "
            "Please use the websocket for live updates to avoid bans.",
            (("Retry-After", str(retry_after_s)),),
        )

    @staticmethod
    def internal() -> BinanceError:
        return BinanceError(500, -1001, "Internal error; unable to process your request. Please try again.")
