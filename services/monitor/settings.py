"""Monitor settings (env prefix ``OPENSQT_``)."""

from __future__ import annotations

from opensqt.config import GrpcSettings, ServiceSettings


class MonitorSettings(ServiceSettings):
    identity: str = "monitor"
    grpc: GrpcSettings = GrpcSettings(port=50051, probe_port=8081)
    venue: str = "paper"
