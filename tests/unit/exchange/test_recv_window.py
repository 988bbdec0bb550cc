"""A Binance request must be refused by the venue before its answer times out at the executor."""

from __future__ import annotations

import pytest

from opensqt.exchange.ccxt_adapter import RECV_WINDOW_MARGIN_MS, CcxtExchange, CcxtVenueConfig
from opensqt.model import MarketType


def adapter(timeout_ms: int, **options: object) -> CcxtExchange:
    return CcxtExchange(
        CcxtVenueConfig(
            venue="binance",
            exchange_id="binanceusdm",
            market_type=MarketType.PERPETUAL,
            timeout_ms=timeout_ms,
            options=options,
        )
    )


@pytest.mark.parametrize("timeout_ms", [10_000, 5_000, 2_000])
def test_the_recv_window_ends_before_the_timeout(timeout_ms: int) -> None:
    client = adapter(timeout_ms).client
    window = client.options["recvWindow"]
    assert window < client.timeout == timeout_ms
    assert window == timeout_ms - min(RECV_WINDOW_MARGIN_MS, timeout_ms // 4)


def test_a_chosen_window_below_the_timeout_is_kept() -> None:
    assert adapter(10_000, recvWindow=5_000).client.options["recvWindow"] == 5_000


@pytest.mark.parametrize("window", [10_000, 60_000, "9000"])
def test_a_window_as_long_as_the_timeout_is_refused(window: object) -> None:
    with pytest.raises(ValueError, match="recvWindow"):
        adapter(10_000, recvWindow=window)
