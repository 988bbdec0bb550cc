"""Services run on uvloop unless told otherwise."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from pydantic import ValidationError

from opensqt import heap
from opensqt.eventloop import run_event_loop
from opensqt_services.executor.settings import ExecutorSettings


@pytest.mark.parametrize(("kind", "uv"), [("uvloop", True), ("asyncio", False)])
def test_the_chosen_event_loop_runs_the_service(kind: str, uv: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_claimed", False)  # the loop claims the process; give it back after
    seen: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        seen.append(asyncio.get_running_loop())

    run_event_loop(main(), kind)  # type: ignore[arg-type]
    assert isinstance(seen[0], uvloop.Loop) is uv


def test_uvloop_is_the_default_and_anything_else_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ExecutorSettings().event_loop == "uvloop"
    monkeypatch.setenv("OPENSQT_EVENT_LOOP", "trio")
    with pytest.raises(ValidationError, match="event_loop"):
        ExecutorSettings()
