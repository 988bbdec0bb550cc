"""Who may call what: the authorization table, keyed by certificate identity.

The caller's identity is the common name of its client certificate, verified by mTLS against
the constellation's CA. ``operator`` may call everything; anything not listed is denied.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

__all__ = ["AUTHORIZATION", "OPEN_TO_AUTHENTICATED", "identity_of", "is_allowed"]

_EXECUTOR = "/opensqt.v1.ExecutorService/"
_RISK = "/opensqt.v1.RiskService/"
_STRATEGY = "/opensqt.v1.StrategyService/"
_MONITOR = "/opensqt.v1.MonitorService/"

#: Method prefixes any authenticated identity may call (health checks and reflection).
OPEN_TO_AUTHENTICATED = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

#: Full method name -> identities allowed besides ``operator``. The monitor calls nothing.
AUTHORIZATION: Mapping[str, frozenset[str]] = {
    _EXECUTOR + "PlaceOrder": frozenset({"strategy"}),
    _EXECUTOR + "PlaceOrders": frozenset({"strategy"}),
    _EXECUTOR + "CancelOrder": frozenset({"strategy"}),
    _EXECUTOR + "ExecuteSequence": frozenset({"strategy"}),
    _EXECUTOR + "GetOrder": frozenset({"strategy", "risk"}),
    _EXECUTOR + "GetStatus": frozenset({"strategy", "risk"}),
    _EXECUTOR + "GetAccountSnapshot": frozenset({"strategy", "risk"}),
    _EXECUTOR + "ListInstruments": frozenset({"strategy", "risk"}),
    _EXECUTOR + "CancelAll": frozenset({"risk"}),
    _EXECUTOR + "Halt": frozenset({"risk"}),
    _EXECUTOR + "Resume": frozenset({"risk"}),
    _RISK + "GetTradingState": frozenset({"strategy", "executor"}),
    _RISK + "Halt": frozenset(),
    _RISK + "Resume": frozenset(),
    _RISK + "ListAlerts": frozenset(),
    _STRATEGY + "GetStatus": frozenset({"risk"}),
    _STRATEGY + "ListSlots": frozenset({"risk"}),
    _STRATEGY + "ListLegs": frozenset({"risk"}),
    _STRATEGY + "Pause": frozenset(),
    _STRATEGY + "Resume": frozenset(),
    _MONITOR + "GetLatestPrice": frozenset({"strategy", "risk"}),
    _MONITOR + "GetFundingRate": frozenset({"strategy", "risk"}),
    _MONITOR + "GetCandles": frozenset({"strategy", "risk"}),
    _MONITOR + "GetFeedHealth": frozenset({"strategy", "risk"}),
}

OPERATOR = "operator"


def is_allowed(identity: str | None, method: str) -> bool:
    """True when ``identity`` may call the full gRPC ``method`` name."""
    if not identity:
        return False
    if method.startswith(OPEN_TO_AUTHENTICATED):
        return True
    if identity == OPERATOR:
        return method in AUTHORIZATION
    return identity in AUTHORIZATION.get(method, frozenset())


def identity_of(context: grpc.aio.ServicerContext[object, object]) -> str | None:
    """The verified certificate common name of the peer, or None without a client certificate."""
    auth = context.auth_context()
    name = next(iter(auth.get("x509_common_name") or ()), None)
    if name is None:
        return None
    return name.decode() if isinstance(name, bytes) else str(name)
