"""The ``opensqt`` command line."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from opensqt.certs import generate_dev_pki
from opensqt.config import IDENTITIES

app = typer.Typer(help="OpenSQT: crypto trading agents as four mTLS gRPC services.", no_args_is_help=True)


@app.command()
def certs(
    out: Annotated[Path, typer.Option(help="Directory for ca.pem and <identity>.pem/.key")] = Path(".certs"),
    namespace: Annotated[
        str, typer.Option(help="Kubernetes namespace for the service DNS names")
    ] = "opensqt",
) -> None:
    """Generate a development CA and one mTLS certificate per identity."""
    pki = generate_dev_pki(out, IDENTITIES, namespace=namespace)
    typer.echo(f"wrote {pki.ca} and certificates for {', '.join(pki.identities)} to {out}")


@app.command()
def run(
    workdir: Annotated[Path, typer.Option(help="Data and logs of the local constellation")] = Path(".run"),
    cert_dir: Annotated[Path, typer.Option(help="Development certificates (made if missing)")] = Path(
        ".certs"
    ),
    seconds: Annotated[float, typer.Option(help="Stop after this many seconds (0: until Ctrl-C)")] = 0,
) -> None:
    """Run the local constellation on loopback until Ctrl-C: nats-server, redis-server, the paper
    exchange's synthetic market, the four services (plus the spot executor and monitor of the
    arbitrage bot), a grid market maker and an arbitrage bot on BTCUSDT."""
    from opensqt.demo import demo_setup
    from opensqt.local import LocalConstellation

    constellation = LocalConstellation(workdir=workdir, cert_dir=cert_dir, trading=demo_setup())
    typer.echo("starting nats-server, redis-server, the paper exchange and the services ...")
    started = time.monotonic()
    constellation.start()
    typer.echo(f"constellation up in {time.monotonic() - started:.1f}s (logs in {workdir}/)\n")
    typer.echo(f"{'service':<14} {'gRPC (mTLS)':<17} {'probe (health)':<17} metrics")
    for name in constellation.instances():
        p = constellation.ports[name]
        typer.echo(
            f"{name:<14} 127.0.0.1:{p.api:<7} 127.0.0.1:{p.probe:<7} http://127.0.0.1:{p.metrics}/metrics"
        )
    typer.echo(f"paper exchange {constellation.paper_url} (admin API under /admin)")
    if constellation.nats is not None and constellation.redis is not None:
        typer.echo(f"\nNATS {constellation.nats.url}   Redis {constellation.redis.url}")
    c = cert_dir
    typer.echo(
        "\ntry:\n"
        f"  .venv/bin/grpcurl -cacert {c}/ca.pem -cert {c}/operator.pem -key {c}/operator.key "
        "127.0.0.1:50054 list\n"
        f"  .venv/bin/grpcurl -cacert {c}/ca.pem -cert {c}/operator.pem -key {c}/operator.key "
        '-d \'{"reason":"drill"}\' 127.0.0.1:50054 opensqt.v1.RiskService/Halt\n'
        f"  .venv/bin/grpcurl -cacert {c}/ca.pem -cert {c}/operator.pem -key {c}/operator.key "
        "127.0.0.1:50053 opensqt.v1.ExecutorService/GetStatus\n"
    )
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    deadline = time.monotonic() + seconds if seconds > 0 else None
    try:
        while not stop and (deadline is None or time.monotonic() < deadline):
            for name, proc in constellation.processes.items():
                if proc.poll() is not None:
                    typer.echo(f"{name} exited with {proc.returncode}; see {workdir}/{name}.log", err=True)
                    stop = True
            time.sleep(0.2)
    finally:
        codes = constellation.stop()
        typer.echo("stopped: " + ", ".join(f"{k} exit {v}" for k, v in codes.items()))
    if any(codes.values()):
        raise typer.Exit(1)


@app.command()
def demo(
    seconds: Annotated[float, typer.Option(help="Wall-clock length of the run", min=10)] = 180,
    bars_per_second: Annotated[
        float, typer.Option(help="Synthetic market minutes per second of wall time", min=0.5, max=100)
    ] = 8.0,
    workdir: Annotated[Path, typer.Option(help="Data and logs (emptied first)")] = Path(".run/demo"),
    cert_dir: Annotated[Path, typer.Option(help="Development certificates (made if missing)")] = Path(
        ".certs"
    ),
) -> None:
    """A scripted run: both agents through a funding episode and a crash; live status, then a
    summary (orders, fills, PnL, halts and how fast they propagated); stops what it started."""
    from opensqt.demo import run_demo

    try:
        run_demo(seconds=seconds, workdir=workdir, cert_dir=cert_dir, bars_per_second=bars_per_second,
                 echo=typer.echo)  # fmt: skip
    except RuntimeError as exc:
        typer.echo(f"demo failed: {exc}", err=True)
        raise typer.Exit(1) from exc


def _register_backtest() -> None:
    from opensqt.backtest.app import backtest_command

    app.command("backtest")(backtest_command)


_register_backtest()


@app.command("paper-exchange")
def paper_exchange(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP/WebSocket port (0: any free port)")] = 8090,
    state_file: Annotated[
        Path | None, typer.Option(help="SQLite state file (default .run/paper-exchange.sqlite)")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Market source: synthetic, csv, manual or live")] = None,
) -> None:
    """Run the paper exchange: Binance's spot, margin and USD-M futures API on a simulated venue.

    Markets, accounts, keys and the source come from OPENSQT_PAPER_* variables; see
    opensqt.paper.settings for the development keys.
    """
    from opensqt.paper.__main__ import main as paper_main

    argv = ["--host", host, "--port", str(port)]
    if state_file is not None:
        argv += ["--state-file", str(state_file)]
    if source is not None:
        argv += ["--source", source]
    paper_main(argv)


if __name__ == "__main__":
    app()
