"""``opensqt demo``: the whole product in a few minutes, on loopback, with nothing to configure.

It starts the local constellation (nats-server, redis-server, the paper exchange, the four
services plus the spot executor and monitor the arbitrage bot needs) on a seeded synthetic market
whose first day holds a funding episode (the arbitrage bot opens spot/perp legs), a crash (risk
moves every executor to REDUCING; the grid cancels its buys) and the funding flip after it (the
legs close). While it runs it prints a status line; at the end a summary from the venue's own
books (orders, fills, PnL) and from risk (each state change and how fast every executor
acknowledged it), then it stops everything it started.

The seed is chosen so these episodes happen early: with seed 82 the BTCUSDT generator's first
crash trips the detector at market minute 937, funding is 0.0134% at minute 480 (above the
bot's entry threshold) and -0.136% at minute 960. At the default 8 market minutes per second
the crash comes about two minutes in.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc

from opensqt.local import LocalConstellation, TradingSetup
from opensqt.model.money import ZERO

__all__ = ["DemoSummary", "account_equity", "demo_setup", "order_counts", "run_demo"]

DEMO_SEED = 82
SYMBOL = "BTCUSDT"  # the arbitrage bot's
GRID_SYMBOL = "ETHUSDT"


_GRID = {"name": "mm1", "symbol": GRID_SYMBOL, "price_interval": "4", "order_notional": "100",
         "max_open_orders": "12"}  # fmt: skip


def demo_setup(*, bars_per_second: float = 8.0, seed: int = DEMO_SEED) -> TradingSetup:
    """What the demo (and ``opensqt run``) trades: an arbitrage bot on BTCUSDT and a grid on
    ETHUSDT (one account keeps one position per symbol, so the two agents need their own)."""
    return TradingSetup(
        symbols=(SYMBOL, GRID_SYMBOL),
        market_makers=(_GRID,),
        arbitrage_bots=({"name": "arb1", "symbol": SYMBOL, "order_base_qty": "0.01"},),
        paper_source="synthetic",
        bars_per_second=bars_per_second,
        seed=seed,
        # a crash of either symbol is a crash; when both are calm again REDUCING lifts by itself
        crash={"trigger_mode": "any", "auto_recover": "true"},
    )


# -- pure summaries of the venue's books (unit-tested) -----------------------------------------


def account_equity(state: dict[str, Any], account: str, prices: dict[str, Decimal]) -> Decimal:
    """An account's equity in USDT from ``GET /admin/state``: every wallet's balances (assets
    valued at ``prices[asset]``) plus the perpetual positions' unrealised PnL at
    ``prices[symbol]``."""
    total = ZERO
    for wallet in state["accounts"][account].values():
        for asset, amount in wallet["balances"].items():
            value = Decimal(amount)
            if asset == "USDT":
                total += value
            elif value:
                total += value * prices[asset]
        for symbol, position in wallet.get("positions", {}).items():
            size = Decimal(position["size"])
            if size:
                total += size * (prices[symbol] - Decimal(position["entry_price"]))
    return total


@dataclass(frozen=True, slots=True)
class OrderCounts:
    orders: int
    fills: int
    cancels: int


def order_counts(log: list[dict[str, Any]], marker: str) -> OrderCounts:
    """Orders (distinct client order ids: a market order that fills at once is logged as a
    trade only), fill events and cancels in the venue's order log whose client order id
    contains ``marker`` (an agent's name)."""
    mine = [e for e in log if marker in e["order"]["client_order_id"]]
    return OrderCounts(
        orders=len({e["order"]["client_order_id"] for e in mine}),
        fills=sum(1 for e in mine if e["execution"] == "TRADE"),
        cancels=sum(1 for e in mine if e["execution"] == "CANCELED"),
    )


def propagations(log_file: Path) -> list[dict[str, Any]]:
    """Risk's ``trading_state_propagated`` records (JSON log lines)."""
    found: list[dict[str, Any]] = []
    if not log_file.is_file():
        return found
    for line in log_file.read_text(errors="replace").splitlines():
        if '"trading_state_propagated"' not in line:
            continue
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return found


# -- the run ------------------------------------------------------------------------------------


@dataclass
class DemoSummary:
    seconds: float
    market_minutes: int
    grid: OrderCounts
    arbitrage: OrderCounts
    equity_start: Decimal
    equity_end: Decimal
    funding: Decimal
    commissions: Decimal
    state_changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pnl(self) -> Decimal:
        return self.equity_end - self.equity_start


class _Probe:
    """Reads the running constellation the way an operator would: the venue's REST and admin
    API, and the services' gRPC APIs with the operator certificate."""

    def __init__(self, constellation: LocalConstellation) -> None:
        self.c = constellation
        self.base_url = constellation.paper_url
        certs = constellation.cert_dir
        self.creds = grpc.ssl_channel_credentials(
            (certs / "ca.pem").read_bytes(),
            (certs / "operator.key").read_bytes(),
            (certs / "operator.pem").read_bytes(),
        )

    def get(self, path: str, **params: str) -> Any:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        with urllib.request.urlopen(self.base_url + path + query, timeout=10) as response:
            return json.loads(response.read())

    def prices(self) -> dict[str, Decimal]:
        prices: dict[str, Decimal] = {}
        for symbol in (SYMBOL, GRID_SYMBOL):
            prices[symbol] = Decimal(self.get("/fapi/v1/ticker/price", symbol=symbol)["price"])
            spot = Decimal(self.get("/api/v3/ticker/price", symbol=symbol)["price"])
            prices[symbol.removesuffix("USDT")] = spot
        return prices

    def market_ms(self) -> int:
        klines = self.get("/fapi/v1/klines", symbol=SYMBOL, interval="1m", limit="1")
        return int(klines[-1][0]) if klines else 0

    def equity(self) -> Decimal:
        return account_equity(self.get("/admin/state"), "main", self.prices())

    def _call(self, service: str, method: str, request: Any, response_type: Any) -> Any:
        target = f"127.0.0.1:{self.c.ports[service].api}"
        with grpc.secure_channel(target, self.creds) as channel:
            call: Any = channel.unary_unary(
                method,
                request_serializer=lambda message: message.SerializeToString(),
                response_deserializer=response_type.FromString,
            )
            return call(request, timeout=5)

    def trading_state(self) -> str:
        from opensqt.v1 import events_pb2, risk_pb2

        reply = self._call(
            "risk",
            "/opensqt.v1.RiskService/GetTradingState",
            risk_pb2.GetTradingStateRequest(),
            risk_pb2.GetTradingStateResponse,
        )
        return str(events_pb2.TradingStateKind.Name(reply.trading_state.state)).removeprefix(
            "TRADING_STATE_KIND_"
        )

    def legs(self) -> str:
        from opensqt.v1 import strategy_pb2

        reply = self._call(
            "strategy",
            "/opensqt.v1.StrategyService/ListLegs",
            strategy_pb2.ListLegsRequest(),
            strategy_pb2.ListLegsResponse,
        )
        if not reply.legs:
            return "none"
        return " ".join(f"{leg.venue}:{leg.size}" for leg in reply.legs)


def _status_line(probe: _Probe, started: float) -> str:
    log = probe.get("/admin/orders")
    grid = order_counts(log, "-mm1-")
    arb = order_counts(log, "arb1")
    market = datetime.fromtimestamp(probe.market_ms() / 1000, tz=UTC).strftime("%m-%d %H:%M")
    prices = probe.prices()
    return (
        f"[{time.monotonic() - started:4.0f}s] {market}  BTC {prices[SYMBOL]:>9} ETH "
        f"{prices[GRID_SYMBOL]:>8}  {probe.trading_state():<8}  grid {grid.orders} orders "
        f"{grid.fills} fills  arb {arb.orders} orders, legs {probe.legs()}"
    )


def run_demo(
    *,
    seconds: float,
    workdir: Path,
    cert_dir: Path,
    bars_per_second: float = 8.0,
    status_every: float = 5.0,
    echo: Callable[[str], None] = print,
    constellation: LocalConstellation | None = None,
) -> DemoSummary:
    """Run the demo for ``seconds`` of wall time; returns the summary (also printed)."""
    if workdir.exists():
        shutil.rmtree(workdir)  # a demo starts from nothing: no venue state, no slots, no DBOS
    c = constellation or LocalConstellation(
        workdir=workdir,
        cert_dir=cert_dir,
        trading=demo_setup(bars_per_second=bars_per_second),
        log_format="json",
    )
    echo("starting nats-server, redis-server, the paper exchange and six service processes ...")
    started = time.monotonic()
    c.start()
    probe = _Probe(c)
    try:
        echo(f"constellation up in {time.monotonic() - started:.1f}s (logs in {workdir}/)")
        first_market = probe.market_ms()
        equity_start = probe.equity()
        deadline = time.monotonic() + seconds
        next_status = time.monotonic()
        while time.monotonic() < deadline:
            for name, proc in c.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {workdir}/{name}.log")
            if time.monotonic() >= next_status:
                try:
                    echo(_status_line(probe, started))
                except (OSError, grpc.RpcError) as exc:
                    echo(f"(status unavailable: {exc})")
                next_status += status_every
            time.sleep(0.2)
        log = probe.get("/admin/orders")
        ledger = probe.get("/admin/ledger", account="main")
        summary = DemoSummary(
            seconds=time.monotonic() - started,
            market_minutes=(probe.market_ms() - first_market) // 60_000,
            grid=order_counts(log, "-mm1-"),
            arbitrage=order_counts(log, "arb1"),
            equity_start=equity_start,
            equity_end=probe.equity(),
            funding=sum((Decimal(e["amount"]) for e in ledger if e["kind"] == "FUNDING_FEE"), ZERO),
            commissions=sum((Decimal(e["amount"]) for e in ledger if e["kind"] == "COMMISSION"), ZERO),
        )
    finally:
        codes = c.stop()
    summary.state_changes = propagations(workdir / "risk.log")
    for line in format_summary(summary, codes):
        echo(line)
    if any(codes.values()):
        raise RuntimeError(f"a process exited with an error: {codes}")
    return summary


def format_summary(summary: DemoSummary, codes: dict[str, int]) -> list[str]:
    q = Decimal("0.01")
    lines = [
        "",
        f"summary after {summary.seconds:.0f}s ({summary.market_minutes} market minutes)",
        f"  market maker mm1 ({GRID_SYMBOL}): {summary.grid.orders} orders, {summary.grid.fills} fills, "
        f"{summary.grid.cancels} cancels",
        f"  arbitrage arb1 ({SYMBOL}):   {summary.arbitrage.orders} orders, {summary.arbitrage.fills} fills",
        f"  account PnL:      {summary.pnl.quantize(q)} USDT (equity {summary.equity_start.quantize(q)} -> "
        f"{summary.equity_end.quantize(q)}; perp funding {summary.funding.quantize(q)}, "
        f"perp commissions {summary.commissions.quantize(q)})",
    ]
    if summary.state_changes:
        lines.append("  trading-state changes (risk -> every executor acknowledged):")
        for change in summary.state_changes:
            lines.append(
                f"    {change.get('timestamp', '')[:19]}  {change.get('state', '?'):<9} "
                f"{change.get('acknowledged', 0)}/{change.get('executors', 0)} executors in "
                f"{change.get('elapsed_ms', '?')} ms"
            )
    else:
        lines.append("  trading-state changes: none (no crash in this window)")
    lines.append("stopped: " + ", ".join(f"{name} exit {code}" for name, code in codes.items()))
    return lines
