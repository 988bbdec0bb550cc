"""Executor settings (env prefix ``OPENSQT_``)."""

from __future__ import annotations

from pydantic import Field

from opensqt.config import GrpcSettings, ServiceSettings


class ExecutorSettings(ServiceSettings):
    identity: str = "executor"
    grpc: GrpcSettings = GrpcSettings(port=50053, probe_port=8083)
    executor_id: str = Field(default="executor-0", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    venue: str = Field(default="paper", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    account: str = Field(default="main", pattern=r"^[A-Za-z0-9_-]{1,64}$")
