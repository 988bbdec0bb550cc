"""Risk settings (env prefix ``OPENSQT_``)."""

from __future__ import annotations

from opensqt.config import GrpcSettings, ServiceSettings


class RiskSettings(ServiceSettings):
    identity: str = "risk"
    grpc: GrpcSettings = GrpcSettings(port=50054, probe_port=8084)
