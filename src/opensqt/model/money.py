"""Decimal money helpers: strict parsing and exchange-grid rounding.

Money is ``Decimal`` end to end. Parsing is strict: a value that is not a finite
decimal number is an error, never silently coerced to zero.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation

__all__ = [
    "ZERO",
    "DecimalParseError",
    "parse_decimal",
    "round_half_up",
    "round_to_step",
]

ZERO = Decimal(0)

# Plain decimal notation as exchanges send it: optional sign, digits, optional fraction,
# optional exponent. Rejects NaN, Infinity, empty strings, whitespace and thousands separators.
_DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class DecimalParseError(ValueError):
    """A value that should be a decimal number is not one.

    Attributes:
        field: the name of the field that held the value (for error messages).
        value: the offending raw value.
    """

    def __init__(self, field: str, value: object, why: str = "is not a finite decimal number") -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}: {value!r} {why}")


def parse_decimal(
    value: str | Decimal | int,
    *,
    field: str = "value",
    allow_empty: bool = False,
    positive: bool = False,
    non_negative: bool = False,
) -> Decimal:
    """Parse a wire value into a finite ``Decimal``.

    Args:
        value: a decimal string (``"3000.25"``), a ``Decimal`` or an ``int``. Floats are refused:
            they cannot represent money exactly.
        field: name used in the error message.
        allow_empty: return ``0`` for an empty string (for optional proto fields); otherwise
            an empty string is an error.
        positive: require ``> 0``.
        non_negative: require ``>= 0``.

    Raises:
        DecimalParseError: the value is malformed, not finite, or violates a sign constraint.
    """
    if isinstance(value, (bool, float)):
        raise DecimalParseError(field, value, "must be a decimal string, not a float or bool")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        if value == "":
            if allow_empty:
                return ZERO
            raise DecimalParseError(field, value, "is empty")
        if not _DECIMAL_RE.match(value):
            raise DecimalParseError(field, value)
        try:
            result = Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
            raise DecimalParseError(field, value) from exc
    else:
        raise DecimalParseError(field, value, f"has unsupported type {type(value).__name__}")
    if not result.is_finite():
        raise DecimalParseError(field, value)
    if positive and result <= 0:
        raise DecimalParseError(field, value, "must be greater than zero")
    if non_negative and result < 0:
        raise DecimalParseError(field, value, "must not be negative")
    return result


def round_half_up(value: Decimal) -> Decimal:
    """Round to the nearest integer, halves away from zero (never Python's banker's ``round``)."""
    return value.to_integral_value(rounding=ROUND_HALF_UP)


def round_to_step(value: Decimal, step: Decimal, *, mode: str = "nearest") -> Decimal:
    """Round ``value`` to a multiple of ``step`` (a tick size or lot step).

    Args:
        value: the number to round.
        step: the grid, greater than zero.
        mode: ``"nearest"`` (half away from zero), ``"down"`` (towards zero) or ``"up"``
            (away from zero).

    The result carries the step's exponent, so ``round_to_step(Decimal("1.5"), Decimal("0.01"))``
    is ``Decimal("1.50")``.
    """
    if step <= 0:
        raise ValueError(f"step must be greater than zero, got {step}")
    rounding = {"nearest": ROUND_HALF_UP, "down": ROUND_DOWN, "up": ROUND_UP}[mode]
    units = (value / step).to_integral_value(rounding=rounding)
    return (units * step).quantize(step)
