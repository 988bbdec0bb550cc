"""Where a lost ephemeral JetStream subscription starts again (pure: no server)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from nats.js.api import DeliverPolicy

from opensqt.transport.bus import _Ephemeral


async def _ignore(msg: object) -> str:
    return "handled"


def ephemeral(policy: DeliverPolicy | None) -> _Ephemeral:
    return _Ephemeral("opensqt.v1.candle.>", None, policy, "CANDLES", _ignore)


def test_a_stream_of_events_starts_again_at_the_first_message_not_handled() -> None:
    candles = ephemeral(None)
    assert candles.restart_config()[0].deliver_policy is DeliverPolicy.ALL  # nothing handled yet
    for sequence in (1, 2, 3):
        candles.seen(sequence, "handled")
    config, _ = candles.restart_config()
    assert (config.deliver_policy, config.opt_start_seq) == (DeliverPolicy.BY_START_SEQUENCE, 4)
    # a handler that raised on 4 (NAK'd) and went on with 5: 4 comes again, not skipped
    candles.seen(4, "failed")
    candles.seen(5, "handled")
    assert candles.restart_config()[0].opt_start_seq == 4
    candles.seen(4, "handled")  # redelivered and handled
    assert candles.restart_config()[0].opt_start_seq == 6
    candles.seen(6, "dropped")  # malformed: terminated, never again; it holds nothing back
    assert candles.restart_config()[0].opt_start_seq == 6


def test_a_state_subscription_starts_again_at_each_subjects_latest_message() -> None:
    # a position or a trading state: the changes while away are history (a dip long recovered
    # would trip the liquidation guard); the latest of each subject is what holds now
    for policy in (DeliverPolicy.NEW, DeliverPolicy.LAST):
        positions = ephemeral(policy)
        positions.seen(9, "handled")
        positions.seen(10, "failed")
        assert positions.restart_config()[0].deliver_policy is DeliverPolicy.LAST_PER_SUBJECT


class Message:
    """What the callback reads of a JetStream message: its stream sequence, and ack()."""

    def __init__(self, sequence: int) -> None:
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=sequence))
        self.acked = False

    async def ack(self) -> None:
        self.acked = True


async def test_a_retired_subscriptions_messages_are_ignored_and_repeats_are_skipped() -> None:
    handled: list[int] = []

    async def dispatch(msg: Any) -> str:
        handled.append(msg.metadata.sequence.stream)
        return "handled"

    positions = _Ephemeral("opensqt.v1.position.main.BTCUSDT", None, DeliverPolicy.NEW, "POSITIONS", dispatch)
    positions.last_sequence = 4  # the stream's last message when it subscribed
    first = positions.callback()
    await first(Message(3))  # older than the subscription (a restart's latest per subject)
    await first(Message(5))
    positions.generation += 1  # restored: the first subscription is retired
    second = positions.callback()
    await first(Message(6))  # late, from the retired one: the new one delivers it
    repeat = Message(5)
    await second(repeat)  # the latest per subject, handled already: acknowledged, skipped
    await second(Message(6))
    assert handled == [5, 6]
    assert repeat.acked
