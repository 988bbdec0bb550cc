"""Numbers and parameters on Binance's wire.

Binance sends every number as a string with a fixed number of decimals: 8 on the spot API,
the symbol's price or quantity precision on the futures API. Money is ``Decimal`` here; a value
with more decimals than its field shows is rounded half-up for display only (derived values
such as unrealized PnL), never in the books.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from opensqt.paper.binance_errors import errors

__all__ = [
    "SPOT_DECIMALS",
    "decimals_of",
    "fmt",
    "opt_decimal",
    "opt_int",
    "req_decimal",
    "req_str",
    "true_param",
]

SPOT_DECIMALS = 8
_NUMBER = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")


def decimals_of(step: Decimal) -> int:
    """Decimals a grid step has (``0.010`` -> 2, ``1`` -> 0)."""
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def fmt(value: Decimal, decimals: int) -> str:
    """``value`` with exactly ``decimals`` decimals (half-up when it has more)."""
    rounded = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return format(abs(rounded) if rounded == 0 else rounded, "f")


def req_str(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise errors.mandatory(name)
    return value


def _number(name: str, text: str) -> Decimal:
    if not _NUMBER.match(text):
        raise errors.illegal_number(name)
    return Decimal(text)


def req_decimal(params: Mapping[str, str], name: str) -> Decimal:
    """A mandatory plain non-negative decimal (``-1102`` when missing, ``-1100`` when garbled)."""
    return _number(name, req_str(params, name))


def opt_decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    return _number(name, text)


def opt_int(params: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", text):
        raise errors.illegal_chars(name, "^-?[0-9]{1,19}$")
    return int(text)


def true_param(params: Mapping[str, str], name: str) -> bool:
    """A boolean parameter (``true``/``false``, any case)."""
    text = params.get(name)
    if text is None or text == "":
        return False
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise errors.invalid_value(name)
    return lowered == "true"
