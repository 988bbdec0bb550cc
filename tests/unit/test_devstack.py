"""free_port: no port handed out twice in one process."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from opensqt import devstack


class _ProbeSocket:
    """A probe socket whose kernel-chosen ports come from a script."""

    def __init__(self, ports: Iterator[int]) -> None:
        self._ports = ports
        self._port = 0

    def __enter__(self) -> _ProbeSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def bind(self, address: tuple[str, int]) -> None:
        assert address == (devstack.LOOPBACK, 0)
        self._port = next(self._ports)

    def getsockname(self) -> tuple[str, int]:
        return devstack.LOOPBACK, self._port


def test_a_port_the_kernel_offers_again_is_not_handed_out_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel may give two probes in a row the same port: the second caller gets another
    ports = iter([41001, 41001, 41001, 41002])

    def probe(*args: Any) -> _ProbeSocket:
        return _ProbeSocket(ports)

    monkeypatch.setattr(devstack, "_handed_out", set())
    monkeypatch.setattr(socket, "socket", probe)
    assert devstack.free_port() == 41001
    assert devstack.free_port() == 41002


def test_free_ports_are_real_and_distinct() -> None:
    ports = [devstack.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(1024 <= port <= 65535 for port in ports)
