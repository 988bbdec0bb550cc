"""Fixtures that run the four services in process against real NATS and Redis."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opensqt.runtime import ServiceRuntime
from opensqt_services.executor.main import run as run_executor
from opensqt_services.executor.settings import ExecutorSettings
from opensqt_services.monitor.main import run as run_monitor
from opensqt_services.monitor.settings import MonitorSettings
from opensqt_services.risk.main import run as run_risk
from opensqt_services.risk.settings import RiskSettings
from opensqt_services.strategy.main import run as run_strategy
from opensqt_services.strategy.settings import StrategySettings
from tests.support.servers import Infra, running_service

pytestmark = pytest.mark.integration

SERVICES = {
    "monitor": (run_monitor, MonitorSettings, "opensqt.v1.MonitorService"),
    "strategy": (run_strategy, StrategySettings, "opensqt.v1.StrategyService"),
    "executor": (run_executor, ExecutorSettings, "opensqt.v1.ExecutorService"),
    "risk": (run_risk, RiskSettings, "opensqt.v1.RiskService"),
}


@dataclass
class RunningService:
    name: str
    full_name: str
    runtime: ServiceRuntime
    spans: InMemorySpanExporter

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.runtime.grpc.port}"

    @property
    def probe_target(self) -> str:
        return f"127.0.0.1:{self.runtime.grpc.probe_port}"

    def metric(self, name: str, **labels: str) -> float:
        value = self.runtime.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@pytest.fixture
async def constellation(infra: Infra) -> AsyncIterator[dict[str, RunningService]]:
    """All four services, in this event loop, each with an in-memory span exporter."""
    running: dict[str, RunningService] = {}
    async with contextlib.AsyncExitStack() as stack:
        for name, (run, settings_cls, full_name) in SERVICES.items():
            exporter = InMemorySpanExporter()
            runtime = await stack.enter_async_context(
                running_service(
                    run, infra.service_settings(settings_cls), span_processors=[SimpleSpanProcessor(exporter)]
                )
            )
            running[name] = RunningService(name, full_name, runtime, exporter)
        yield running
