"""The demo's summaries, computed from the venue's books as the admin API returns them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from opensqt.demo import DemoSummary, OrderCounts, account_equity, format_summary, order_counts, propagations


def _state() -> dict[str, object]:
    return {
        "accounts": {
            "main": {
                "spot": {"balances": {"USDT": "99700.5", "BTC": "0.01"}},
                "margin": {"balances": {"USDT": "100000"}},
                "usdm": {
                    "balances": {"USDT": "100000.25"},
                    "positions": {
                        "BTCUSDT": {"size": "-0.010", "entry_price": "30000"},
                        "ETHUSDT": {"size": "0", "entry_price": "0"},
                    },
                },
            },
            "other": {"spot": {"balances": {"USDT": "5"}}},
        }
    }


def test_equity_values_assets_at_their_price_and_adds_unrealised_perp_pnl() -> None:
    prices = {"BTC": Decimal("29000"), "BTCUSDT": Decimal("29100")}
    equity = account_equity(_state(), "main", prices)
    # 99700.5 + 0.01*29000 + 100000 + 100000.25 + (-0.010)*(29100-30000)
    assert equity == Decimal("99700.5") + Decimal("100000") + Decimal("290") + Decimal("100000.25") + Decimal(
        "9"
    )


def test_orders_are_distinct_client_ids_of_the_agent() -> None:
    def entry(cid: str, execution: str) -> dict[str, object]:
        return {"execution": execution, "order": {"client_order_id": cid}}

    log = [
        entry("ETHUSDT-mm1-20000-B-0", "NEW"),
        entry("ETHUSDT-mm1-20000-B-0", "TRADE"),
        entry("ETHUSDT-mm1-20040-S-1", "NEW"),
        entry("ETHUSDT-mm1-19960-B-0", "NEW"),
        entry("ETHUSDT-mm1-19960-B-0", "CANCELED"),
        entry("arb1-es0", "TRADE"),  # a market order filled at once: logged as a trade only
        entry("arb1-ep0", "TRADE"),
    ]
    assert order_counts(log, "-mm1-") == OrderCounts(orders=3, fills=1, cancels=1)
    assert order_counts(log, "arb1") == OrderCounts(orders=2, fills=2, cancels=0)


def test_propagations_are_read_from_risks_json_log(tmp_path: Path) -> None:
    log = tmp_path / "risk.log"
    log.write_text(
        '{"event": "trading_state_changed", "state": "REDUCING"}\n'
        "not json at all\n"
        '{"event": "trading_state_propagated", "state": "REDUCING", "executors": 2, '
        '"acknowledged": 2, "elapsed_ms": 9.5, "timestamp": "2026-11-24T10:25:25.1Z"}\n'
    )
    (found,) = propagations(log)
    assert (found["state"], found["elapsed_ms"]) == ("REDUCING", 9.5)
    assert propagations(tmp_path / "missing.log") == []


def test_the_summary_names_every_number() -> None:
    summary = DemoSummary(
        seconds=180,
        market_minutes=1200,
        grid=OrderCounts(70, 40, 20),
        arbitrage=OrderCounts(4, 4, 0),
        equity_start=Decimal("300000"),
        equity_end=Decimal("299990.5"),
        funding=Decimal("-0.43"),
        commissions=Decimal("-1.18"),
        state_changes=[
            {
                "state": "REDUCING",
                "executors": 2,
                "acknowledged": 2,
                "elapsed_ms": 10.3,
                "timestamp": "2026-11-24T10:25:25.1Z",
            }
        ],
    )
    text = "\n".join(format_summary(summary, {"risk": 0}))
    assert "70 orders, 40 fills, 20 cancels" in text
    assert "-9.50 USDT" in text
    assert "REDUCING  2/2 executors in 10.3 ms" in text
    assert "risk exit 0" in text
