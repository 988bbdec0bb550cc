"""``opensqt demo`` end to end, faster: the same processes and seeded market at 30 market minutes
a second, so the funding episode (minute 480), the crash (937) and the funding flip (960) all
happen within about a minute. The summary is checked against what the seed must produce."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensqt.certs import DevPki
from opensqt.demo import demo_setup, run_demo
from opensqt.devstack import free_port
from opensqt.local import SERVICES, SPOT_INSTANCES, LocalConstellation, ServicePorts

pytestmark = pytest.mark.integration


@pytest.mark.timeout(180)
def test_the_demo_trades_both_agents_through_the_funding_episode_and_the_crash(
    tmp_path: Path, pki: DevPki
) -> None:
    workdir = tmp_path / "demo"
    constellation = LocalConstellation(
        workdir=workdir,
        cert_dir=pki.directory,
        ports={
            name: ServicePorts(free_port(), free_port(), free_port()) for name in SERVICES + SPOT_INSTANCES
        },
        trading=demo_setup(bars_per_second=30),
        paper_port=free_port(),
        log_format="json",
    )
    lines: list[str] = []
    summary = run_demo(
        seconds=60, workdir=workdir, cert_dir=pki.directory, status_every=5, echo=lines.append,
        constellation=constellation,
    )  # fmt: skip

    assert summary.market_minutes >= 1000, summary.market_minutes
    assert summary.grid.orders > 0
    assert summary.grid.fills > 0
    # the episode opens spot + perp, the flip closes both: four market orders, all filled
    assert (summary.arbitrage.orders, summary.arbitrage.fills) == (4, 4), lines
    states = [(c["state"], c["acknowledged"], c["executors"]) for c in summary.state_changes]
    assert ("REDUCING", 2, 2) in states, states  # both executors (perp and spot) acknowledged
    assert any("REDUCING" in line for line in lines if line.startswith("["))
    assert lines[-1].startswith("stopped: ")
    assert "exit 1" not in lines[-1]
