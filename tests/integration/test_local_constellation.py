"""The four services as real processes (as `opensqt run` starts them): serve, then stop on SIGTERM."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from opensqt.certs import DevPki
from opensqt.devstack import free_port
from opensqt.local import SERVICES, LocalConstellation, ServicePorts
from tests.support.grpcurl import grpcurl

pytestmark = pytest.mark.integration


async def test_service_processes_serve_over_mtls_and_exit_zero_on_sigterm(
    tmp_path: Path, pki: DevPki
) -> None:
    # free_port() releases the port it found; under a busy suite another server can take it
    # before a service binds, so start-up is tried once more with fresh ports.
    for attempt in range(2):
        ports = {name: ServicePorts(free_port(), free_port(), free_port()) for name in SERVICES}
        constellation = LocalConstellation(
            workdir=tmp_path / f"run{attempt}", cert_dir=pki.directory, ports=ports, paper_port=free_port()
        )
        try:
            await asyncio.to_thread(constellation.start)
            break
        except (RuntimeError, TimeoutError):
            if attempt == 1:
                raise
    try:
        for name in SERVICES:
            listed = await grpcurl(f"127.0.0.1:{ports[name].api}", "list", pki=pki)
            assert listed.returncode == 0, listed.stderr
            assert f"opensqt.v1.{name.capitalize()}Service" in listed.stdout
            reader = asyncio.open_connection("127.0.0.1", ports[name].metrics)
            r, w = await reader
            w.write(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            body = (await r.read()).decode()
            w.close()
            assert f'opensqt_build_info{{service="{name}"' in body
            # the collector's pauses are measured in the service process
            young = re.search(r'^opensqt_gc_pause_seconds_count\{generation="0"\} (\S+)$', body, re.M)
            assert young is not None, name
            assert float(young.group(1)) > 0, name
    finally:
        codes = await asyncio.to_thread(constellation.stop)
    assert codes == dict.fromkeys((*SERVICES, "paper-exchange"), 0)
    for name in SERVICES:
        log = (constellation.workdir / f"{name}.log").read_text()
        assert "service_stopped" in log, name
        # start-up objects frozen out of the collector's reach, after a full collection
        assert re.search(r"heap_settled .*collected=True", log), name
        assert "Traceback" not in log, name
