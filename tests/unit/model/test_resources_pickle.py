"""Orders survive pickling (DBOS keeps step results pickled), also from before a field was added."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from opensqt.model import Order, OrderType, Side

ORDER = Order(
    symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal("0.01002"),
    client_order_id="arb1-x-es0", filled_qty=Decimal("0.01002"), base_commission=Decimal("0.00001002"),
)  # fmt: skip


def test_an_order_round_trips_through_pickle() -> None:
    assert pickle.loads(pickle.dumps(ORDER)) == ORDER


def test_an_order_pickled_before_base_commission_existed_reads_it_as_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    current = Order.__getstate__
    monkeypatch.setattr(Order, "__getstate__", lambda self: current(self)[:-1])  # the older layout
    old = pickle.dumps(ORDER)
    monkeypatch.undo()

    loaded = pickle.loads(old)
    assert loaded.base_commission is None
    assert (loaded.client_order_id, loaded.filled_qty) == ("arb1-x-es0", Decimal("0.01002"))
