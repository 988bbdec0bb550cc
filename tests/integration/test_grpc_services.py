"""The four services over mTLS gRPC, driven by the real grpcurl binary and grpc clients."""

from __future__ import annotations

import grpc
import pytest

from opensqt.certs import DevPki
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import (
    events_pb2,
    executor_pb2,
    executor_pb2_grpc,
    monitor_pb2,
    monitor_pb2_grpc,
    risk_pb2,
    risk_pb2_grpc,
)
from tests.integration.conftest import RunningService
from tests.support.grpcurl import grpcurl
from tests.support.protos import declared_rpcs

pytestmark = pytest.mark.integration

SERVICE_NAMES = ["monitor", "strategy", "executor", "risk"]


def tls(pki: DevPki, identity: str) -> TlsFiles:
    return TlsFiles(pki.ca, pki.cert(identity), pki.key(identity))


async def test_grpcurl_with_operator_certificate_lists_health_reflection_and_each_service(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    for name in SERVICE_NAMES:
        service = constellation[name]
        result = await grpcurl(service.target, "list", pki=pki)
        assert result.returncode == 0, result.stderr
        listed = set(result.stdout.split())
        assert listed == {
            service.full_name,
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }, name


async def test_grpcurl_health_is_serving_for_the_server_and_each_service(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    for name in SERVICE_NAMES:
        service = constellation[name]
        overall = await grpcurl(service.target, "grpc.health.v1.Health/Check", pki=pki)
        assert overall.returncode == 0, overall.stderr
        assert '"status": "SERVING"' in overall.stdout
        named = await grpcurl(
            service.target,
            "grpc.health.v1.Health/Check",
            data=f'{{"service":"{service.full_name}"}}',
            pki=pki,
        )
        assert '"status": "SERVING"' in named.stdout, named.stderr


async def test_grpcurl_describe_of_every_method_matches_the_proto_files(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    declared = declared_rpcs()
    for name in SERVICE_NAMES:
        service = constellation[name]
        methods = declared[service.full_name]
        assert methods, f"no rpc parsed for {service.full_name}"
        described = await grpcurl(service.target, "describe", service.full_name, pki=pki)
        assert described.returncode == 0, described.stderr
        for method, (request, response) in methods.items():
            expected = f"rpc {method} ( .opensqt.v1.{request} ) returns ( .opensqt.v1.{response} );"
            assert expected in described.stdout, f"{service.full_name}.{method}"
        # and one method on its own, as an operator would ask
        method, (request, response) = next(iter(methods.items()))
        single = await grpcurl(service.target, "describe", f"{service.full_name}.{method}", pki=pki)
        assert single.returncode == 0, single.stderr
        assert f"rpc {method} ( .opensqt.v1.{request} ) returns ( .opensqt.v1.{response} );" in single.stdout


async def test_grpcurl_describe_of_a_message_shows_decimal_strings(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    result = await grpcurl(constellation["executor"].target, "describe", "opensqt.v1.OrderRequest", pki=pki)
    assert result.returncode == 0, result.stderr
    assert "string price = 7;" in result.stdout
    assert "string quantity = 8;" in result.stdout


async def test_a_caller_without_a_client_certificate_is_refused(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    for name in SERVICE_NAMES:
        result = await grpcurl(constellation[name].target, "list", pki=pki, identity=None, connect_timeout=1)
        assert result.returncode != 0, name
        assert "opensqt.v1" not in result.stdout
    # the same refusal through a Python client that presents no certificate
    ca_only = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    async with grpc.aio.secure_channel(constellation["risk"].target, ca_only) as channel:
        stub = risk_pb2_grpc.RiskServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetTradingState(risk_pb2.GetTradingStateRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_from_another_ca_is_refused(
    constellation: dict[str, RunningService], pki: DevPki, foreign_pki: DevPki
) -> None:
    # client trusts our CA (so the server is verified) but presents a foreign operator certificate
    foreign = TlsFiles(pki.ca, foreign_pki.cert("operator"), foreign_pki.key("operator"))
    async with secure_channel(constellation["risk"].target, foreign) as channel:
        stub = risk_pb2_grpc.RiskServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Halt(risk_pb2.HaltRequest(reason="intruder"), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # the refused Halt changed nothing
    async with secure_channel(constellation["risk"].target, tls(pki, "operator")) as channel:
        state = await risk_pb2_grpc.RiskServiceStub(channel).GetTradingState(
            risk_pb2.GetTradingStateRequest()
        )
        assert state.trading_state.state == events_pb2.TRADING_STATE_KIND_ACTIVE
    # and with grpcurl: a foreign client certificate
    result = await grpcurl(
        constellation["executor"].target, "list", pki=foreign_pki, ca=pki.ca, connect_timeout=1
    )
    assert result.returncode != 0
    assert "opensqt.v1" not in result.stdout


async def test_monitor_identity_calling_executor_halt_gets_permission_denied(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    executor = constellation["executor"]
    denied = await grpcurl(
        executor.target, "opensqt.v1.ExecutorService/Halt", data="{}", pki=pki, identity="monitor"
    )
    assert denied.grpc_code == grpc.StatusCode.PERMISSION_DENIED.value[0], denied.stderr
    assert "identity 'monitor' may not call /opensqt.v1.ExecutorService/Halt" in denied.stderr
    assert (
        executor.metric(
            "opensqt_grpc_permission_denied_total",
            method="/opensqt.v1.ExecutorService/Halt",
            identity="monitor",
        )
        == 1
    )
    # the executor is still ACTIVE
    async with secure_channel(executor.target, tls(pki, "operator")) as channel:
        status = await executor_pb2_grpc.ExecutorServiceStub(channel).GetStatus(
            executor_pb2.GetExecutorStatusRequest()
        )
        assert status.trading_state.state == events_pb2.TRADING_STATE_KIND_ACTIVE


async def test_authorization_table_is_applied_per_identity(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    executor, risk = constellation["executor"], constellation["risk"]
    cases = [
        # (target, identity, method, expected code)
        (executor.target, "strategy", "opensqt.v1.ExecutorService/GetStatus", 0),
        (executor.target, "strategy", "opensqt.v1.ExecutorService/Halt", grpc.StatusCode.PERMISSION_DENIED),
        (executor.target, "risk", "opensqt.v1.ExecutorService/GetStatus", 0),
        (
            executor.target,
            "monitor",
            "opensqt.v1.ExecutorService/GetStatus",
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (risk.target, "strategy", "opensqt.v1.RiskService/GetTradingState", 0),
        (risk.target, "strategy", "opensqt.v1.RiskService/Halt", grpc.StatusCode.PERMISSION_DENIED),
        (risk.target, "executor", "opensqt.v1.RiskService/Resume", grpc.StatusCode.PERMISSION_DENIED),
        (risk.target, "monitor", "opensqt.v1.RiskService/GetTradingState", grpc.StatusCode.PERMISSION_DENIED),
    ]
    for target, identity, method, expected in cases:
        result = await grpcurl(target, method, data="{}", pki=pki, identity=identity)
        if expected == 0:
            assert result.returncode == 0, (identity, method, result.stderr)
        else:
            assert result.grpc_code == expected.value[0], (identity, method, result.stderr)


async def test_probe_port_serves_plaintext_health_only(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    for name in SERVICE_NAMES:
        service = constellation[name]
        health = await grpcurl(service.probe_target, "grpc.health.v1.Health/Check", plaintext=True)
        assert health.returncode == 0, health.stderr
        assert '"status": "SERVING"' in health.stdout
        listed = await grpcurl(service.probe_target, "list", plaintext=True)
        assert service.full_name not in listed.stdout
        api = await grpcurl(
            service.probe_target,
            f"{service.full_name}/GetStatus",
            data="{}",
            plaintext=True,
            connect_timeout=1,
        )
        assert api.returncode != 0
        # and the API port does not speak plaintext
        plain_api = await grpcurl(service.target, "list", plaintext=True, connect_timeout=1)
        assert plain_api.returncode != 0


async def test_bad_arguments_get_invalid_argument_naming_the_field(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    async with secure_channel(constellation["risk"].target, tls(pki, "operator")) as channel:
        risk = risk_pb2_grpc.RiskServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as no_reason:
            await risk.Halt(risk_pb2.HaltRequest(reason="  "))
        assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert no_reason.value.details().startswith("reason: is required")
        with pytest.raises(grpc.aio.AioRpcError) as bad_limit:
            await risk.ListAlerts(risk_pb2.ListAlertsRequest(limit=5000))
        assert bad_limit.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "limit" in bad_limit.value.details()
        state = await risk.GetTradingState(risk_pb2.GetTradingStateRequest())
        assert state.trading_state.version == 0, "a refused Halt must change nothing"
    async with secure_channel(constellation["monitor"].target, tls(pki, "operator")) as channel:
        monitor = monitor_pb2_grpc.MonitorServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as no_symbol:
            await monitor.GetLatestPrice(monitor_pb2.GetLatestPriceRequest())
        assert no_symbol.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert no_symbol.value.details().startswith("symbol:")
        with pytest.raises(grpc.aio.AioRpcError) as unseen:
            await monitor.GetLatestPrice(monitor_pb2.GetLatestPriceRequest(symbol="BTCUSDT"))
        assert unseen.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as bad_interval:
            await monitor.GetCandles(monitor_pb2.GetCandlesRequest(symbol="BTCUSDT", interval="2m", limit=5))
        assert bad_interval.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_interval.value.details().startswith("interval:")
        with pytest.raises(grpc.aio.AioRpcError) as no_venue:  # this monitor watches no symbol
            await monitor.GetCandles(monitor_pb2.GetCandlesRequest(symbol="BTCUSDT", limit=5))
        assert no_venue.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "OPENSQT_SYMBOLS" in no_venue.value.details()


async def test_reflection_v1_answers_like_v1alpha(
    constellation: dict[str, RunningService], pki: DevPki
) -> None:
    from grpc_reflection.v1alpha import reflection_pb2

    async with secure_channel(constellation["strategy"].target, tls(pki, "operator")) as channel:
        call = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        responses = [r async for r in call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))]
    names = {s.name for s in responses[0].list_services_response.service}
    assert "opensqt.v1.StrategyService" in names
