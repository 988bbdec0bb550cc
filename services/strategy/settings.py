"""Strategy settings (env prefix ``OPENSQT_``)."""

from __future__ import annotations

from opensqt.config import GrpcSettings, ServiceSettings


class StrategySettings(ServiceSettings):
    identity: str = "strategy"
    grpc: GrpcSettings = GrpcSettings(port=50052, probe_port=8082)
