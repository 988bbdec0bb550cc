"""Where a lost ephemeral JetStream subscription starts again (pure: no server)."""

from __future__ import annotations

from nats.js.api import DeliverPolicy

from opensqt.transport.bus import _Ephemeral


async def _ignore(msg: object) -> None:
    return None


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
