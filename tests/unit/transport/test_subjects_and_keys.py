"""Every NATS subject and Redis key is declared once, with a valid owner and safe tokens."""

from __future__ import annotations

import pytest

from opensqt.config import IDENTITIES
from opensqt.transport.redis_keys import GRID_SLOTS, KEYS, TRADING_STATE
from opensqt.transport.subjects import EVENT_KINDS, PRICE, RISK_STATE, STREAMS, Delivery, SubjectError


def test_subjects_are_built_from_validated_tokens() -> None:
    assert PRICE.subject(venue="paper", symbol="BTCUSDT") == "opensqt.v1.price.paper.BTCUSDT"
    for bad in ("BTC.USDT", "BTC*", ">", "", "BTC USDT", "x" * 65):
        with pytest.raises(SubjectError):
            PRICE.subject(venue="paper", symbol=bad)
    with pytest.raises(SubjectError, match="needs tokens"):
        PRICE.subject(venue="paper")


def test_patterns_wildcard_the_tokens_left_out() -> None:
    assert PRICE.pattern(venue="paper") == "opensqt.v1.price.paper.*"
    assert PRICE.pattern() == "opensqt.v1.price.*.*"
    assert RISK_STATE.pattern() == "opensqt.v1.risk.state"


def test_matches_accepts_only_concrete_subjects_of_the_kind() -> None:
    assert PRICE.matches("opensqt.v1.price.paper.BTCUSDT")
    assert not PRICE.matches("opensqt.v1.price.paper.*")
    assert not PRICE.matches("opensqt.v1.candle.paper.BTCUSDT")
    assert not RISK_STATE.matches("opensqt.v1.risk.alert")


def test_every_event_kind_has_a_known_owner_and_jetstream_kinds_have_a_covering_stream() -> None:
    names = [k.name for k in EVENT_KINDS]
    assert len(names) == len(set(names))
    streams = {s.name: s for s in STREAMS}
    for kind in EVENT_KINDS:
        assert kind.owner in IDENTITIES
        if kind.delivery is Delivery.JETSTREAM:
            assert kind.stream in streams, kind.name
            prefix = kind.template.split("{")[0].rstrip(".")
            assert any(
                s == kind.template or prefix.startswith(s.removesuffix(".>"))
                for s in streams[kind.stream].subjects
            ), kind.name
        else:
            assert kind.stream is None


def test_no_two_streams_claim_the_same_subjects() -> None:
    subjects = [s for stream in STREAMS for s in stream.subjects]
    assert len(subjects) == len(set(subjects))


def test_every_redis_key_has_one_known_owner_and_a_unique_template() -> None:
    assert len({k.template for k in KEYS}) == len(KEYS)
    for spec in KEYS:
        assert spec.owner in IDENTITIES
        assert spec.template.startswith("opensqt:v1:")


def test_redis_key_tokens_are_validated() -> None:
    assert GRID_SLOTS.key(agent="mm", symbol="ETHUSDT") == "opensqt:v1:strategy:slots:mm:ETHUSDT"
    assert TRADING_STATE.key() == "opensqt:v1:risk:trading_state"
    with pytest.raises(ValueError, match="not a valid key token"):
        GRID_SLOTS.key(agent="mm x", symbol="ETHUSDT")
    with pytest.raises(ValueError, match="needs tokens"):
        GRID_SLOTS.key(agent="mm")
