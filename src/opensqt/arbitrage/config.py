"""Configuration of one funding-rate arbitrage agent (one spot leg hedged by one perpetual)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from opensqt.model.enums import MarketType
from opensqt.model.instrument import Instrument

__all__ = ["MAX_AGENT_LENGTH", "ArbitrageConfig", "round_trip_fee_apr"]

# A client order id is ``<agent>-<sequence>-<step><attempt>`` (see plans.client_order_id); the
# sequence takes 8 base-36 characters until 2059, the step 2 and the attempt 1-2, with 3 dashes:
# capping the agent at 20 characters keeps every id within Binance's 36.
MAX_AGENT_LENGTH = 20
_AGENT_RE = re.compile(r"^[.A-Za-z0-9:/_-]+$")

DAYS_PER_YEAR = Decimal(365)


def round_trip_fee_apr(spot_taker_fee: Decimal, perp_taker_fee: Decimal, holding_days: Decimal) -> Decimal:
    """The fees of one round trip expressed as an APR over the expected holding period.

    A round trip pays the taker fee of both legs twice (entry and exit), as a fraction of the
    notional: ``2 * (spot_taker_fee + perp_taker_fee)``. Spread over ``holding_days`` and
    annualised: ``2 * (spot_taker_fee + perp_taker_fee) * 365 / holding_days``. With 0.1% spot,
    0.05% perp and 30 days: ``0.003 * 365 / 30 = 0.0365``.
    """
    if holding_days <= 0:
        raise ValueError(f"holding period must be greater than zero days, got {holding_days}")
    return 2 * (spot_taker_fee + perp_taker_fee) * DAYS_PER_YEAR / holding_days


def _require_decimal(name: str, value: object) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{name} must be a finite Decimal, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ArbitrageConfig:
    """Parameters of one arbitrage agent; validated on construction (``ValueError``).

    Attributes:
        agent: agent id, part of every client order id: ``[.A-Za-z0-9:/_-]``, at most
            :data:`MAX_AGENT_LENGTH` characters.
        spot: the spot (or margin) instrument; its venue:symbol must differ from the perp's.
        perp: the perpetual instrument, same base asset as ``spot``.
        order_base_qty: entry size in base units; exactly one of this and
            ``order_quote_notional`` is set.
        order_quote_notional: entry size in quote units, converted at the spot price.
        min_spread_apr: entry threshold before fees (default 0.10).
        exit_spread_apr: exit when the carry APR of the open position falls below this (0.01).
        spot_taker_fee: taker fee rate of the spot leg (0.001 = 0.1%).
        perp_taker_fee: taker fee rate of the perp leg.
        expected_holding_days: holding period over which the round-trip fees are annualised.
        use_margin: allow the negative-funding entry, which shorts spot via a margin borrow.
        toxic_basis: a basis ``(perp - spot) / spot`` below this (for a short-perp position; above
            its negation for a long-perp position) is toxic. Negative, e.g. -0.005.
        toxic_count: consecutive toxic readings that force an exit (3).
        toxic_check_interval_ms: minimum time between two counted basis readings (0: every
            price update counts).
        max_data_age_ms: a leg's data older than this is stale and gates funding decisions.
        liquidation_threshold: distance to liquidation below which a leg is closed at once (0.10).
        dust_qty: base quantity below which a leg counts as flat and a net exposure as neutral.
        spot_fee_in_base: a spot buy pays its commission in the base asset it receives (Binance
            spot when fees are not paid in BNB; the default): every spot buy is sized up by
            ``spot_taker_fee`` so that what it receives covers the quantity wanted. Set it off
            when the account pays fees in BNB.
        unknown_order_settle_ms: after a plan failed with an order whose outcome could not be
            learned, how long the legs wait before their hedge is checked (20 s): the executor
            may still be sending that order, and its fill would arrive on the order stream. It
            should exceed the executor's venue timeout plus its look-up margin.
    """

    agent: str
    spot: Instrument
    perp: Instrument
    order_base_qty: Decimal | None = None
    order_quote_notional: Decimal | None = None
    min_spread_apr: Decimal = Decimal("0.10")
    exit_spread_apr: Decimal = Decimal("0.01")
    spot_taker_fee: Decimal = Decimal("0.001")
    perp_taker_fee: Decimal = Decimal("0.0005")
    expected_holding_days: Decimal = Decimal(30)
    use_margin: bool = False
    toxic_basis: Decimal = Decimal("-0.005")
    toxic_count: int = 3
    toxic_check_interval_ms: int = 0
    max_data_age_ms: int = 60_000
    liquidation_threshold: Decimal = Decimal("0.10")
    dust_qty: Decimal = Decimal("0.0001")
    spot_fee_in_base: bool = True
    unknown_order_settle_ms: int = 20_000

    def __post_init__(self) -> None:
        self._check_agent()
        self._check_instruments()
        self._check_order_size()
        for name in (
            "min_spread_apr",
            "exit_spread_apr",
            "spot_taker_fee",
            "perp_taker_fee",
            "expected_holding_days",
            "toxic_basis",
            "liquidation_threshold",
            "dust_qty",
        ):
            _require_decimal(name, getattr(self, name))
        if self.min_spread_apr <= 0:
            raise ValueError(f"min_spread_apr must be greater than zero, got {self.min_spread_apr}")
        if not 0 <= self.exit_spread_apr < self.min_spread_apr:
            raise ValueError(
                f"exit_spread_apr must be at least 0 and below min_spread_apr ({self.min_spread_apr}), "
                f"got {self.exit_spread_apr}"
            )
        for name in ("spot_taker_fee", "perp_taker_fee"):
            fee: Decimal = getattr(self, name)
            if not 0 <= fee < 1:
                raise ValueError(f"{name} must be in [0, 1), got {fee}")
        if self.expected_holding_days <= 0:
            raise ValueError(
                f"expected_holding_days must be greater than zero, got {self.expected_holding_days}"
            )
        if not -1 < self.toxic_basis < 0:
            raise ValueError(f"toxic_basis must be in (-1, 0), got {self.toxic_basis}")
        if self.toxic_count < 1:
            raise ValueError(f"toxic_count must be at least 1, got {self.toxic_count}")
        if self.toxic_check_interval_ms < 0:
            raise ValueError(
                f"toxic_check_interval_ms must not be negative, got {self.toxic_check_interval_ms}"
            )
        if self.max_data_age_ms <= 0:
            raise ValueError(f"max_data_age_ms must be greater than zero, got {self.max_data_age_ms}")
        if not 0 < self.liquidation_threshold < 1:
            raise ValueError(f"liquidation_threshold must be in (0, 1), got {self.liquidation_threshold}")
        if self.dust_qty <= 0:
            raise ValueError(f"dust_qty must be greater than zero, got {self.dust_qty}")
        if self.spot_fee_in_base and self.dust_qty < self.spot.step_size:
            raise ValueError(
                f"dust_qty {self.dust_qty} must be at least the spot step {self.spot.step_size} with "
                "spot_fee_in_base: a spot buy sized up to cover its commission keeps up to one step "
                "more than wanted, which must count as flat and hedged"
            )
        if self.unknown_order_settle_ms < 0:
            raise ValueError(
                f"unknown_order_settle_ms must not be negative, got {self.unknown_order_settle_ms}"
            )

    def _check_agent(self) -> None:
        if not self.agent or not _AGENT_RE.match(self.agent):
            raise ValueError(f"agent must be non-empty and use only [.A-Za-z0-9:/_-], got {self.agent!r}")
        if len(self.agent) > MAX_AGENT_LENGTH:
            raise ValueError(
                f"agent {self.agent!r} is {len(self.agent)} characters; at most {MAX_AGENT_LENGTH} "
                "leave room for the sequence, step and attempt in a 36-character client order id"
            )

    def _check_instruments(self) -> None:
        if self.spot.market_type not in (MarketType.SPOT, MarketType.MARGIN):
            raise ValueError(f"spot instrument must be SPOT or MARGIN, got {self.spot.market_type.value}")
        if self.perp.market_type is not MarketType.PERPETUAL:
            raise ValueError(f"perp instrument must be PERPETUAL, got {self.perp.market_type.value}")
        if self.spot.base != self.perp.base:
            raise ValueError(f"spot base {self.spot.base!r} and perp base {self.perp.base!r} differ")
        if self.spot.venue == self.perp.venue:
            # the live agent routes each leg's orders, fees and reference prices by venue id
            raise ValueError(
                f"spot and perp are both on venue {self.spot.venue!r}; give them distinct venue ids "
                "(e.g. 'binance' and 'binanceusdm'), one per executor"
            )

    def _check_order_size(self) -> None:
        sizes = [size for size in (self.order_base_qty, self.order_quote_notional) if size is not None]
        if len(sizes) != 1:
            raise ValueError("set exactly one of order_base_qty and order_quote_notional")
        size = _require_decimal("order size", sizes[0])
        if size <= 0:
            raise ValueError(f"order size must be greater than zero, got {size}")

    @property
    def spot_key(self) -> str:
        """The spot leg's ``venue:symbol``."""
        return f"{self.spot.venue}:{self.spot.symbol}"

    @property
    def perp_key(self) -> str:
        """The perp leg's ``venue:symbol``."""
        return f"{self.perp.venue}:{self.perp.symbol}"

    @property
    def spot_buy_fee(self) -> Decimal:
        """The commission rate a spot buy pays in the base asset (0 when it pays elsewhere)."""
        return self.spot_taker_fee if self.spot_fee_in_base else Decimal(0)

    @property
    def round_trip_fee_apr(self) -> Decimal:
        """Round-trip fees as an APR; see :func:`round_trip_fee_apr`."""
        return round_trip_fee_apr(self.spot_taker_fee, self.perp_taker_fee, self.expected_holding_days)

    @property
    def entry_threshold_apr(self) -> Decimal:
        """``min_spread_apr + round_trip_fee_apr``: |APR| must exceed this to enter."""
        return self.min_spread_apr + self.round_trip_fee_apr
