"""Secure gRPC channels between services: mTLS, default deadlines, trace propagation."""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, TracerProvider

from opensqt import errors
from opensqt.transport.tls import TlsFiles, channel_credentials

__all__ = ["error_from_rpc", "secure_channel"]

ERROR_CLASS_KEY = "opensqt-error-class"

_BY_CODE: dict[grpc.StatusCode, type[errors.OpenSQTError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidOrder,
    grpc.StatusCode.FAILED_PRECONDITION: errors.Rejected,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.RateLimited,
    grpc.StatusCode.UNAVAILABLE: errors.Retryable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.Retryable,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: errors.AuthFailed,
    grpc.StatusCode.ALREADY_EXISTS: errors.ClientOrderIdConflict,
}


#: Codes that say the call was refused before it did anything. Any other failure without an
#: OpenSQT error class (INTERNAL, UNKNOWN, CANCELLED when the server shuts down mid-call,
#: ABORTED, DATA_LOSS, a deadline, an unreachable server) may have taken effect.
_DEFINITE = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.ALREADY_EXISTS,
    }
)


def error_from_rpc(exc: grpc.aio.AioRpcError) -> errors.OpenSQTError:
    """The OpenSQT error a failed call carried (by its class name), else one chosen by status code.

    A failure that does not say the call was refused (a deadline, an unreachable server, an
    internal error, a call cancelled by the server's shutdown) becomes a
    :class:`~opensqt.errors.Retryable` marked ambiguous: the call may have taken effect, so an
    order is looked up or re-sent with its client id, never given up as refused.
    """
    trailing = exc.trailing_metadata() or ()
    name = next((str(v) for k, v in trailing if k == ERROR_CLASS_KEY), "")
    cls = getattr(errors, name, None)
    message = exc.details() or exc.code().name
    if isinstance(cls, type) and issubclass(cls, errors.OpenSQTError) and cls is not errors.InvalidArgument:
        return cls(message)
    if cls is errors.InvalidArgument:
        return errors.InvalidOrder(message)
    code = exc.code()
    if code not in _DEFINITE:
        error = errors.Retryable(message)
        error.ambiguous = True
        return error
    return _BY_CODE.get(code, errors.ExchangeError)(message)


class _ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds a deadline when the caller set none and the W3C ``traceparent`` metadata."""

    def __init__(self, deadline_seconds: float, tracer_provider: TracerProvider | None) -> None:
        self._deadline = deadline_seconds
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("opensqt.transport.grpc")

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        method = client_call_details.method
        method_name = method.decode() if isinstance(method, bytes) else str(method)
        with self._tracer.start_as_current_span(
            method_name.lstrip("/"), kind=SpanKind.CLIENT, attributes={"rpc.system": "grpc"}
        ):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            metadata = list(client_call_details.metadata or ()) + list(carrier.items())
            details = grpc.aio.ClientCallDetails(
                method=client_call_details.method,
                timeout=client_call_details.timeout
                if client_call_details.timeout is not None
                else self._deadline,
                metadata=grpc.aio.Metadata(*metadata),
                credentials=client_call_details.credentials,
                wait_for_ready=client_call_details.wait_for_ready,
            )
            call = await continuation(details, request)
            return await call


def secure_channel(
    target: str,
    tls: TlsFiles,
    *,
    deadline_seconds: float = 5.0,
    server_name: str | None = None,
    tracer_provider: TracerProvider | None = None,
) -> grpc.aio.Channel:
    """An mTLS channel to ``target`` (``host:port``) presenting ``tls``'s certificate.

    ``server_name`` overrides the name checked against the server certificate (when the
    target is an address the certificate does not list).
    """
    options: list[tuple[str, Any]] = [("grpc.keepalive_time_ms", 30_000)]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.aio.secure_channel(
        target,
        channel_credentials(tls),
        options=options,
        interceptors=[_ClientInterceptor(deadline_seconds, tracer_provider)],
    )
