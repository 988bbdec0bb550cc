"""Executor settings (env prefix ``OPENSQT_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from opensqt.config import GrpcSettings, ServiceSettings
from opensqt.exchange.settings import VenueSettings
from opensqt.execution.durable import BACKGROUND_SWEEP_S


class DbosSettings(BaseModel):
    """The DBOS system database: SQLite in ``data_dir`` unless a Postgres URL is given."""

    model_config = {"extra": "forbid"}

    system_database_url: SecretStr | None = None
    data_dir: Path = Path(".run/executor")
    # SQLite only (WAL mode): NORMAL survives a crash or kill -9 of the executor, not a power loss
    # of the host; FULL fsyncs every commit (a few ms per order). Production: Postgres.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    # How often DBOS sweeps for delayed and timed-out workflows (the executor makes neither).
    # DBOS's default is 1 s, and each sweep stalls order handling for 1-3 ms; on Postgres at
    # most 4 s (opensqt.execution.durable).
    background_sweep_seconds: float = Field(default=BACKGROUND_SWEEP_S, ge=1.0, le=300.0)

    def url(self, executor_id: str) -> str:
        if self.system_database_url is not None:
            return self.system_database_url.get_secret_value()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / f'dbos-{executor_id}.sqlite').resolve()}"


class ExecutorSettings(ServiceSettings):
    identity: str = "executor"
    grpc: GrpcSettings = GrpcSettings(port=50053, probe_port=8083)
    executor_id: str = Field(default="executor-0", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    account: str = Field(default="main", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    venue: VenueSettings = VenueSettings()
    dbos: DbosSettings = DbosSettings()
    rate_per_second: float = Field(default=25.0, gt=0)
    rate_burst: int = Field(default=30, ge=1)
    post_only_fallback: bool = False
    # When a single order is written to the DBOS journal: "after" the venue answered (the answer
    # waits for no journal write; the Redis submit mark, set before the send, makes any repeat
    # look the order up first) or "before" it is sent (the send is a workflow step: recovery
    # finishes it at restart; ~2 journal transactions more on the order's path). Sequences
    # always run as workflows.
    order_journal: Literal["after", "before"] = "after"
    # host:port others use to reach this executor (risk pushes Halt there); default: the gRPC bind.
    advertise_address: str = ""
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    # How often risk's durable trading state is read again from Redis, in case both its NATS
    # broadcast and its push missed this executor (0: only at start).
    state_check_seconds: float = Field(default=1.0, ge=0)
