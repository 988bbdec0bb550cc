"""Real servers for tests: nats-server (JetStream), redis-server, dev certificates, services.

Every server binds 127.0.0.1 on a free port and is owned (start, readiness, teardown) here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensqt.certs import DevPki, generate_dev_pki
from opensqt.config import GrpcSettings, NatsSettings, RedisSettings, ServiceSettings, TlsSettings
from opensqt.devstack import NatsServer, RedisServer, free_port
from opensqt.runtime import ServiceRuntime


@contextlib.contextmanager
def nats_server(tmp: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp / "nats").start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def redis_server(tmp: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp / "redis").start()
    try:
        yield server
    finally:
        server.stop()


def dbos_database_url(tmp: Path) -> str:
    """SQLite in ``tmp``; a fresh Postgres database when ``OPENSQT_TEST_PG_URL`` is set
    (e.g. ``postgresql://postgres@127.0.0.1:5432``: DBOS creates the database itself)."""
    base = os.environ.get("OPENSQT_TEST_PG_URL", "").strip()
    if base:
        return f"{base.rstrip('/')}/opensqt_test_{uuid.uuid4().hex[:12]}"
    return f"sqlite:///{tmp / 'dbos.sqlite'}"


def make_pki(directory: Path) -> DevPki:
    return generate_dev_pki(directory)


@dataclass
class Infra:
    """Addresses of the real servers one test uses."""

    nats: NatsServer
    redis: RedisServer
    pki: DevPki
    tmp: Path

    def service_settings(self, cls: type[ServiceSettings], **overrides: Any) -> Any:
        """Settings for a service on free loopback ports, pointed at these servers.

        An executor gets its DBOS database in the test's directory and, unless told otherwise,
        a venue URL where nothing listens (its markets never load; order RPCs say UNAVAILABLE).
        """
        if cls.model_fields.get("dbos") is not None and "dbos" not in overrides:
            from opensqt_services.executor.settings import DbosSettings

            url = dbos_database_url(self.tmp)
            overrides["dbos"] = DbosSettings(
                data_dir=self.tmp / "dbos", system_database_url=None if url.startswith("sqlite") else url
            )
        if cls.model_fields.get("venue") is not None and "venue" not in overrides:
            from opensqt.exchange.settings import VenueSettings

            dead = f"127.0.0.1:{free_port()}"
            overrides["venue"] = VenueSettings(
                rest_url=f"http://{dead}", ws_url=f"ws://{dead}", timeout_ms=500
            )
        return cls(
            grpc=GrpcSettings(port=free_port(), probe_port=free_port(), grace_seconds=0.5),
            tls=TlsSettings(cert_dir=self.pki.directory),
            nats=NatsSettings(url=self.nats.url),
            redis=RedisSettings(url=self.redis.url),  # type: ignore[arg-type]
            **overrides,
        )


RunFn = Callable[..., Awaitable[None]]


@contextlib.asynccontextmanager
async def running_service(run: RunFn, settings: Any, **kwargs: Any) -> AsyncIterator[ServiceRuntime]:
    """Run a service's ``run(settings, stop=..., started=...)`` in this event loop."""
    stop = asyncio.Event()
    started: asyncio.Future[ServiceRuntime] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(settings, stop=stop, started=started, **kwargs))
    done, _ = await asyncio.wait({task, started}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises the start-up error
        raise RuntimeError("service stopped before it started")
    if not done:
        task.cancel()
        raise TimeoutError("service did not start within 20 s")
    try:
        yield started.result()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
