"""Tests of the funding-rate arbitrage, with the builders they share.

Instruments mirror Binance's BTCUSDT rules: spot step 0.00001 and min notional 5; the USDⓈ-M
perp step 0.001, min qty 0.001 and min notional 100, funding every 8 h.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from opensqt.arbitrage import ArbitrageConfig, Done, EntryPlan, ExitPlan, OrderStep, StepResult
from opensqt.model import FundingRate, Instrument, MarketType, Position, PriceChange

AGENT = "arb1"
SPOT_VENUE = "binance"
PERP_VENUE = "binanceusdm"
SYMBOL = "BTCUSDT"
T0 = 1_700_000_000_000
PERIOD_MS = 8 * 3_600_000

SPOT = Instrument(
    venue=SPOT_VENUE,
    symbol=SYMBOL,
    market_type=MarketType.SPOT,
    base="BTC",
    quote="USDT",
    tick_size=Decimal("0.01"),
    step_size=Decimal("0.00001"),
    min_qty=Decimal("0.00001"),
    min_notional=Decimal("5"),
)
PERP = Instrument(
    venue=PERP_VENUE,
    symbol=SYMBOL,
    market_type=MarketType.PERPETUAL,
    base="BTC",
    quote="USDT",
    tick_size=Decimal("0.1"),
    step_size=Decimal("0.001"),
    min_qty=Decimal("0.001"),
    min_notional=Decimal("100"),
    funding_interval_hours=8,
)


def make_config(**overrides: Any) -> ArbitrageConfig:
    """A valid config: 0.02 BTC per entry, Binance VIP0 fees, 30-day holding (fee APR 0.0365);
    spot buys pay no commission in the base asset (the tests' venues charge none) unless a test
    says so."""
    fields: dict[str, Any] = {
        "agent": AGENT,
        "spot": SPOT,
        "perp": PERP,
        "order_base_qty": Decimal("0.02"),
        "spot_fee_in_base": False,
    }
    fields.update(overrides)
    return ArbitrageConfig(**fields)


def funding(rate: str, next_funding_ms: int, *, interval_hours: int = 8, time_ms: int = 0) -> FundingRate:
    return FundingRate(
        symbol=SYMBOL,
        rate=Decimal(rate),
        interval_hours=interval_hours,
        next_funding_ms=next_funding_ms,
        venue=PERP_VENUE,
        time_ms=time_ms,
    )


def spot_price(price: str, ms: int) -> PriceChange:
    return PriceChange(venue=SPOT_VENUE, symbol=SYMBOL, price=Decimal(price), received_ms=ms)


def perp_price(price: str, ms: int) -> PriceChange:
    return PriceChange(venue=PERP_VENUE, symbol=SYMBOL, price=Decimal(price), received_ms=ms)


def position(
    venue: str,
    size: str,
    *,
    mark: str = "0",
    liquidation: str = "0",
    entry: str = "0",
    updated_ms: int = 0,
) -> Position:
    return Position(
        symbol=SYMBOL,
        size=Decimal(size),
        entry_price=Decimal(entry),
        mark_price=Decimal(mark),
        liquidation_price=Decimal(liquidation),
        venue=venue,
        market_type=MarketType.PERPETUAL if venue == PERP_VENUE else MarketType.SPOT,
        updated_ms=updated_ms,
    )


def full_fill(step: OrderStep) -> StepResult:
    """The exchange fills the whole order."""
    return StepResult(step.client_order_id, step.quantity)


def run_plan(
    plan: EntryPlan | ExitPlan,
    fill: Callable[[OrderStep], StepResult] = full_fill,
    *,
    max_steps: int = 50,
) -> tuple[list[OrderStep], Done]:
    """Drive a plan like the executor does; return every step sent and the end."""
    steps: list[OrderStep] = []
    results: list[StepResult] = []
    for _ in range(max_steps):
        nxt = plan.next_step(results)
        if isinstance(nxt, Done):
            return steps, nxt
        steps.append(nxt)
        results.append(fill(nxt))
    raise AssertionError(
        f"plan did not finish within {max_steps} steps: {[s.client_order_id for s in steps]}"
    )


def scripted(*filled: str) -> Callable[[OrderStep], StepResult]:
    """Fills in order: the n-th order sent fills ``filled[n]`` ("all" = the whole order)."""
    remaining = list(filled)

    def fill(step: OrderStep) -> StepResult:
        qty = remaining.pop(0)
        amount = step.quantity if qty == "all" else Decimal(qty)
        return StepResult(step.client_order_id, amount, error="" if amount else "rejected")

    return fill
