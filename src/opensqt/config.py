"""Typed settings shared by the four services.

One pydantic-settings class per service, built in ``main`` and passed down (no import-time
singletons). Sources, highest priority first: constructor arguments, environment variables
(prefix ``OPENSQT_``, nested with ``__``, e.g. ``OPENSQT_NATS__URL``), secret files in
``OPENSQT_SECRETS_DIR`` (named like the variables, e.g. a file ``OPENSQT_REDIS__URL``, as
Kubernetes mounts a Secret), then the YAML file named by ``OPENSQT_CONFIG_FILE``. Secrets are
:class:`~pydantic.SecretStr` and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

__all__ = [
    "GrpcSettings",
    "NatsSettings",
    "RedisSettings",
    "ServiceSettings",
    "TelemetrySettings",
    "TlsSettings",
    "IDENTITIES",
    "SPOT_INSTANCES",
]

#: Certificate identities known to the authorization table.
IDENTITIES = ("monitor", "strategy", "executor", "risk", "operator")

#: The second executor and monitor an arbitrage bot needs (its spot leg's venue): instance name ->
#: the identity it runs as. An instance has its identity's certificate and permissions under its
#: own host name, which that certificate lists so callers can verify it (opensqt.certs, the
#: cert-manager Certificates in deploy/k8s/components/mtls).
SPOT_INSTANCES = {"executor-spot": "executor", "monitor-spot": "monitor"}

_DEFAULT_CERT_DIR = Path(".certs")


class SecretFilesSource(EnvSettingsSource):
    """Settings from files whose names are variable names (``OPENSQT_REDIS__URL``) in a directory.

    Each file holds one value (trailing newline stripped); nesting works as for the environment.
    """

    def __init__(self, settings_cls: type[BaseSettings], directory: Path) -> None:
        if not directory.is_dir():
            raise NotADirectoryError(f"OPENSQT_SECRETS_DIR={directory}: not a directory")
        self._directory = directory
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        values: dict[str, str | None] = {}
        for path in sorted(self._directory.iterdir()):
            # Kubernetes mounts keys as symlinks into a hidden ..data directory.
            if path.name.startswith(".") or not path.is_file():
                continue
            values[path.name.lower()] = path.read_text().rstrip("\n")
        return values


class TlsSettings(BaseModel):
    """mTLS material. Certificate and key default to ``<cert_dir>/<identity>.pem`` / ``.key``."""

    model_config = {"extra": "forbid"}

    cert_dir: Path = _DEFAULT_CERT_DIR
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def resolved(self, identity: str) -> tuple[Path, Path, Path]:
        """(ca, cert, key) paths for ``identity``."""
        return (
            self.ca_file or self.cert_dir / "ca.pem",
            self.cert_file or self.cert_dir / f"{identity}.pem",
            self.key_file or self.cert_dir / f"{identity}.key",
        )


class GrpcSettings(BaseModel):
    """The mTLS API port and the plaintext, health-only probe port."""

    model_config = {"extra": "forbid"}

    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    probe_host: str = "127.0.0.1"
    probe_port: int = Field(ge=0, le=65535)
    grace_seconds: float = Field(default=5.0, ge=0)
    client_deadline_seconds: float = Field(default=5.0, gt=0)


class NatsSettings(BaseModel):
    model_config = {"extra": "forbid"}

    url: str = "nats://127.0.0.1:4222"
    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    # JetStream replicas for the streams this service creates (3 in a clustered production NATS).
    stream_replicas: int = Field(default=1, ge=1, le=5)


class RedisSettings(BaseModel):
    model_config = {"extra": "forbid"}

    # A URL can carry a password, so it is a secret.
    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    socket_timeout_seconds: float = Field(default=2.0, gt=0)


class TelemetrySettings(BaseModel):
    model_config = {"extra": "forbid"}

    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # OTLP/gRPC collector endpoint, e.g. "http://otel-collector:4317"; unset: no export.
    otlp_endpoint: str | None = None
    # Share of traces recorded where they start (1.0: all; others follow their caller).
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    metrics_host: str = "127.0.0.1"
    # 0 disables the /metrics endpoint.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # How often the event loop's lateness is sampled (opensqt_event_loop_lag_seconds); 0: never.
    loop_lag_probe_ms: int = Field(default=100, ge=0, le=60_000)


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set ``identity`` and the default ports."""

    model_config = SettingsConfigDict(
        env_prefix="OPENSQT_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    identity: str
    environment: Literal["dev", "prod"] = "dev"
    # uvloop (libuv) by default: a quicker event loop; "asyncio" is the standard library's.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # Freeze the objects alive after start-up out of the garbage collector's reach, so its
    # pauses walk only what the service allocates while it runs (opensqt.heap).
    gc_freeze: bool = True
    grpc: GrpcSettings
    tls: TlsSettings = TlsSettings()
    nats: NatsSettings = NatsSettings()
    redis: RedisSettings = RedisSettings()
    telemetry: TelemetrySettings = TelemetrySettings()

    @field_validator("identity")
    @classmethod
    def _known_identity(cls, value: str) -> str:
        if value not in IDENTITIES:
            raise ValueError(f"identity must be one of {', '.join(IDENTITIES)}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _json_logs_in_prod(self) -> ServiceSettings:
        if self.environment == "prod" and "telemetry" not in self.model_fields_set:
            self.telemetry = self.telemetry.model_copy(update={"log_format": "json"})
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets_dir = os.environ.get("OPENSQT_SECRETS_DIR")
        if secrets_dir:
            sources.append(SecretFilesSource(settings_cls, Path(secrets_dir)))
        config_file = os.environ.get("OPENSQT_CONFIG_FILE")
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise FileNotFoundError(f"OPENSQT_CONFIG_FILE={config_file}: no such file")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)
