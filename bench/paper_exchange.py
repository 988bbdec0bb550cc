"""Paper exchange figures: order round-trip latency through ccxt, and matching throughput.

    .venv/bin/python bench/paper_exchange.py                 # server as a separate process
    .venv/bin/python bench/paper_exchange.py --in-process    # server in this event loop
    .venv/bin/python bench/paper_exchange.py --orders 2000 --events 50000

Latency: the unmodified ccxt ``binanceusdm`` client (async) against the paper exchange on
loopback (manual market, SQLite persistence on, as in production use): ``create_order`` of a
resting limit order, ``fetch_order`` by client id and ``cancel_order``, p50/p99 of each.

Throughput: the venue (matching core plus the paper exchange's validation, bookkeeping and
event fan-out, no HTTP): orders/s for alternately resting and filling limit orders, with and
without a SQLite commit per order, and market events/s for price moves that sweep a book of
resting orders (fills re-placed so the book stays full). Nothing is asserted; see
bench/README.md for measured numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.pro as ccxtpro

from opensqt.devstack import free_port, wait_for_port
from opensqt.exchange.ccxt_adapter import rewrite_urls
from opensqt.model import OrderType, Side
from opensqt.paper import PaperExchange, PaperSettings
from opensqt.paper.records import Family, OrderParams, Wallet
from opensqt.paper.sources import ManualSource
from opensqt.paper.store import PaperStore
from opensqt.paper.venue import PaperVenue

KEY, SECRET = "paper-main-trade-key", "paper-main-trade-secret"
PERP = "BTC/USDT:USDT"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(label: str, samples: list[float]) -> None:
    ms = [s * 1000 for s in samples]
    print(
        f"  {label:<14} p50 {percentile(ms, 0.5):6.2f} ms   p99 {percentile(ms, 0.99):6.2f} ms   "
        f"mean {statistics.fmean(ms):6.2f} ms   (n={len(ms)})"
    )


async def round_trips(rest_url: str, ws_url: str, count: int) -> None:
    client: Any = ccxtpro.binanceusdm(
        {"apiKey": KEY, "secret": SECRET, "enableRateLimit": False, "options": {"fetchCurrencies": False}}
    )
    client.urls["api"] = rewrite_urls(client.urls["api"], rest_url, ws_url)
    client.timeout_on_exit = 0
    create: list[float] = []
    fetch: list[float] = []
    cancel: list[float] = []
    try:
        await client.load_markets()
        for warmup in range(20):
            await client.create_order(PERP, "limit", "buy", 0.01, 20000, {"clientOrderId": f"warm-{warmup}"})
            await client.cancel_order(None, PERP, {"origClientOrderId": f"warm-{warmup}"})
        for index in range(count):
            client_id = f"bench-{index}"
            started = time.perf_counter()
            await client.create_order(PERP, "limit", "buy", 0.01, 20000, {"clientOrderId": client_id})
            created = time.perf_counter()
            await client.fetch_order(None, PERP, {"origClientOrderId": client_id})
            fetched = time.perf_counter()
            await client.cancel_order(None, PERP, {"origClientOrderId": client_id})
            cancelled = time.perf_counter()
            create.append(created - started)
            fetch.append(fetched - created)
            cancel.append(cancelled - fetched)
    finally:
        await client.close()
    report("create_order", create)
    report("fetch_order", fetch)
    report("cancel_order", cancel)


def start_server(state_file: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``python -m opensqt.paper`` with a manual market on a free port, once it listens."""
    port = free_port()
    command = [sys.executable, "-m", "opensqt.paper", "--port", str(port), "--state-file", str(state_file)]
    proc = subprocess.Popen(
        [*command, "--source", "manual"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_port(port, timeout=20, proc=proc)
    return proc, port


async def latency(count: int, in_process: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        state_file = Path(directory) / "paper.sqlite"
        if in_process:
            exchange = PaperExchange(PaperSettings(port=0, state_file=state_file), source=ManualSource())
            await exchange.start()
            try:
                print(f"order round trips through ccxt binanceusdm (server in process, {count} orders):")
                await round_trips(exchange.rest_url, exchange.ws_url, count)
            finally:
                await exchange.stop()
            return
        proc, port = start_server(state_file)
        try:
            print(f"order round trips through ccxt binanceusdm (server as a process, {count} orders):")
            await round_trips(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", count)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def new_venue() -> PaperVenue:
    settings = PaperSettings()
    venue = PaperVenue(settings.markets)
    venue.add_account("bench", {Wallet.USDM: {"USDT": Decimal(10**12)}}, 0)
    venue.move_price(Family.USDM, "BTCUSDT", Decimal(30000), 0)
    return venue


def order_params(index: int, price: Decimal) -> OrderParams:
    return OrderParams(
        symbol="BTCUSDT",
        side=Side.BUY if index % 2 == 0 else Side.SELL,
        order_type=OrderType.LIMIT,
        quantity=Decimal("0.010"),
        price=price,
        client_order_id=f"o-{index}",
    )


def order_throughput(count: int, *, persist: bool) -> None:
    """``count`` orders: a resting buy, a sell that takes at once, a cancel of the buy, ..."""
    venue = new_venue()
    store: PaperStore | None = None
    directory = tempfile.TemporaryDirectory()
    if persist:
        store = PaperStore(Path(directory.name) / "bench.sqlite")
    started = time.perf_counter()
    for index in range(count):
        resting = index % 2 == 0
        venue.submit("bench", Wallet.USDM, order_params(index, Decimal(20000 if resting else 29000)), index)
        if not resting:
            venue.cancel("bench", Wallet.USDM, "BTCUSDT", None, f"o-{index - 1}", index)
        if store is not None:
            store.save(venue.to_state(), {}, venue.unsaved)
            venue.unsaved = []
    elapsed = time.perf_counter() - started
    label = "with a SQLite commit per order" if persist else "in memory"
    print(
        f"  orders ({label}): {count:,} orders (+{count // 2:,} cancels) in {elapsed:.2f} s = "
        f"{count / elapsed:,.0f} orders/s"
    )
    if store is not None:
        store.close()
    directory.cleanup()


def market_throughput(events: int, depth: int, *, crossing: bool) -> None:
    """Price moves over a book of ``depth`` levels a side; a filled level is re-placed on the
    other side at the same price (a ping-pong grid), so the book stays full."""
    venue = new_venue()
    for level in range(depth):
        offset = Decimal(level + 1)
        venue.submit("bench", Wallet.USDM, order_params(2 * level, Decimal(30000) - offset), 0)
        venue.submit("bench", Wallet.USDM, order_params(2 * level + 1, Decimal(30000) + offset), 0)
    fills = 0
    next_id = 2 * depth
    started = time.perf_counter()
    for index in range(events):
        # most moves cross nothing; every tenth crosses the nearest level
        step = Decimal("1.5") if crossing and index % 10 in (0, 5) else Decimal("0.5")
        price = Decimal(30000) + (step if index % 2 else -step)
        before = len(venue.trades)
        venue.move_price(Family.USDM, "BTCUSDT", price, index)
        for trade in venue.trades[before:]:
            fills += 1
            side_index = next_id if trade.side is Side.SELL else next_id + 1  # even: BUY, odd: SELL
            venue.submit("bench", Wallet.USDM, order_params(side_index, trade.price), index)
            next_id += 2
    elapsed = time.perf_counter() - started
    print(
        f"  market events (book of {2 * depth} orders): {events:,} price moves in {elapsed:.2f} s = "
        f"{events / elapsed:,.0f} events/s, {fills:,} fills (each re-placed)"
        if crossing
        else f"  market events crossing nothing (book of {2 * depth} orders): {events:,} price moves in "
        f"{elapsed:.2f} s = {events / elapsed:,.0f} events/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1000, help="round trips and orders per throughput run")
    parser.add_argument("--events", type=int, default=20000, help="price moves for the market-event run")
    parser.add_argument(
        "--depth", type=int, default=50, help="resting orders per side for the market-event run"
    )
    parser.add_argument("--in-process", action="store_true", help="run the server in this event loop")
    args = parser.parse_args()
    asyncio.run(latency(args.orders, args.in_process))
    print("matching throughput (venue + core, no HTTP):")
    order_throughput(args.orders * 10, persist=False)
    order_throughput(args.orders, persist=True)
    market_throughput(args.events, args.depth, crossing=False)
    market_throughput(args.events, args.depth, crossing=True)


if __name__ == "__main__":
    main()
