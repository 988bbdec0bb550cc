"""Strategy settings: arbitrage bots from OPENSQT_ARBITRAGE_BOTS, checked by the arbitrage core."""

from __future__ import annotations

import json
import os
from decimal import Decimal

import pytest
from pydantic import ValidationError

from opensqt_services.strategy.settings import StrategySettings
from tests.unit.arbitrage import PERP, SPOT


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OPENSQT_"):
            monkeypatch.delenv(name)


def bots(monkeypatch: pytest.MonkeyPatch, *entries: dict[str, object]) -> None:
    monkeypatch.setenv("OPENSQT_ARBITRAGE_BOTS", json.dumps(list(entries)))


def test_arbitrage_bots_come_from_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    bots(monkeypatch, {"name": "arb1", "symbol": "BTCUSDT", "order_quote_notional": "500"})
    settings = StrategySettings()
    (bot,) = settings.arbitrage_bots
    assert (bot.name, bot.perp, bot.order_quote_notional) == ("arb1", "BTCUSDT", Decimal(500))
    assert (settings.spot_market_venue, settings.spot_executor_address) == ("paper-spot", "127.0.0.1:50055")
    assert bot.unknown_order_settle_ms == 20_000


def test_the_wait_for_an_unknown_orders_fill_reaches_the_agents_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bots(
        monkeypatch,
        {"name": "arb1", "symbol": "BTCUSDT", "order_base_qty": "0.01", "unknown_order_settle_ms": 5000},
    )
    (bot,) = StrategySettings().arbitrage_bots
    assert bot.arbitrage_config(SPOT, PERP).unknown_order_settle_ms == 5000


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "arb1", "symbol": "BTCUSDT"}, "exactly one of order_base_qty and order_quote_notional"),
        (
            {"name": "arb1", "symbol": "BTCUSDT", "order_base_qty": "0.01", "exit_spread_apr": "0.5"},
            "exit_spread_apr must be at least 0 and below min_spread_apr",
        ),
        ({"name": "arb1", "symbol": "BTCUSDT", "order_base_qty": "0.01", "leverage": 3}, "leverage"),
        ({"name": "a" * 21, "symbol": "BTCUSDT", "order_base_qty": "0.01"}, "at most 20 characters"),
        ({"name": "arb.1", "symbol": "BTCUSDT", "order_base_qty": "0.01"}, "name"),
        (
            {"name": "arb1", "symbol": "BTCUSDT", "order_base_qty": "0.01", "unknown_order_settle_ms": -1},
            "unknown_order_settle_ms must not be negative",
        ),
    ],
)
def test_a_bad_bot_is_refused_with_a_message_that_names_the_problem(
    monkeypatch: pytest.MonkeyPatch, entry: dict[str, object], message: str
) -> None:
    bots(monkeypatch, entry)
    with pytest.raises(ValidationError, match=message):
        StrategySettings()


def test_agent_names_are_unique_across_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    bots(monkeypatch, {"name": "x1", "symbol": "BTCUSDT", "order_base_qty": "0.01"})
    monkeypatch.setenv(
        "OPENSQT_MARKET_MAKERS",
        json.dumps([{"name": "x1", "symbol": "ETHUSDT", "price_interval": "10", "order_notional": "100"}]),
    )
    with pytest.raises(ValidationError, match="repeated: x1"):
        StrategySettings()


def test_the_spot_and_perp_venues_must_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    bots(monkeypatch, {"name": "arb1", "symbol": "BTCUSDT", "order_base_qty": "0.01"})
    monkeypatch.setenv("OPENSQT_SPOT_MARKET_VENUE", "paper")
    with pytest.raises(ValidationError, match="distinct venue names"):
        StrategySettings()


def test_no_other_agent_may_trade_an_arbitrage_bots_perpetual(monkeypatch: pytest.MonkeyPatch) -> None:
    bots(monkeypatch, {"name": "arb1", "symbol": "BTCUSDT", "order_base_qty": "0.01"})
    monkeypatch.setenv(
        "OPENSQT_MARKET_MAKERS",
        json.dumps([{"name": "mm1", "symbol": "BTCUSDT", "price_interval": "10", "order_notional": "100"}]),
    )
    with pytest.raises(
        ValidationError, match="BTCUSDT: an arbitrage bot's perpetual must be traded by no other"
    ):
        StrategySettings()


def test_a_grid_on_another_symbol_may_share_the_account(monkeypatch: pytest.MonkeyPatch) -> None:
    bots(monkeypatch, {"name": "arb1", "symbol": "BTCUSDT", "order_base_qty": "0.01"})
    monkeypatch.setenv(
        "OPENSQT_MARKET_MAKERS",
        json.dumps([{"name": "mm1", "symbol": "ETHUSDT", "price_interval": "4", "order_notional": "100"}]),
    )
    assert [m.symbol for m in StrategySettings().market_makers] == ["ETHUSDT"]


def grid(monkeypatch: pytest.MonkeyPatch, **extra: object) -> None:
    entry = {"name": "mm1", "symbol": "ETHUSDT", "price_interval": "10", "order_notional": "100", **extra}
    monkeypatch.setenv("OPENSQT_MARKET_MAKERS", json.dumps([entry]))


def test_a_grid_checks_its_position_every_30_s_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    grid(monkeypatch)
    assert StrategySettings().market_makers[0].position_check_seconds == 30
    grid(monkeypatch, position_check_seconds=0)
    assert StrategySettings().market_makers[0].position_check_seconds == 0


@pytest.mark.parametrize(
    ("value", "message"), [(0.5, "0 \\(off\\) or at least 1"), (-1, "greater than or equal")]
)
def test_a_position_check_interval_under_a_second_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: float, message: str
) -> None:
    grid(monkeypatch, position_check_seconds=value)
    with pytest.raises(ValidationError, match=message):
        StrategySettings()
