"""The paper exchange as a process: its state survives ``kill -9`` and a restart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from opensqt.devstack import free_port, wait_for_port
from tests.integration.paper.conftest import PERP, SPOT, Admin, make_ccxt

pytestmark = pytest.mark.integration


class PaperProcess:
    """``python -m opensqt.paper`` (or ``opensqt paper-exchange``) with a manual market."""

    def __init__(self, state_file: Path, log_file: Path) -> None:
        self.state_file = state_file
        self.log_file = log_file
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def spot_ws_url(self) -> str:
        return f"{self.ws_url}/stream"

    def start(self, *, cli: bool = False) -> None:
        args = ["--port", str(self.port), "--state-file", str(self.state_file), "--source", "manual"]
        if cli:
            command = [str(Path(sys.executable).parent / "opensqt"), "paper-exchange", *args]
        else:
            command = [sys.executable, "-m", "opensqt.paper", *args]
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=20, proc=self.proc)

    def kill(self) -> None:
        """SIGKILL: no chance to save anything on the way out."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def process(tmp_path: Path) -> Iterator[PaperProcess]:
    paper = PaperProcess(tmp_path / "paper.sqlite", tmp_path / "paper.log")
    try:
        yield paper
    finally:
        paper.stop()


async def snapshot(admin: Admin) -> tuple[Any, ...]:
    state = await admin.state()
    return (
        state["accounts"],
        state["markets"],
        state["order_count"],
        await admin.orders(),
        await admin.ledger(),
    )


async def test_state_survives_kill_9_and_restart(process: PaperProcess) -> None:
    process.start()
    async with aiohttp.ClientSession() as session:
        admin = Admin(process.rest_url, session)
        usdm = make_ccxt("binanceusdm", process)
        spot = make_ccxt("binance", process)
        try:
            await usdm.load_markets()
            await spot.load_markets()
            await usdm.set_leverage(5, PERP)
            await usdm.create_order(PERP, "market", "buy", 0.2, None, {"clientOrderId": "filled-1"})
            resting = await usdm.create_order(
                PERP, "limit", "buy", 0.1, 29000, {"clientOrderId": "resting-1"}
            )
            await spot.create_order(SPOT, "limit", "buy", 0.05, 28000, {"clientOrderId": "spot-resting"})
            part = {
                "account": "main",
                "wallet": "spot",
                "symbol": "BTCUSDT",
                "client_order_id": "spot-resting",
            }
            await admin.request("POST", "/admin/fill", {**part, "qty": "0.02"})  # it rests, partly filled
            await admin.funding("BTCUSDT", rate="0.0001")
            listen_key = (await usdm.fapiPrivatePostListenKey())["listenKey"]
            before = await snapshot(admin)
        finally:
            await usdm.close()
            await spot.close()

        process.kill()
        process.start(cli=True)

        usdm = make_ccxt("binanceusdm", process)
        try:
            await usdm.load_markets()
            after = await snapshot(admin)
            found = await usdm.fetch_order(None, PERP, {"origClientOrderId": "resting-1"})
            (position,) = await usdm.fetch_positions([PERP])
            same_key = (await usdm.fapiPrivatePostListenKey())["listenKey"]
            await admin.price("BTCUSDT", "28999.9", family="usdm")
            filled = await usdm.fetch_order(None, PERP, {"origClientOrderId": "resting-1"})
            fresh = await usdm.create_order(
                PERP, "limit", "buy", 0.1, 28000, {"clientOrderId": "after-restart"}
            )
            spot = make_ccxt("binance", process)
            await spot.load_markets()
            partly = await spot.fetch_order(None, SPOT, {"origClientOrderId": "spot-resting"})
            await admin.price("BTCUSDT", "27999", family="spot")
            rest = await spot.fetch_order(None, SPOT, {"origClientOrderId": "spot-resting"})
            spot_wallet = (await admin.state())["accounts"]["main"]["spot"]
        finally:
            await usdm.close()
            await spot.close()

    assert after == before
    assert found["id"] == resting["id"]
    assert found["status"] == "open"
    assert position["contracts"] == 0.2
    assert same_key == listen_key
    assert filled["status"] == "closed"
    assert int(fresh["id"]) > int(resting["id"])  # ids continue, never reused
    assert (partly["status"], partly["filled"], partly["remaining"]) == ("open", 0.02, 0.03)
    assert (rest["status"], rest["filled"]) == ("closed", 0.05)
    assert spot_wallet["locked"] == {}  # the partly filled buy's lock survived, then went whole
