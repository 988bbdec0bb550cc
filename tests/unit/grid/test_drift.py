"""PositionWatch: a drift while trading counts once two readings in a row agree on it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from opensqt.grid.drift import PositionWatch

D = Decimal


def test_a_single_reading_with_a_drift_is_not_confirmed() -> None:
    watch = PositionWatch()
    verdict = watch.observe(D("0.5"), D("0.4"))
    assert verdict.reading.drift == D("0.1")
    assert not verdict.confirmed
    assert not verdict.alert


def test_the_same_drift_twice_is_confirmed_and_alerts_at_five_percent() -> None:
    watch = PositionWatch()
    watch.observe(D("1.00"), D("0.95"))
    verdict = watch.observe(D("1.00"), D("0.95"))
    assert verdict.confirmed
    assert verdict.reading.ratio == D("0.05")
    assert verdict.alert


def test_a_confirmed_drift_under_five_percent_is_reported_without_an_alert() -> None:
    watch = PositionWatch()
    watch.observe(D("1.00"), D("0.96"))
    verdict = watch.observe(D("1.00"), D("0.96"))
    assert verdict.confirmed
    assert not verdict.alert


def test_a_fill_arriving_between_readings_is_not_a_drift() -> None:
    watch = PositionWatch()
    # the venue counts a fill the order stream has not brought yet
    assert not watch.observe(D("0.2"), D("0.1")).confirmed
    assert not watch.observe(D("0.2"), D("0.2")).confirmed  # it arrived
    assert not watch.observe(D("0.3"), D("0.2")).confirmed  # the next one is on its way


def test_a_drift_that_changes_between_readings_is_not_confirmed() -> None:
    watch = PositionWatch()
    watch.observe(D("0.3"), D("0.1"))
    assert not watch.observe(D("0.4"), D("0.1")).confirmed
    assert watch.observe(D("0.4"), D("0.1")).alert


def test_a_liquidated_position_is_a_full_drift() -> None:
    watch = PositionWatch()
    watch.observe(D("0"), D("0.25"))
    verdict = watch.observe(D("0"), D("0.25"))
    assert verdict.reading.ratio == 1
    assert verdict.alert


def test_no_position_on_either_side_is_no_drift() -> None:
    watch = PositionWatch()
    watch.observe(D("0"), D("0"))
    verdict = watch.observe(D("0"), D("0"))
    assert (verdict.confirmed, verdict.alert, verdict.reading.ratio) == (False, False, 0)


def test_a_seeded_reading_confirms_on_the_first_observation() -> None:
    watch = PositionWatch()
    watch.seed(D("0.5"), D("0.3"))
    assert watch.observe(D("0.5"), D("0.3")).alert


def test_an_acknowledged_drift_does_not_alert_again_but_a_different_one_does() -> None:
    watch = PositionWatch()
    watch.observe(D("0.5"), D("0.3"))
    assert watch.observe(D("0.5"), D("0.3")).alert
    watch.acknowledge()
    again = watch.observe(D("0.5"), D("0.3"))
    assert again.confirmed
    assert again.acknowledged
    assert not again.alert
    watch.observe(D("0.6"), D("0.3"))  # the account moved again
    assert watch.observe(D("0.6"), D("0.3")).alert


def test_the_same_drift_alerts_again_once_it_had_gone() -> None:
    watch = PositionWatch()
    watch.observe(D("0.5"), D("0.3"))
    watch.acknowledge()
    watch.observe(D("0.3"), D("0.3"))  # fixed by the operator
    watch.observe(D("0.5"), D("0.3"))
    assert watch.observe(D("0.5"), D("0.3")).alert


def test_acknowledging_without_a_drift_accepts_nothing() -> None:
    watch = PositionWatch()
    watch.acknowledge()
    watch.observe(D("0.2"), D("0"))
    assert watch.observe(D("0.2"), D("0")).alert


@pytest.mark.parametrize("ratio", ["0", "-0.1", "1.5"])
def test_the_alert_ratio_must_be_a_fraction(ratio: str) -> None:
    with pytest.raises(ValueError, match="alert_ratio"):
        PositionWatch(D(ratio))
