"""Fault injection, driven by ``POST /admin/faults`` (loopback only).

A fault is a JSON object with a ``kind``; REST faults match requests by ``path`` prefix
(default: every non-admin path) and ``method`` (default: any), and apply ``times`` times
(default: until ``DELETE /admin/faults``):

=============  =============================================================================
kind           effect
=============  =============================================================================
latency        ``ms`` of added delay before the request is handled
http_error     ``status`` 429 (``{"code":-1003}``, ``Retry-After: retry_after``) or 418
               (banned), without handling the request; with bans on
               (:mod:`opensqt.paper.limits`) it bans the client's order requests for
               ``retry_after`` seconds, and a banned request does not use up the fault
reject         a Binance error (``status``, ``code``, ``msg``) without handling the request
ambiguous      the request IS handled (an order is placed and persisted), then the response is
               withheld: ``mode`` ``delay`` (for ``delay_ms``, past the client's timeout) or
               ``drop`` (the connection is closed without a response)
ws_drop        (immediate) every WebSocket connection is dropped; new ones are refused for
               ``refuse_ms``
stale_feed     ``on`` true/false: market prices stop (source and admin prices are discarded,
               nothing moves, no market stream message is sent)
=============  =============================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opensqt.paper.binance_errors import BinanceError, errors

__all__ = ["Fault", "FaultError", "FaultPlan"]

_REST_KINDS = ("latency", "http_error", "reject", "ambiguous")


class FaultError(ValueError):
    """A fault description is malformed."""


@dataclass(slots=True)
class Fault:
    """One active REST fault (see the module docstring)."""

    kind: str
    path: str = "/"
    method: str = ""
    times: int | None = None
    ms: int = 0
    status: int = 0
    retry_after: int = 1
    code: int = -2010
    msg: str = "Order rejected by the paper exchange (fault injection)."
    mode: str = "delay"
    delay_ms: int = 0

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path) and (not self.method or self.method == method)

    def error(self, now_ms: int) -> BinanceError:
        if self.kind == "http_error":
            if self.status == 418:
                return errors.banned(self.retry_after, now_ms + self.retry_after * 1000)
            return errors.too_many_requests(self.retry_after)
        return BinanceError(self.status or 400, self.code, self.msg)

    def describe(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _int(spec: Mapping[str, Any], name: str, default: int | None) -> int | None:
    value = spec.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(f"{name} must be an integer, got {value!r}")
    return value


class FaultPlan:
    """The active faults."""

    def __init__(self) -> None:
        self.rest: list[Fault] = []
        self.stale_feed = False

    def parse(self, spec: Mapping[str, Any]) -> Fault | None:
        """Validate one fault; returns a REST fault to add, or ``None`` for the immediate kinds
        (``ws_drop``, ``stale_feed``), which the caller applies."""
        kind = spec.get("kind")
        if kind in ("ws_drop", "stale_feed"):
            return None
        if kind not in _REST_KINDS:
            raise FaultError(
                f"unknown fault kind {kind!r}; one of {', '.join((*_REST_KINDS, 'ws_drop', 'stale_feed'))}"
            )
        path = spec.get("path", "/")
        method = str(spec.get("method", "")).upper()
        if not isinstance(path, str) or not path.startswith("/"):
            raise FaultError("path must start with /")
        fault = Fault(kind=kind, path=path, method=method, times=_int(spec, "times", None))
        if kind == "latency":
            fault.ms = _int(spec, "ms", 0) or 0
        elif kind == "http_error":
            fault.status = _int(spec, "status", 429) or 429
            if fault.status not in (418, 429):
                raise FaultError("http_error status must be 418 or 429")
            fault.retry_after = _int(spec, "retry_after", 1) or 0
        elif kind == "reject":
            fault.status = _int(spec, "status", 400) or 400
            fault.code = _int(spec, "code", -2010) or -2010
            fault.msg = str(spec.get("msg", fault.msg))
        else:
            fault.mode = str(spec.get("mode", "delay"))
            if fault.mode not in ("delay", "drop"):
                raise FaultError("ambiguous mode must be delay or drop")
            fault.delay_ms = _int(spec, "delay_ms", 0) or 0
        if fault.times is not None and fault.times < 1:
            raise FaultError("times must be at least 1")
        return fault

    def add(self, fault: Fault) -> None:
        self.rest.append(fault)

    def clear(self) -> None:
        self.rest.clear()
        self.stale_feed = False

    def take(self, kind: str, method: str, path: str) -> Fault | None:
        """The first active fault of ``kind`` matching the request (its use is counted)."""
        for fault in self.rest:
            if fault.kind == kind and fault.matches(method, path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        self.rest.remove(fault)
                return fault
        return None

    def describe(self) -> dict[str, Any]:
        return {"rest": [fault.describe() for fault in self.rest], "stale_feed": self.stale_feed}
