"""``python -m opensqt.paper [--host H] [--port P] [--state-file F] [--source KIND]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from opensqt.eventloop import run_event_loop
from opensqt.paper.app import serve
from opensqt.paper.settings import PaperSettings
from opensqt.telemetry import configure_logging


def main(argv: list[str] | None = None) -> None:
    """Run the paper exchange with settings from the environment (``OPENSQT_PAPER_*``) and
    the command line (which wins)."""
    parser = argparse.ArgumentParser(prog="python -m opensqt.paper", description=main.__doc__)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--state-file", type=Path)
    parser.add_argument("--source", choices=["synthetic", "csv", "manual", "live"])
    args = parser.parse_args(argv)
    settings = PaperSettings()
    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.state_file is not None:
        overrides["state_file"] = args.state_file
    if args.source is not None:
        overrides["source"] = settings.source.model_copy(update={"kind": args.source})
    settings = settings.model_copy(update=overrides)
    configure_logging(settings.log_format)
    run_event_loop(
        serve(settings, ready=lambda exchange: print(f"paper exchange on {exchange.rest_url}", flush=True)),
        settings.event_loop,
    )


if __name__ == "__main__":
    main()
