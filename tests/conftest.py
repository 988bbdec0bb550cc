"""Shared fixtures: real nats-server and redis-server on free loopback ports, dev certificates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opensqt.certs import DevPki
from opensqt.devstack import NatsServer, RedisServer
from tests.support.servers import Infra, make_pki, nats_server, redis_server


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """The constellation's development CA and one certificate per identity."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """Certificates from a different CA, which every service must refuse."""
    return make_pki(tmp_path_factory.mktemp("foreign-pki"))


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A fresh nats-server with JetStream for one test."""
    with nats_server(tmp_path) as server:
        yield server


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for one test."""
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def infra(nats: NatsServer, redis: RedisServer, pki: DevPki, tmp_path: Path) -> Infra:
    return Infra(nats=nats, redis=redis, pki=pki, tmp=tmp_path)
