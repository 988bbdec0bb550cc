"""Which service a local constellation's instance runs (``opensqt.local.service_of``)."""

from __future__ import annotations

import pytest

from opensqt.local import SERVICES, SPOT_INSTANCES, service_of


@pytest.mark.parametrize(
    ("instance", "service"),
    [
        ("executor-spot", "executor"),
        ("monitor-spot", "monitor"),
        ("executor-b", "executor"),  # bench/constellation.py's extra executors
        *((name, name) for name in SERVICES),
    ],
)
def test_each_instance_runs_its_service(instance: str, service: str) -> None:
    assert service_of(instance) == service


def test_every_spot_instance_runs_a_known_service() -> None:
    assert {service_of(name) for name in SPOT_INSTANCES} <= set(SERVICES)
