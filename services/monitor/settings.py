"""Monitor settings (env prefix ``OPENSQT_``)."""

from __future__ import annotations

from opensqt.config import GrpcSettings, ServiceSettings
from opensqt.exchange.settings import VenueSettings


class MonitorSettings(ServiceSettings):
    identity: str = "monitor"
    grpc: GrpcSettings = GrpcSettings(port=50051, probe_port=8081)
    account: str = "main"
    # A read-only key is enough for the monitor.
    venue: VenueSettings = VenueSettings()
