"""Constellation latencies on loopback: tick-to-order, halt propagation, strategy ingest.

    .venv/bin/python bench/constellation.py [--ticks 150] [--halts 40] [--burst 5000]

Everything is a separate process, as deployed: nats-server and redis-server (the virtualenv's
binaries), the paper exchange (manual market), monitor, strategy, risk and three executors
(``executor``, ``executor-b``, ``executor-c``), all on 127.0.0.1 with mTLS
(:class:`opensqt.local.LocalConstellation`). Then:

* **tick-to-order**: the paper exchange applies a new price (``applied_monotonic_ms`` in the
  answer to ``POST /admin/price``) -> the paper exchange answers the grid's new order (its
  request log's ``answered_monotonic_ms`` for that client order id); both read by the paper
  from the host's monotonic clock. Each tick moves the perpetual up one grid level, so the
  trailing window places exactly one new buy. Also shown from the moment this client began the
  admin POST (adds the HTTP request to the paper). Split into the executor's share (its
  ``opensqt_grpc_request_seconds`` for PlaceOrder, mean over the run), the venue's share (the
  paper's request log) and per hop from the services' trace spans.
* **halt propagation**: risk decides a new state -> every executor has applied it and
  acknowledged, as risk measures it (its ``trading_state_propagated`` log line, also the
  ``opensqt_trading_state_propagation_seconds`` histogram): the path a crash trip takes inside
  risk. Driven by an operator's Halt on risk, then Resume; the Halt RPC's own time at the caller
  (mTLS to risk, the decision, the push, the audit record and the broadcast, the answer) is shown
  too. Twice: to REDUCING, which is what a crash trip does (the executors' gates change, nothing
  else), and to HALTED, whose acknowledgement also waits for each executor to cancel the
  account's working orders. Each Halt is followed by a Resume and 200 ms of quiet.
* **strategy ingest with conflation**: ``--burst`` PriceChange events published on NATS as
  fast as one client can; the strategy's received counter and the agent's evaluations show how
  many ticks were conflated into how few decisions.

Prints p50/p99 in milliseconds, and per process the CPU each tick cost and how long it waited
for a core (Linux schedstat). Figures depend on the machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import nats
from _machine import reference_ms
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from opensqt.certs import generate_dev_pki
from opensqt.devstack import free_port
from opensqt.local import SERVICES, LocalConstellation, ServicePorts, TradingSetup
from opensqt.model import PriceChange
from opensqt.transport.grpc_client import secure_channel
from opensqt.transport.subjects import PRICE
from opensqt.transport.tls import TlsFiles
from opensqt.v1 import events_pb2, risk_pb2, risk_pb2_grpc

GRID = {"name": "bench", "symbol": "BTCUSDT", "price_interval": "100", "order_notional": "200",
        "buy_window": "2", "max_open_orders": "4"}  # fmt: skip
EXTRA_EXECUTORS = ("executor-b", "executor-c")
#: Services whose event-loop lag (opensqt_event_loop_lag_seconds) the run reports.
LAG_SERVICES = ("monitor", "strategy", "executor", "risk")
LAG_PROBE_MS = int(os.environ.get("OPENSQT_TELEMETRY__LOOP_LAG_PROBE_MS", "100"))
#: A tick at most every 100 ms: each is a place and a cancel, within the default budget of 25
#: orders/s, so no order waits for a rate-budget token (that would measure the budget).
TICK_PERIOD_S = 0.1
#: After a price change, the benchmark leaves the venue alone this long before reading its log.
QUIET_AFTER_TICK_S = 0.04


@dataclass(frozen=True, slots=True)
class Span:
    service: str
    name: str
    trace_id: bytes
    start_ns: int
    end_ns: int
    attributes: dict[str, str]


class SpanReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """A real OTLP/gRPC endpoint on loopback that keeps every span the services export."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    async def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 (the gRPC method name)
        for resource_spans in request.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"),
                "",
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: a.value.string_value for a in span.attributes}
                    self.spans.append(
                        Span(
                            service,
                            span.name,
                            span.trace_id,
                            span.start_time_unix_nano,
                            span.end_time_unix_nano,
                            attributes,
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()


HOPS = (
    ("paper -> monitor publishes the tick", "posted", "monitor_publish"),
    ("NATS -> strategy receives it", "monitor_publish", "strategy_receive"),
    ("strategy: wait for the agent loop", "strategy_receive", "evaluate"),
    ("strategy: decide + slot write (Redis)", "evaluate", "client_call"),
    ("gRPC + mTLS to the executor", "client_call", "server_start"),
    ("executor: gate, mark + budget (Redis)", "server_start", "venue_start"),
    ("venue call (ccxt -> paper -> answer)", "venue_start", "venue_end"),
    ("executor: venue answer -> gRPC answer", "venue_end", "server_end"),
)


def _first(spans: list[Span], service: str, name: str) -> Span | None:
    found = [span for span in spans if span.service == service and span.name == name]
    return min(found, key=lambda span: span.start_ns) if found else None


def hop_breakdown(
    spans: list[Span], posted_ns: dict[str, int], per_tick: dict[str, list[float]] | None = None
) -> dict[str, list[float]]:
    """Per tick (one trace from the monitor's publish to the executor's answer), the time of
    each hop in ms, from the spans' own start and end times (one host clock). ``per_tick`` gets
    each tick's hops in HOPS order, by the new buy's client id."""
    by_trace: dict[bytes, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    hops: dict[str, list[float]] = {name: [] for name, _, _ in HOPS}
    for trace_spans in by_trace.values():
        venue = next((sp for sp in trace_spans if sp.name == "venue create_order"), None)
        if venue is None or venue.attributes.get("client_order_id") not in posted_ns:
            continue

        publish = _first(trace_spans, "opensqt-monitor", "publish price")
        receive = _first(trace_spans, "opensqt-strategy", "receive price")
        evaluate = _first(trace_spans, "opensqt-strategy", "evaluate grid")
        client = _first(trace_spans, "opensqt-strategy", "opensqt.v1.ExecutorService/PlaceOrder")
        server = _first(trace_spans, "opensqt-executor", "opensqt.v1.ExecutorService/PlaceOrder")
        if publish is None or receive is None or evaluate is None or client is None or server is None:
            continue
        marks = {
            "posted": posted_ns[venue.attributes["client_order_id"]],
            "monitor_publish": publish.start_ns,
            "strategy_receive": receive.start_ns,
            "evaluate": evaluate.start_ns,
            "client_call": client.start_ns,
            "server_start": server.start_ns,
            "venue_start": venue.start_ns,
            "venue_end": venue.end_ns,
            "server_end": server.end_ns,
        }
        row = [max(0, marks[end] - marks[start]) / 1e6 for _, start, end in HOPS]
        for (name, _, _), value in zip(HOPS, row, strict=True):
            hops[name].append(value)
        if per_tick is not None:
            per_tick[venue.attributes["client_order_id"]] = row
    return hops


def cpu_seconds(c: LocalConstellation) -> dict[str, tuple[float, float]]:
    """Per process of the constellation, seconds so far on a core and waiting for one (runnable,
    every core busy), summed over its threads (the kernel's schedstat)."""
    pids = {name: proc.pid for name, proc in c.processes.items()}
    for name, server in (("nats-server", c.nats), ("redis-server", c.redis)):
        if server is not None and server.proc is not None:
            pids[name] = server.proc.pid
    pids["benchmark"] = os.getpid()
    used: dict[str, tuple[float, float]] = {}
    for name, pid in pids.items():
        on_core = waited = 0
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                fields = (task / "schedstat").read_text().split()
            except OSError:
                continue  # a thread that ended meanwhile
            on_core, waited = on_core + int(fields[0]), waited + int(fields[1])
        used[name] = (on_core / 1e9, waited / 1e9)
    return used


def host_cpu() -> str:
    """The CPU model and how many cores this process may use (hosts of one kind differ)."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def cpu_ticks() -> list[int]:
    """The whole machine's CPU time so far, by state (the ``cpu`` line of /proc/stat: user, nice,
    system, idle, iowait, irq, softirq, steal, ...), in clock ticks; empty where unreadable."""
    try:
        return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return []


def busy_and_steal(before: list[int], after: list[int]) -> str:
    """How busy the machine was between two :func:`cpu_ticks`, and how much the hypervisor took."""
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta[:8])
    if len(delta) < 8 or total <= 0:
        return "machine load unknown"
    idle = delta[3] + delta[4]
    busy, stolen = 100 * (total - idle) / total, 100 * delta[7] / total
    return f"cores {busy:.0f}% busy, {stolen:.1f}% stolen by the hypervisor"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, ms: list[float]) -> None:
    print(
        f"  {name:<44} n={len(ms):<4} p50={percentile(ms, 0.5):7.2f} ms  p99={percentile(ms, 0.99):7.2f} ms"
        f"  mean={statistics.fmean(ms):7.2f} ms  max={max(ms):7.2f} ms"
    )


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def loop_lags(before: dict[str, float], after: dict[str, float]) -> tuple[int, int, int, int]:
    """Samples of opensqt_event_loop_lag_seconds between two scrapes, and how many ran late by
    more than 2, 5 and 10 ms."""
    name = "opensqt_event_loop_lag_seconds"

    def between(sample: str) -> int:
        return round(after.get(sample, 0) - before.get(sample, 0))

    total = between(f"{name}_count")
    late = (total - between(f'{name}_bucket{{le="{le}"}}') for le in ("0.002", "0.005", "0.01"))
    return (total, *late)  # type: ignore[return-value]


def metric(samples: dict[str, float], prefix: str) -> float:
    return sum(value for name, value in samples.items() if name.startswith(prefix))


async def main(ticks: int, halts: int, burst: int, trace_export: bool = True) -> None:
    speed_ms = reference_ms()
    tmp = Path(tempfile.mkdtemp(prefix="opensqt-bench-"))
    pki = generate_dev_pki(tmp / "pki")
    receiver = SpanReceiver()
    otlp = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, otlp)  # type: ignore[no-untyped-call]
    otlp_port = otlp.add_insecure_port("127.0.0.1:0")
    await otlp.start()
    if trace_export:  # every service exports its spans here (the per-hop breakdown needs them)
        os.environ["OPENSQT_TELEMETRY__OTLP_ENDPOINT"] = f"http://127.0.0.1:{otlp_port}"
    c = LocalConstellation(
        workdir=tmp / "run",
        cert_dir=pki.directory,
        ports={name: ServicePorts(free_port(), free_port(), free_port()) for name in SERVICES},
        trading=TradingSetup(symbols=("BTCUSDT",), market_makers=(GRID,), paper_source="manual"),
        paper_port=free_port(),
        log_format="json",
    )
    await asyncio.to_thread(c.start)
    operator = TlsFiles(pki.ca, pki.cert("operator"), pki.key("operator"))
    try:
        for name in EXTRA_EXECUTORS:
            await asyncio.to_thread(c.start_service, name)
        async with aiohttp.ClientSession() as session:

            async def post_price(price: Decimal) -> float:
                """Move the perpetual; returns the venue's monotonic time of the change (ms)."""
                async with session.post(
                    c.paper_url + "/admin/price",
                    json={"symbol": "BTCUSDT", "price": str(price), "family": "usdm"},
                ) as response:
                    assert response.status == 200
                    return float((await response.json())["applied_monotonic_ms"])

            seen: dict[str, float] = {}  # client order id -> NEW time, read incrementally
            last_seq = 0

            async def order_time(client_order_id: str, within: float = 5.0) -> float | None:
                nonlocal last_seq
                deadline = time.monotonic() + within
                while time.monotonic() < deadline:
                    params = {"symbol": "BTCUSDT", "after": str(last_seq)}
                    async with session.get(c.paper_url + "/admin/orders", params=params) as r:
                        for entry in await r.json():
                            last_seq = max(last_seq, int(entry["seq"]))
                            if entry["execution"] == "NEW":
                                seen[entry["order"]["client_order_id"]] = float(entry["time_ms"]) / 1000
                    if client_order_id in seen:
                        return seen[client_order_id]
                    await asyncio.sleep(0.02)  # the venue's timestamp is the measurement, not this poll
                return None

            price = Decimal(30000)
            while await order_time("BTCUSDT-bench-299000-B-0", within=0.5) is None:  # warm up
                await post_price(price)
            executor_metrics = c.ports["executor"].metrics
            before = scrape(executor_metrics)
            lag_before = {n: scrape(c.ports[n].metrics) for n in LAG_SERVICES}
            applied_ms: dict[str, float] = {}  # new buy's client id -> the venue's price change
            client_ms: dict[str, float] = {}  # the same, when this client began the admin POST
            cpu_before, machine_before, tick_phase = cpu_seconds(c), cpu_ticks(), time.monotonic()
            for _ in range(ticks):
                tick_started = time.monotonic()
                price += 100
                new_buy = f"BTCUSDT-bench-{int((price - 100) * 10)}-B-0"
                client_ms[new_buy] = time.monotonic() * 1000
                applied_ms[new_buy] = await post_price(price)
                # read the venue's log only once the tick is likely done: a read during the
                # tick would put the benchmark's own request on the venue's loop in its path
                await asyncio.sleep(QUIET_AFTER_TICK_S)
                await order_time(new_buy)
                # let the grid settle its cancel, and keep within the executor's order budget
                # (a place and a cancel per tick): an order never waits for a token here
                await asyncio.sleep(max(0.05, tick_started + TICK_PERIOD_S - time.monotonic()))
            tick_phase = time.monotonic() - tick_phase
            cpu_after, machine_after = cpu_seconds(c), cpu_ticks()
            after = scrape(executor_metrics)
            lags = {n: loop_lags(lag_before[n], scrape(c.ports[n].metrics)) for n in LAG_SERVICES}
            place = 'opensqt_grpc_request_seconds_{}{{method="/opensqt.v1.ExecutorService/PlaceOrder"}}'
            calls = after.get(place.format("count"), 0) - before.get(place.format("count"), 0)
            # a token wait at 25/s lasts up to 40 ms; the script's own round trip is ~1 ms
            no_wait = 'opensqt_rate_limit_wait_seconds_bucket{le="0.005"}'
            budget_waits = (
                metric(after, "opensqt_rate_limit_wait_seconds_count")
                - metric(before, "opensqt_rate_limit_wait_seconds_count")
                - (after.get(no_wait, 0) - before.get(no_wait, 0))
            )
            budget_waited_ms = 1000 * (
                metric(after, "opensqt_rate_limit_wait_seconds_sum")
                - metric(before, "opensqt_rate_limit_wait_seconds_sum")
            )
            executor_ms = (
                1000 * (after.get(place.format("sum"), 0) - before.get(place.format("sum"), 0)) / calls
                if calls
                else float("nan")
            )
            async with session.get(
                c.paper_url + "/admin/requests", params={"method": "POST", "order": "true"}
            ) as response:
                requests = (await response.json())["requests"]
            venue_ms = [
                float(r["answered_monotonic_ms"] - r["monotonic_ms"])
                for r in requests
                if r["answered_monotonic_ms"] is not None
            ]
            # tick-to-order: the venue had the new price -> the venue answered the new buy's
            # create_order (both on the host's monotonic clock, as the paper read it)
            answered = {
                r["client_order_id"]: float(r["answered_monotonic_ms"])
                for r in requests
                if r["status"] == 200 and r["answered_monotonic_ms"] is not None
            }
            tick_to_order = [answered[cid] - applied_ms[cid] for cid in applied_ms if cid in answered]
            from_client = [answered[cid] - client_ms[cid] for cid in client_ms if cid in answered]
            wall_minus_monotonic_ns = time.time_ns() - time.monotonic_ns()
            posted_ns = {cid: int(ms * 1e6) + wall_minus_monotonic_ns for cid, ms in applied_ms.items()}

        async with secure_channel(f"127.0.0.1:{c.ports['risk'].api}", operator) as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            halt_ms: dict[str, list[float]] = {"REDUCING": [], "HALTED": []}
            for kind, proto_state in (
                ("REDUCING", events_pb2.TRADING_STATE_KIND_REDUCING),
                ("HALTED", events_pb2.TRADING_STATE_KIND_HALTED),
            ):
                for i in range(halts):
                    started = time.perf_counter()
                    reply = await risk.Halt(risk_pb2.HaltRequest(reason=f"bench {i}", state=proto_state))
                    halt_ms[kind].append((time.perf_counter() - started) * 1000)
                    if len(reply.executors) != 3 or not all(e.acknowledged for e in reply.executors):
                        raise RuntimeError(f"a Halt was not acknowledged by all three executors: {reply}")
                    await risk.Resume(risk_pb2.ResumeRequest(reason="bench"))
                    # a trip comes during trading, not in the churn of the previous Resume (the
                    # grid re-places its buys, the executors journal them)
                    await asyncio.sleep(0.2)
        # risk's own measure, decision -> the last executor's acknowledgement, from its log
        risk_side: dict[str, list[float]] = {"REDUCING": [], "HALTED": []}
        for line in (c.workdir / "risk.log").read_text().splitlines():
            if '"trading_state_propagated"' not in line:
                continue
            entry = json.loads(line)
            if entry.get("state") in risk_side and entry.get("acknowledged") == 3:
                risk_side[entry["state"]].append(float(entry["elapsed_ms"]))

        ingest = await strategy_ingest(c, burst, price)
        await asyncio.sleep(6)  # the services export spans in batches every 5 s
        per_tick: dict[str, list[float]] = {}
        hops = hop_breakdown(receiver.spans, posted_ns, per_tick)

        print(f"constellation as processes on loopback, mTLS ({ticks} ticks, {halts} halts, 3 executors)")
        print(f"  machine reference: a fixed pure-Python loop took {speed_ms:.0f} ms (lower is faster)")
        print(f"  machine: {host_cpu()}; while ticking, {busy_and_steal(machine_before, machine_after)}")
        if tick_to_order:
            report("tick-to-order", tick_to_order)
        print(f"  {'':<34} ({ticks - len(tick_to_order)} ticks without a new order)")
        print(
            f"  {'':<34} ({budget_waits:.0f} orders or cancels took over 5 ms to get a rate-budget "
            f"token; {budget_waited_ms:.0f} ms in all, the scripts' round trips included)"
        )
        if from_client:
            report("  the same from the client's admin POST", from_client)
        print(f"  {'  of which executor PlaceOrder':<34} mean={executor_ms:7.2f} ms ({calls:.0f} calls)")
        if venue_ms:
            print(f"  {'  of which the venue':<34} mean={statistics.fmean(venue_ms):7.2f} ms")
        capacity = 2000 * tick_phase / ticks
        print(f"  CPU per tick by process (ms; 2 cores give {capacity:.0f} ms per tick at this pace):")
        spent, waited = (
            {n: 1000 * (cpu_after[n][i] - cpu_before.get(n, (0.0, 0.0))[i]) / ticks for n in cpu_after}
            for i in (0, 1)
        )
        print("    " + ", ".join(f"{n} {ms:.1f}" for n, ms in sorted(spent.items(), key=lambda kv: -kv[1])))
        print("  waiting for a core per tick by process (ms; runnable while both cores were busy):")
        print("    " + ", ".join(f"{n} {ms:.1f}" for n, ms in sorted(waited.items(), key=lambda kv: -kv[1])))
        print(
            f"  event-loop stalls while ticking (a timer every {LAG_PROBE_MS} ms; "
            "samples late by over 2 / 5 / 10 ms):"
        )
        print("    " + ", ".join(f"{n} {a}/{b}/{c} of {total}" for n, (total, a, b, c) in lags.items()))
        traced = max((len(v) for v in hops.values()), default=0)
        print(f"  per hop, from the services' trace spans ({traced} ticks traced end to end):")
        for name, values in hops.items():
            if values:
                report("  " + name, values)
        slowest = sorted(
            (cid for cid in applied_ms if cid in answered and cid in per_tick),
            key=lambda cid: answered[cid] - applied_ms[cid],
        )[-max(2, len(per_tick) // 50) :]
        if slowest:
            print("  the slowest 2% of ticks, ms per hop in the order above:")
            for cid in reversed(slowest):
                row = " ".join(f"{v:5.1f}" for v in per_tick[cid])
                print(f"    {answered[cid] - applied_ms[cid]:6.1f}  = {row}")
        for kind, title in (("REDUCING", "(the crash path)"), ("HALTED", "(acks after cancelling)")):
            if risk_side[kind]:
                report(f"risk decides {kind} -> 3 executors ack'd", risk_side[kind])
            report(f"  Halt RPC at the operator {title}", halt_ms[kind])
        print(
            f"  strategy ingest: {ingest['published']} ticks published in {ingest['seconds']:.2f} s; "
            f"the strategy decoded {ingest['received']:.0f} in {ingest['ingest_seconds']:.2f} s "
            f"({ingest['received'] / ingest['ingest_seconds']:,.0f}/s) and ran "
            f"{ingest['evaluations']:.0f} evaluations (conflated: latest price wins)"
        )
    finally:
        await asyncio.to_thread(c.stop)
        await otlp.stop(None)


async def strategy_ingest(c: LocalConstellation, burst: int, price: Decimal) -> dict[str, Any]:
    """Publish ``burst`` price changes as fast as one connection can; count what the strategy
    received and how many evaluations they became."""
    assert c.nats is not None
    strategy_metrics = c.ports["strategy"].metrics
    before = scrape(strategy_metrics)
    client = await nats.connect(c.nats.url)
    subject = PRICE.subject(venue="paper", symbol="BTCUSDT")
    started = time.perf_counter()
    for i in range(burst):
        tick = PriceChange(
            venue="paper", symbol="BTCUSDT", price=price + Decimal(i % 50) / 10, sequence=10_000_000 + i
        )
        await client.publish(subject, PRICE.encode(tick))
    await client.flush()
    seconds = time.perf_counter() - started
    await client.close()
    received_name = 'opensqt_nats_received_total{kind="price"}'
    deadline = time.perf_counter() + 10
    while True:  # until the strategy has decoded every tick (or 10 s)
        after = scrape(strategy_metrics)
        received = metric(after, received_name) - metric(before, received_name)
        if received >= burst or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.01)
    ingest_seconds = time.perf_counter() - started
    evaluations = metric(after, "opensqt_agent_evaluations_total") - metric(
        before, "opensqt_agent_evaluations_total"
    )
    return {
        "published": burst,
        "seconds": seconds,
        "ingest_seconds": ingest_seconds,
        "received": received,
        "evaluations": evaluations,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=150)
    parser.add_argument("--halts", type=int, default=40)
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument(
        "--no-trace-export",
        action="store_true",
        help="the services export no spans (no per-hop breakdown; measures what exporting costs)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.ticks, args.halts, args.burst, trace_export=not args.no_trace_export))
