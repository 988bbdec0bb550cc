"""Service settings: env prefix, nesting, YAML file, secret files, SecretStr."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from opensqt_services.executor.settings import ExecutorSettings
from opensqt_services.risk.settings import RiskSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("OPENSQT_"):
            monkeypatch.delenv(name)


def test_defaults_bind_loopback_and_distinct_ports() -> None:
    executor, risk = ExecutorSettings(), RiskSettings()
    assert executor.grpc.host == "127.0.0.1"
    assert executor.telemetry.metrics_host == "127.0.0.1"
    assert (executor.grpc.port, risk.grpc.port) == (50053, 50054)
    assert executor.identity == "executor"


def test_environment_variables_with_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSQT_NATS__URL", "nats://nats:4222")
    monkeypatch.setenv("OPENSQT_GRPC__PORT", "6000")
    monkeypatch.setenv("OPENSQT_GRPC__PROBE_PORT", "6001")
    monkeypatch.setenv("OPENSQT_ACCOUNT", "sub-1")
    settings = ExecutorSettings()
    assert settings.nats.url == "nats://nats:4222"
    assert settings.grpc.port == 6000
    assert settings.account == "sub-1"


def test_yaml_file_then_env_overrides_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "executor.yaml"
    config.write_text(
        "account: sub-2\nvenue:\n  name: binance\n  rest_url: ''\n"
        "redis:\n  url: redis://cache:6379/2\ngrpc:\n  port: 7000\n  probe_port: 7001\n"
    )
    monkeypatch.setenv("OPENSQT_CONFIG_FILE", str(config))
    monkeypatch.setenv("OPENSQT_ACCOUNT", "sub-3")
    settings = ExecutorSettings()
    assert settings.account == "sub-3"
    assert settings.venue.name == "binance"
    assert settings.venue.rest_url == ""
    assert settings.redis.url.get_secret_value() == "redis://cache:6379/2"
    assert settings.grpc.port == 7000


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSQT_CONFIG_FILE", "/nope/executor.yaml")
    with pytest.raises(FileNotFoundError, match=r"OPENSQT_CONFIG_FILE=/nope/executor\.yaml"):
        ExecutorSettings()


def test_secrets_from_mounted_files_are_secret_and_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "OPENSQT_REDIS__URL").write_text("redis://:hunter2@cache:6379/0\n")
    (tmp_path / "OPENSQT_NATS__TOKEN").write_text("s3cret")
    monkeypatch.setenv("OPENSQT_SECRETS_DIR", str(tmp_path))
    settings = ExecutorSettings()
    assert settings.redis.url.get_secret_value() == "redis://:hunter2@cache:6379/0"
    assert settings.nats.token is not None
    assert settings.nats.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


def test_bad_values_are_refused_with_the_field_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSQT_GRPC__PORT", "70000")
    with pytest.raises(ValidationError, match=r"grpc\.port"):
        ExecutorSettings()
    monkeypatch.delenv("OPENSQT_GRPC__PORT")
    with pytest.raises(ValidationError, match="identity must be one of"):
        ExecutorSettings(identity="root")
    with pytest.raises(ValidationError, match="account"):
        ExecutorSettings(account="main.sub")


def test_prod_environment_logs_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSQT_ENVIRONMENT", "prod")
    assert ExecutorSettings().telemetry.log_format == "json"
