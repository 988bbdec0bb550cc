"""The authorization table: complete over the proto files and least privilege per identity."""

from __future__ import annotations

from opensqt.config import IDENTITIES
from opensqt.transport.authz import AUTHORIZATION, is_allowed
from tests.support.protos import declared_rpcs


def all_methods() -> list[str]:
    return [f"/{service}/{method}" for service, methods in declared_rpcs().items() for method in methods]


def test_every_rpc_of_the_proto_files_has_an_entry_and_no_entry_is_stale() -> None:
    methods = all_methods()
    assert len(methods) == 24
    assert set(methods) == set(AUTHORIZATION)


def test_table_names_only_known_identities() -> None:
    for allowed in AUTHORIZATION.values():
        assert allowed <= set(IDENTITIES)


def test_operator_may_call_everything() -> None:
    assert all(is_allowed("operator", m) for m in all_methods())


def test_monitor_may_call_nothing_but_health_and_reflection() -> None:
    assert not any(is_allowed("monitor", m) for m in all_methods())
    assert is_allowed("monitor", "/grpc.health.v1.Health/Check")
    assert is_allowed("monitor", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")


def test_only_risk_and_operator_may_halt_resume_or_cancel_all_on_executors() -> None:
    for verb in ("Halt", "Resume", "CancelAll"):
        method = f"/opensqt.v1.ExecutorService/{verb}"
        assert {i for i in IDENTITIES if is_allowed(i, method)} == {"risk", "operator"}


def test_only_strategy_and_operator_may_place_orders() -> None:
    for verb in ("PlaceOrder", "PlaceOrders", "ExecuteSequence", "CancelOrder"):
        method = f"/opensqt.v1.ExecutorService/{verb}"
        assert {i for i in IDENTITIES if is_allowed(i, method)} == {"strategy", "operator"}


def test_only_the_operator_may_halt_or_resume_the_constellation() -> None:
    for verb in ("Halt", "Resume"):
        assert {i for i in IDENTITIES if is_allowed(i, f"/opensqt.v1.RiskService/{verb}")} == {"operator"}


def test_unknown_methods_and_anonymous_callers_are_denied() -> None:
    assert not is_allowed("operator", "/opensqt.v1.ExecutorService/DropTables")
    assert not is_allowed(None, "/grpc.health.v1.Health/Check")
    assert not is_allowed("", "/opensqt.v1.RiskService/GetTradingState")
    assert not is_allowed("intruder", "/opensqt.v1.RiskService/GetTradingState")
