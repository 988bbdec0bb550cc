"""The strategy replayed over real Binance BTCUSDT funding history (8 h events, 2019-2026).

With the default config (entry threshold 0.10 + fee APR 0.0365 = 0.1365, i.e. an 8 h rate above
0.1365 / 1095 = 0.00012466; exit when the carry APR < 0.01, i.e. a rate below 0.0000091), the
first transitions can be checked by hand in the CSV:

- rows before 2019-10-26 08:00 (1572076800000) never exceed 0.0001 (awk: no rate * 1095 > 0.1365);
  that row's 0.00013709 (APR 0.1501) is the first entry;
- the first rate after it with APR < 0.01 is -0.00022089 at 2019-11-13 00:00 (1573603200000): the
  exit (|APR| is 0.2419, so only the direction-aware carry rule exits here);
- nothing clears the threshold again until 0.00012514 at 2020-01-08 00:00 (1578441600000);
- the next rate below the exit level is -0.00015149 at 2020-03-12 16:00 (1584028800000).
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from opensqt.arbitrage import Action, Strategy
from opensqt.model import FundingRate

from . import PERP_VENUE, make_config, perp_price, run_plan, spot_price

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
FUNDING_CSV = DATA / "binance_um_btcusdt_funding_2019-09-10_2026-05-17.csv"

pytestmark = pytest.mark.shared_data


def replay() -> list[tuple[int, Action]]:
    """Every trading decision (ts_ms, action), executing each plan with full fills at once."""
    if not FUNDING_CSV.is_file():
        pytest.skip(f"shared funding history not found at {FUNDING_CSV.resolve()}")
    strategy = Strategy(make_config())
    trades: list[tuple[int, Action]] = []
    with FUNDING_CSV.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            ts_ms = int(row["ts_ms"])
            strategy.on_price(spot_price("50000", ts_ms), ts_ms)
            strategy.on_price(perp_price("50010", ts_ms), ts_ms)
            update = FundingRate(
                symbol=row["symbol"],
                rate=Decimal(row["funding_rate"]),
                interval_hours=8,
                next_funding_ms=ts_ms,
                venue=PERP_VENUE,
                time_ms=ts_ms,
            )
            decision = strategy.on_funding(update, ts_ms)
            assert decision.action is not Action.IGNORE, (ts_ms, decision.reason)
            if decision.plan is not None:
                trades.append((ts_ms, decision.action))
                _, done = run_plan(decision.plan)
                strategy.on_execution_result(done, ts_ms)
    return trades


def test_replay_enters_and_exits_at_the_funding_events_checked_by_hand() -> None:
    trades = replay()
    assert trades[:4] == [
        (1572076800000, Action.ENTER_POSITIVE),
        (1573603200000, Action.EXIT),
        (1578441600000, Action.ENTER_POSITIVE),
        (1584028800000, Action.EXIT),
    ]


def test_replay_alternates_entries_and_exits_without_margin() -> None:
    actions = [action for _, action in replay()]
    assert len(actions) >= 4
    assert actions[0::2] == [Action.ENTER_POSITIVE] * len(actions[0::2])
    assert actions[1::2] == [Action.EXIT] * len(actions[1::2])
