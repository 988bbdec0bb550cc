"""API keys and request signatures, as Binance checks them.

A SIGNED request carries the key in the ``X-MBX-APIKEY`` header and, among its parameters,
``timestamp`` (ms), an optional ``recvWindow`` (ms, default 5000) and ``signature``: the hex
HMAC-SHA256, keyed by the secret, of the query string concatenated with the request body (the
``signature`` parameter itself removed). A USER_STREAM request (listen keys) needs only the key.
The WebSocket API signs its ``params`` sorted by name, formatted ``k=v&k=v``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from opensqt.paper.binance_errors import errors

__all__ = ["KeyRing", "Principal", "signed_payload", "sign"]

_DEFAULT_RECV_WINDOW_MS = 5000
_FUTURE_TOLERANCE_MS = 1000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a key belongs to, and whether it may trade (a read-only key may not)."""

    account: str
    can_trade: bool


def sign(secret: str, payload: str) -> str:
    """The hex HMAC-SHA256 of ``payload`` keyed by ``secret``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _without_signature(raw: str) -> tuple[str, str | None]:
    kept: list[str] = []
    signature: str | None = None
    for pair in raw.split("&") if raw else []:
        if pair.startswith("signature="):
            signature = pair[len("signature=") :]
        else:
            kept.append(pair)
    return "&".join(kept), signature


def signed_payload(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """``(text that was signed, signature)`` of a REST request, from its raw query and body."""
    query, query_signature = _without_signature(raw_query)
    body, body_signature = _without_signature(raw_body)
    return query + body, query_signature or body_signature


class KeyRing:
    """API keys of the paper accounts."""

    def __init__(self, *, recv_window_max_ms: int = 60_000) -> None:
        self.recv_window_max_ms = recv_window_max_ms
        self._keys: dict[str, tuple[Principal, str]] = {}

    def add(self, account: str, api_key: str, api_secret: str, *, can_trade: bool = True) -> None:
        if not api_key or not api_secret:
            raise ValueError("api key and secret must not be empty")
        self._keys[api_key] = (Principal(account, can_trade), api_secret)

    def __contains__(self, api_key: str) -> bool:
        return api_key in self._keys

    def principal(self, api_key: str | None) -> Principal:
        """The owner of a key (USER_STREAM security: no signature)."""
        return self._lookup(api_key)[0]

    def _lookup(self, api_key: str | None) -> tuple[Principal, str]:
        if not api_key or any(ch.isspace() for ch in api_key):
            raise errors.api_key_format()
        entry = self._keys.get(api_key)
        if entry is None:
            raise errors.invalid_api_key()
        return entry

    def verify_rest(
        self, api_key: str | None, raw_query: str, raw_body: str, params: Mapping[str, str], now_ms: int
    ) -> Principal:
        """Check a SIGNED REST request; raise the :class:`BinanceError` Binance would send."""
        principal, secret = self._lookup(api_key)
        payload, signature = signed_payload(raw_query, raw_body)
        self._check_time(params, now_ms)
        if not signature:
            raise errors.mandatory("signature")
        if not hmac.compare_digest(sign(secret, payload), signature.lower()):
            raise errors.bad_signature()
        return principal

    def verify_ws(self, params: Mapping[str, str], now_ms: int) -> Principal:
        """Check a signed WebSocket API request (``apiKey``, ``timestamp``, ``signature``)."""
        principal, secret = self._lookup(params.get("apiKey"))
        self._check_time(params, now_ms)
        signature = params.get("signature")
        if not signature:
            raise errors.mandatory("signature")
        payload = "&".join(f"{key}={params[key]}" for key in sorted(params) if key != "signature")
        if not hmac.compare_digest(sign(secret, payload), str(signature).lower()):
            raise errors.bad_signature()
        return principal

    def _check_time(self, params: Mapping[str, str], now_ms: int) -> None:
        timestamp = _integer(params, "timestamp", None)
        if timestamp is None:
            raise errors.mandatory("timestamp")
        window = _integer(params, "recvWindow", _DEFAULT_RECV_WINDOW_MS)
        assert window is not None
        if window > self.recv_window_max_ms or window <= 0:
            raise errors.recv_window_too_large(self.recv_window_max_ms)
        if timestamp > now_ms + _FUTURE_TOLERANCE_MS or now_ms - timestamp > window:
            raise errors.outside_recv_window()


def _integer(params: Mapping[str, str], name: str, default: int | None) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return default
    text = str(text)
    if not text.isdigit():
        raise errors.illegal_chars(name, "^[0-9]{1,20}$")
    return int(text)
