"""How a failed call to another service is read: refused, or perhaps done."""

from __future__ import annotations

import grpc
import pytest

from opensqt import errors
from opensqt.transport.grpc_client import ERROR_CLASS_KEY, error_from_rpc


def failed(code: grpc.StatusCode, details: str = "", error_class: str = "") -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata((ERROR_CLASS_KEY, error_class)) if error_class else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details)


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INTERNAL,  # the executor's handler failed somewhere: maybe after the send
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,  # what a client sees when the server shuts down mid-call
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    ],
)
def test_a_failure_that_does_not_say_refused_is_ambiguous(code: grpc.StatusCode) -> None:
    error = error_from_rpc(failed(code, "boom"))
    assert isinstance(error, errors.Retryable)
    assert error.ambiguous  # an order is looked up or re-sent under its client id, not dropped


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidOrder),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.Rejected),
        (grpc.StatusCode.NOT_FOUND, errors.NotFound),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
        (grpc.StatusCode.UNAUTHENTICATED, errors.AuthFailed),
        (grpc.StatusCode.UNIMPLEMENTED, errors.ExchangeError),
    ],
)
def test_a_refusal_is_a_definite_error(code: grpc.StatusCode, cls: type[errors.OpenSQTError]) -> None:
    error = error_from_rpc(failed(code, "no"))
    assert type(error) is cls
    assert not getattr(error, "ambiguous", False)


def test_the_error_class_the_server_names_wins_over_the_code() -> None:
    error = error_from_rpc(failed(grpc.StatusCode.FAILED_PRECONDITION, "halted", "TradingHalted"))
    assert type(error) is errors.TradingHalted
    assert str(error) == "halted"
