"""ccxt exceptions become the caller-action taxonomy in exactly one place."""

from __future__ import annotations

import ccxt
import pytest

from opensqt import errors
from opensqt.exchange.ccxt_adapter import CcxtExchange, CcxtVenueConfig, rewrite_urls
from opensqt.exchange.errors import retry_after_seconds, translate
from opensqt.model import MarketType


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ccxt.RateLimitExceeded("429"), errors.RateLimited),
        (ccxt.DDoSProtection("418"), errors.RateLimited),
        (ccxt.OnMaintenance("down"), errors.ExchangeUnavailable),
        (ccxt.ExchangeNotAvailable("503"), errors.ExchangeUnavailable),
        (ccxt.RequestTimeout("timeout"), errors.Retryable),
        (ccxt.NetworkError("reset"), errors.Retryable),
        (ccxt.InsufficientFunds("-2019 margin"), errors.InsufficientFunds),
        (ccxt.DuplicateOrderId("-4116"), errors.DuplicateOrder),
        (ccxt.OrderNotFound("-2013"), errors.OrderNotFound),
        (ccxt.OrderImmediatelyFillable("-5022 post only"), errors.PostOnlyRejected),
        (ccxt.BadSymbol("-1121"), errors.InvalidOrder),
        (ccxt.InvalidOrder("-1013 filter"), errors.InvalidOrder),
        (ccxt.BadRequest("-1102"), errors.InvalidOrder),
        (ccxt.AuthenticationError("-2015"), errors.AuthFailed),
        (ccxt.PermissionDenied("-2015"), errors.AuthFailed),
        (ccxt.ExchangeError("-1000"), errors.Rejected),
    ],
)
def test_each_ccxt_exception_maps_to_what_the_caller_should_do(
    raised: Exception, expected: type[errors.ExchangeError]
) -> None:
    ours = translate(raised)
    assert type(ours) is expected
    assert ours.__cause__ is raised
    assert type(raised).__name__ in str(ours)


def test_only_network_failures_of_a_submit_are_ambiguous() -> None:
    timeout = translate(ccxt.RequestTimeout("t"), submit=True)
    assert isinstance(timeout, errors.Retryable)
    assert timeout.ambiguous
    assert not translate(ccxt.RequestTimeout("t"), submit=False).ambiguous
    rate_limited = translate(ccxt.RateLimitExceeded("429"), submit=True)
    assert isinstance(rate_limited, errors.Retryable)
    assert not rate_limited.ambiguous  # a 429 was refused before it reached the book


def test_rate_limits_carry_retry_after_from_the_response_headers() -> None:
    limited = translate(ccxt.RateLimitExceeded("429"), headers={"Retry-After": "7"})
    assert isinstance(limited, errors.RateLimited)
    assert limited.retry_after_s == 7
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds(None) is None


def test_never_retried_errors_are_not_retryable() -> None:
    for raised in (
        ccxt.InsufficientFunds("x"),
        ccxt.InvalidOrder("x"),
        ccxt.BadSymbol("x"),
        ccxt.AuthenticationError("x"),
    ):
        assert not isinstance(translate(raised), errors.Retryable)


def test_grpc_codes_follow_the_taxonomy() -> None:
    assert translate(ccxt.InvalidOrder("x")).grpc_code == "INVALID_ARGUMENT"
    assert translate(ccxt.RateLimitExceeded("x")).grpc_code == "RESOURCE_EXHAUSTED"
    assert translate(ccxt.InsufficientFunds("x")).grpc_code == "FAILED_PRECONDITION"
    assert translate(ccxt.OrderNotFound("x")).grpc_code == "NOT_FOUND"
    assert translate(ccxt.AuthenticationError("x")).grpc_code == "UNAUTHENTICATED"
    assert translate(ccxt.NetworkError("x")).grpc_code == "UNAVAILABLE"


def test_urls_move_to_the_paper_exchange_keeping_their_paths() -> None:
    urls = {
        "fapiPublic": "https://fapi.binance.com/fapi/v1",
        "ws": {"future": "wss://fstream.binance.com/ws"},
        "doc": ["https://binance-docs.github.io"],
    }
    moved = rewrite_urls(urls, "http://127.0.0.1:8090", "ws://127.0.0.1:8090")
    assert moved["fapiPublic"] == "http://127.0.0.1:8090/fapi/v1"
    assert moved["ws"]["future"] == "ws://127.0.0.1:8090/ws"
    assert moved["doc"] == ["https://binance-docs.github.io"]


def test_adapter_points_every_binanceusdm_api_url_at_the_override_and_keeps_keys_secret() -> None:
    from pydantic import SecretStr

    adapter = CcxtExchange(
        CcxtVenueConfig(
            venue="paper",
            exchange_id="binanceusdm",
            market_type=MarketType.PERPETUAL,
            api_key=SecretStr("key-123"),
            api_secret=SecretStr("secret-456"),
            rest_url="http://127.0.0.1:8090",
            ws_url="ws://127.0.0.1:8090",
        )
    )
    api = adapter.client.urls["api"]

    def leaves(node: object) -> list[str]:
        if isinstance(node, dict):
            return [leaf for value in node.values() for leaf in leaves(value)]
        return [node] if isinstance(node, str) else []

    found = leaves(api)
    assert found
    assert all(u.startswith(("http://127.0.0.1:8090", "ws://127.0.0.1:8090")) for u in found)
    assert "secret-456" not in repr(adapter.config)
    assert adapter.client.number is str


def test_unknown_ccxt_exchange_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="ccxt has no exchange 'nope'"):
        CcxtExchange(CcxtVenueConfig(venue="x", exchange_id="nope", market_type=MarketType.SPOT))
