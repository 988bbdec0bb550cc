"""The gRPC server every service runs.

- ``grpc.aio`` on the API port with mTLS (client certificate required, verified against the CA);
- an interceptor that authorizes each call by certificate identity (:mod:`.authz`), maps
  :class:`~opensqt.errors.OpenSQTError` to status codes, traces (W3C ``traceparent`` from the
  metadata) and counts;
- ``grpc.health.v1`` on the API port and on a plaintext, health-only probe port (kubelet probes
  cannot present a client certificate);
- server reflection, v1alpha (what grpcurl 1.8 speaks) and v1;
- graceful stop: health NOT_SERVING, stop accepting, drain for ``grace`` seconds, stop.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from opensqt.config import GrpcSettings
from opensqt.errors import OpenSQTError
from opensqt.telemetry import ServiceMetrics, get_logger
from opensqt.transport.authz import identity_of, is_allowed
from opensqt.transport.tls import TlsFiles, server_credentials

__all__ = ["GrpcServer", "ServiceBinding"]

log = get_logger(__name__)

REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
#: Trailing metadata key carrying the OpenSQT error class of a failed call.
ERROR_CLASS_KEY = "opensqt-error-class"


class _ReflectionServicer(reflection.aio.ReflectionServicer):  # type: ignore[misc]
    """Reflection that also resolves method symbols (``pkg.Service.Method``).

    Python's descriptor pool finds files by message, enum and service names but not by method
    name, which grpcurl asks for in ``describe pkg.Service.Method``; the file that holds a
    method is the file that holds its service.
    """

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        try:
            self._pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            service_name, _, method = fully_qualified_name.rpartition(".")
            try:
                service = self._pool.FindServiceByName(service_name)
            except KeyError:
                service = None
            if service is not None and method in service.methods_by_name:
                fully_qualified_name = service_name
        return super()._file_containing_symbol(request, fully_qualified_name)


def _add_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    """Serve reflection v1alpha (grpcurl 1.8) and v1: the same messages under two names."""
    servicer = _ReflectionServicer(service_names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        tuple(
            grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": handler})
            for name in (reflection.SERVICE_NAME, REFLECTION_V1)
        )
    )


@dataclass(frozen=True, slots=True)
class ServiceBinding:
    """A servicer to serve: its full name (for health and reflection) and how to add it."""

    name: str
    add_to_server: Callable[[grpc.aio.Server], None]


def _code_name(context: Any) -> str:
    code = context.code() if hasattr(context, "code") else None
    if isinstance(code, grpc.StatusCode):
        return code.name
    return "OK" if code in (None, 0) else str(code)


class _Interceptor(grpc.aio.ServerInterceptor):
    """Authorization, error mapping, tracing and metrics for every call."""

    def __init__(self, metrics: ServiceMetrics, tracer_provider: TracerProvider | None) -> None:
        self._metrics = metrics
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("opensqt.transport.grpc")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        found = await continuation(handler_call_details)
        if found is None:
            return None
        handler: Any = found  # the generated handlers are untyped
        method: str = handler_call_details.method
        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                return await self._call(method, context, lambda: inner_uu(request, context))

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
                await self._call(method, context, lambda: _drain_into(inner_us(request, context), context))

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_stream is not None:
            inner_ss = handler.stream_stream

            async def stream_stream(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
                await self._call(method, context, lambda: _drain_into(inner_ss(requests, context), context))

            return grpc.stream_stream_rpc_method_handler(
                stream_stream, handler.request_deserializer, handler.response_serializer
            )
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await self._call(method, context, lambda: inner_su(requests, context))

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, handler.request_deserializer, handler.response_serializer
        )

    async def _call(
        self,
        method: str,
        context: grpc.aio.ServicerContext[Any, Any],
        invoke: Callable[[], Awaitable[Any]],
    ) -> Any:
        identity = identity_of(context)
        if not is_allowed(identity, method):
            self._metrics.grpc_denied.labels(method, identity or "none").inc()
            self._metrics.grpc_requests.labels(method, "PERMISSION_DENIED").inc()
            log.warning("grpc_permission_denied", method=method, identity=identity)
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"identity {identity!r} may not call {method}",
            )
        carrier = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        started = time.perf_counter()
        code = "OK"
        with self._tracer.start_as_current_span(
            method.lstrip("/"),
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.method": method, "enduser.id": identity or ""},
        ) as span:
            try:
                return await invoke()
            except OpenSQTError as exc:
                code = exc.grpc_code
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                # The class name lets an OpenSQT client raise the same error (see grpc_client).
                context.set_trailing_metadata(((ERROR_CLASS_KEY, type(exc).__name__),))
                await context.abort(grpc.StatusCode[exc.grpc_code], str(exc))
            except grpc.aio.AbortError:
                code = _code_name(context)
                raise
            except NotImplementedError:
                code = "UNIMPLEMENTED"
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet")
            except Exception as exc:
                code = "INTERNAL"
                span.record_exception(exc)
                log.exception("grpc_handler_failed", method=method)
                await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}")
            finally:
                self._metrics.grpc_requests.labels(method, code).inc()
                self._metrics.grpc_latency.labels(method).observe(time.perf_counter() - started)


async def _drain_into(result: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Run a streaming behaviour: an async generator (yielding) or a coroutine (using write)."""
    if hasattr(result, "__aiter__"):
        async for item in result:
            await context.write(item)
    else:
        await result


class GrpcServer:
    """The API server (mTLS) plus the plaintext probe server, sharing one health servicer."""

    def __init__(
        self,
        *,
        service: str,
        settings: GrpcSettings,
        tls: TlsFiles,
        bindings: Sequence[ServiceBinding],
        metrics: ServiceMetrics,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.service = service
        self._settings = settings
        self._tls = tls
        self._bindings = list(bindings)
        self.health = health.aio.HealthServicer()
        self._server = grpc.aio.server(interceptors=[_Interceptor(metrics, tracer_provider)])
        self._probe = grpc.aio.server()
        self.port = 0
        self.probe_port = 0

    async def start(self) -> None:
        server = self._server
        names = [b.name for b in self._bindings]
        for binding in self._bindings:
            binding.add_to_server(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._probe)
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        _add_reflection(server, [*names, health_name, reflection.SERVICE_NAME])
        # The probe port lists only health, so `grpcurl -plaintext HOST:PROBE ...Health/Check` works.
        _add_reflection(self._probe, [health_name, reflection.SERVICE_NAME])
        s = self._settings
        self.port = server.add_secure_port(f"{s.host}:{s.port}", server_credentials(self._tls))
        self.probe_port = self._probe.add_insecure_port(f"{s.probe_host}:{s.probe_port}")
        if self.port == 0 or self.probe_port == 0:
            raise OSError(f"could not bind gRPC ports {s.host}:{s.port} / {s.probe_host}:{s.probe_port}")
        await server.start()
        await self._probe.start()
        for name in ["", *names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("grpc_serving", service=self.service, port=self.port, probe_port=self.probe_port)

    async def set_serving(self, serving: bool) -> None:
        """Report readiness on health (e.g. NOT_SERVING while a dependency is down)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *(b.name for b in self._bindings)]:
            await self.health.set(name, status)

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, stop accepting new calls, let running calls finish, stop."""
        grace = self._settings.grace_seconds if grace is None else grace
        await self.health.enter_graceful_shutdown()
        await self._server.stop(grace)
        await self._probe.stop(0)
        log.info("grpc_stopped", service=self.service)

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()
