"""The spike statistics on hand-computed series (the Flink job and the backtest share them)."""

from __future__ import annotations

import math

import pytest

from streamscout.common.config import load_settings
from streamscout.detector.stats import (
    Baseline,
    Detection,
    DetectorParams,
    OutOfOrderBucket,
    SpikeDetector,
    bucket_start_ms,
    is_command,
    variant_names,
)

pytestmark = pytest.mark.unit

B = 5000  # ms per bucket


def run(detector: SpikeDetector, counts: list[int], start: int = 0, events: dict[int, int] | None = None):
    """Push counts as consecutive buckets; return {bucket index: detection}."""
    events = events or {}
    found = {}
    for i, count in enumerate(counts, start=start):
        detection = detector.push(i * B, count, events.get(i, 0))
        if detection:
            found[i] = detection
    return found


def small(**changes) -> SpikeDetector:
    """A detector with a 4-bucket baseline, so series stay short enough to compute by hand."""
    values = dict(baseline_buckets=4, cooldown_seconds=10.0)
    values.update(changes)
    return SpikeDetector(7, DetectorParams(**values))


# --- helpers ------------------------------------------------------------------------------


def test_is_command_is_exactly_a_leading_bang():
    assert is_command("!clip")
    assert is_command("!")
    assert not is_command(" !clip")  # same as the JVM filter `NOT LIKE '!%'`
    assert not is_command("")
    assert not is_command("wow !clip")


def test_bucket_start_is_epoch_aligned():
    assert bucket_start_ms(12_345, 5000) == 10_000
    assert bucket_start_ms(10_000, 5000) == 10_000
    assert bucket_start_ms(14_999, 5000) == 10_000
    assert bucket_start_ms(-1, 5000) == -5000


def test_params_from_settings_and_validation():
    settings = load_settings({"STREAMSCOUT_DETECTOR_K": "4", "STREAMSCOUT_DETECTOR_VARIANT": "robust"})
    params = DetectorParams.from_settings(settings)
    assert params == DetectorParams(k=4.0, variant="robust")
    assert DetectorParams.from_settings(load_settings({})) == DetectorParams()
    assert DetectorParams.from_settings(load_settings({}), k=5.0).k == 5.0
    with pytest.raises(ValueError, match="min_excess"):
        DetectorParams(min_excess=0)
    with pytest.raises(ValueError, match="unknown detector variant 'fancy'"):
        DetectorParams(variant="fancy")
    with pytest.raises(ValueError, match="bucket_seconds"):
        DetectorParams(bucket_seconds=0.0005)
    assert "nbinom+discount" in variant_names()


# --- the spec rule --------------------------------------------------------------------------


def test_warm_up_never_detects_and_the_first_full_baseline_does():
    detector = small()
    assert run(detector, [1, 3, 100]) == {}
    assert not detector.warmed_up
    assert run(detector, [3], start=3) == {}
    assert detector.warmed_up
    # window [1, 3, 100, 3]: the warm-up buckets are taken as they are
    found = run(detector, [500], start=4)
    assert list(found) == [4]
    assert found[4].mean == 26.75


def test_default_warm_up_is_five_minutes():
    detector = SpikeDetector(1, DetectorParams())
    assert run(detector, [0] * 59 + [1000]) == {}
    assert list(run(detector, [1000], start=60)) == [60]


def test_hand_computed_spike():
    # window [1, 3, 1, 3]: mean 2, sigma 1, threshold 2 + 3*1 = 5
    detector = small()
    run(detector, [1, 3, 1, 3])
    assert detector.push(4 * B, 5) is None  # must exceed mean + 3 sigma, not reach it
    detector = small()
    run(detector, [1, 3, 1, 3])
    assert detector.push(4 * B, 6) == Detection(7, 4 * B, 6, 2.0, 1.0, 4.0, 5.0)


def test_the_judged_bucket_is_never_in_its_own_baseline():
    detector = small()
    run(detector, [2, 2, 2, 2])
    # Were 100 in the window the mean would be 26 and sigma 42; it is judged against [2, 2, 2, 2].
    detection = detector.push(4 * B, 100)
    assert (detection.mean, detection.stddev) == (2.0, 0.0)


def test_steady_baseline_uses_the_minimum_excess():
    detector = small()
    run(detector, [2, 2, 2, 2])
    detection = detector.push(4 * B, 3)
    # sigma = 0: the minimum excess (1) decides; sigma is floored at min_excess / k for the score
    assert detection == Detection(7, 4 * B, 3, 2.0, 0.0, 3.0, 3.0)
    assert small().push(0, 0) is None


def test_chat_returning_to_a_silent_window_starts_a_new_warm_up():
    detector = small()
    run(detector, [0, 0, 0, 0])
    assert detector.push(4 * B, 50) is None  # silence is no baseline: warm-up again from this bucket
    assert detector.baseline() is None
    assert run(detector, [50, 50], start=5) == {}  # still warming up: [50, 50, 50]
    assert detector.baseline() is None
    run(detector, [50], start=7)
    assert detector.baseline() == Baseline(50.0, 0.0, 51.0)


def test_a_silent_window_that_stays_silent_needs_no_warm_up():
    detector = small()
    run(detector, [0, 0, 0, 0, 0, 0])
    assert detector.warmed_up and detector.baseline().mean == 0.0


def test_sigma_zero_on_a_steady_channel():
    detector = small(min_excess=2.0)
    run(detector, [4, 4, 4, 4])
    assert detector.push(4 * B, 5) is None  # 5 > 4 + 0 but the excess 1 < 2
    detector = small(min_excess=2.0)
    run(detector, [4, 4, 4, 4])
    detection = detector.push(4 * B, 6)
    assert (detection.score, detection.threshold) == (3.0, 6.0)  # (6 - 4) / (2 / 3)


def test_min_excess_floor_above_three_sigma():
    # window [0, 1, 0, 1]: mean 0.5, sigma 0.5, mean + 3 sigma = 2
    detector = small(min_excess=3.0)
    run(detector, [0, 1, 0, 1])
    assert detector.push(4 * B, 3) is None  # 3 > 2 but 3 - 0.5 < 3
    detector = small(min_excess=3.0)
    run(detector, [0, 1, 0, 1])
    detection = detector.push(4 * B, 4)
    assert (detection.mean, detection.stddev, detection.score) == (0.5, 0.5, 3.5)


def test_cooldown_silences_spikes_for_thirty_seconds():
    detector = SpikeDetector(1, DetectorParams(baseline_buckets=4, cooldown_seconds=30.0))
    run(detector, [1, 1, 1, 1])
    verdicts = [detector.step(i * B, 100) for i in range(4, 12)]
    assert [v.spike for v in verdicts] == [True] * 8
    reported = [v.bucket_start_ms // B for v in verdicts if v.detection]
    assert reported == [4, 10]  # 30 s after the first; 5..9 silenced
    assert {v.silenced_by for v in verdicts if not v.detection} == {"cooldown"}


def test_gap_counts_as_zero_buckets():
    detector = small()
    run(detector, [2, 2, 2, 2])
    # buckets 4 and 5 never arrive (no messages): window [2, 2, 0, 0], mean 1, sigma 1
    detection = detector.push(6 * B, 5)
    assert (detection.bucket_start_ms, detection.mean, detection.stddev, detection.score) == (6 * B, 1.0, 1.0, 4.0)


def test_chat_after_a_gap_longer_than_the_baseline_starts_a_new_warm_up():
    detector = small()
    run(detector, [9, 9, 9, 9])
    assert detector.push(1000 * B, 40) is None  # offline and back: the zeros are no baseline
    assert detector.baseline() is None


def test_first_bucket_starts_the_warm_up_and_gaps_complete_it():
    detector = small()
    detector.push(100 * B, 3)
    assert detector.push(103 * B, 50) is None  # window [3, 0, 0]: still warming up
    assert detector.warmed_up


def test_spike_enters_the_baseline_clipped_at_the_threshold():
    detector = small()
    run(detector, [1, 3, 1, 3, 100])  # threshold 5: 100 enters as 5
    baseline = detector.baseline()
    assert baseline.mean == 3.0  # [3, 1, 3, 5]; raw it would be 26.75
    assert baseline.stddev == math.sqrt(2.0)


def test_a_second_moment_after_a_burst_is_still_seen():
    counts = [1, 3] * 6 + [200, 1, 3, 1, 3, 1, 3, 40]
    params = DetectorParams(baseline_buckets=12, cooldown_seconds=30.0)
    found = run(SpikeDetector(1, params), counts)
    assert sorted(found) == [12, 19]
    # Fed raw, the 200 would lift sigma to ~55 and hide the 40.
    assert 40 < (200 + 11 * 2) / 12 + 3 * math.sqrt(((200 - 18.5) ** 2 + 11 * (2 - 18.5) ** 2) / 12)


def test_a_sustained_level_shift_is_absorbed():
    """Clipped spikes still move the baseline, so a permanent jump stops firing."""
    detector = SpikeDetector(1, DetectorParams())
    counts = [2, 3] * 60 + [20] * 600  # 10 minutes calm, then 50 minutes of 4x to 7x the rate
    found = run(detector, counts)
    assert found, "the jump itself is a moment"
    last = max(found)
    assert (last - 120) * 5 <= 180, f"still firing {(last - 120) * 5} s after the shift"
    assert len(found) <= 6


def test_out_of_order_and_malformed_buckets_are_rejected():
    detector = small()
    detector.push(2 * B, 1)
    with pytest.raises(OutOfOrderBucket):
        detector.push(2 * B, 1)
    with pytest.raises(OutOfOrderBucket):
        detector.push(1 * B, 1)
    with pytest.raises(ValueError, match="aligned"):
        detector.push(3 * B + 1, 1)
    with pytest.raises(ValueError, match="negative"):
        detector.push(3 * B, -1)


# --- state ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", variant_names())
def test_state_round_trip_continues_exactly(variant):
    counts = [(i * 7) % 5 for i in range(80)] + [40, 3, 2, 30, 1, 0, 0, 25] + [(i * 3) % 4 for i in range(40)]
    events = {90: 1}
    params = DetectorParams(variant=variant, baseline_buckets=60)
    whole = SpikeDetector(3, params)
    expected = run(whole, counts, events=events)
    assert expected

    first = SpikeDetector(3, params)
    found = run(first, counts[:85], events=events)
    snapshot = first.to_state()
    assert len(snapshot) < 600
    restored = SpikeDetector.from_state(snapshot, params)
    found |= run(restored, counts[85:], start=85, events=events)
    assert found == expected
    assert restored.to_state() == whole.to_state()


def test_state_from_a_longer_baseline_keeps_the_newest_buckets():
    detector = small()
    run(detector, [1, 2, 3, 4])
    shorter = SpikeDetector.from_state(detector.to_state(), DetectorParams(baseline_buckets=2))
    assert shorter.baseline().mean == 3.5
    with pytest.raises(ValueError, match="version"):
        SpikeDetector.from_state(b'{"v": 99}', DetectorParams())


# --- variants -------------------------------------------------------------------------------


def test_floor_variant_needs_five_extra_messages():
    detector = small(variant="floor")
    run(detector, [1, 1, 1, 1])
    assert detector.push(4 * B, 5) is None
    detector = small(variant="floor")
    run(detector, [1, 1, 1, 1])
    assert detector.push(4 * B, 6).threshold == 6.0


def test_floor_variant_leaves_busy_channels_to_three_sigma():
    # window [10, 14, 10, 14]: mean 12, sigma 2, 3 sigma = 6 > floor 5
    detector = small(variant="floor")
    run(detector, [10, 14, 10, 14])
    assert detector.push(4 * B, 18) is None
    detector = small(variant="floor")
    run(detector, [10, 14, 10, 14])
    assert detector.push(4 * B, 19).threshold == 18.0


def test_robust_variant_ignores_an_outlier_in_the_window():
    # window [10, 12, 10, 12, 90]: mean 26.8 (sigma 32) but median 12, MAD 2 -> sigma 2.9652
    params = DetectorParams(baseline_buckets=5, variant="robust")
    spec = SpikeDetector(1, DetectorParams(baseline_buckets=5))
    robust = SpikeDetector(1, params)
    for i, count in enumerate([10, 12, 10, 12, 90]):
        spec.push(i * B, count)
        robust.push(i * B, count)
    threshold = robust.baseline().threshold
    assert threshold == pytest.approx(12 + 3 * 1.4826 * 2)
    assert spec.push(5 * B, 30) is None
    assert robust.push(5 * B, 30).count == 30


def test_nbinom_variant_uses_the_poisson_tail_on_a_steady_window():
    # window [2, 2, 2, 2]: variance 0 <= mean -> Poisson(2); P(X >= 7) = 0.0045, P(X >= 8) = 0.0011
    detector = small(variant="nbinom")
    run(detector, [2, 2, 2, 2])
    assert detector.baseline().threshold == 8.0
    assert detector.push(4 * B, 7) is None
    detector = small(variant="nbinom")
    run(detector, [2, 2, 2, 2])
    assert detector.push(4 * B, 8).count == 8


def test_nbinom_variant_widens_the_band_for_bursty_windows():
    # window [0, 0, 0, 10]: mean 2.5, variance 18.75 -> r = 6.25 / 16.25, p = r / (r + 2.5)
    detector = small(variant="nbinom")
    run(detector, [0, 0, 0, 10])
    r = 6.25 / 16.25
    p = r / (r + 2.5)

    def pmf(x):
        return math.exp(math.lgamma(x + r) - math.lgamma(r) - math.lgamma(x + 1) + r * math.log(p) + x * math.log(1 - p))

    alpha = 0.5 * math.erfc(3 / math.sqrt(2))
    critical = next(c for c in range(1000) if 1 - sum(pmf(x) for x in range(c)) < alpha)
    assert detector.baseline().threshold == critical
    assert critical > 2.5 + 3 * math.sqrt(18.75)  # wider than mean + 3 sigma


def test_discount_variant_silences_buckets_after_a_raid():
    detector = small(variant="spec+discount", discount_seconds=15.0, cooldown_seconds=0.0)
    run(detector, [1, 1, 1, 1])
    verdicts = [detector.step(i * B, 50, events=1 if i == 4 else 0) for i in range(4, 9)]
    assert [v.silenced_by for v in verdicts[:3]] == ["discount"] * 3
    assert verdicts[3].detection is not None  # 15 s after the raid


def test_events_are_ignored_without_discount():
    detector = small()
    run(detector, [1, 1, 1, 1])
    assert detector.push(4 * B, 50, events=3) is not None


def test_flood_events_are_raids_and_gift_floods_once():
    from streamscout.detector.stats import is_flood_event

    assert is_flood_event("raid") and is_flood_event("submysterygift")
    assert not any(is_flood_event(kind) for kind in ("subgift", "sub", "resub", "", None))


@pytest.mark.parametrize("feed, mean", [("clip", 3.0), ("raw", 26.75), ("mean", 2.25)])
def test_what_a_spike_feeds_into_the_baseline(feed, mean):
    # window [1, 3, 1, 3] (mean 2, threshold 5), then 100: clip -> 5, raw -> 100, mean -> 2
    detector = small(spike_feed=feed)
    run(detector, [1, 3, 1, 3, 100])
    assert detector.baseline().mean == mean
    with pytest.raises(ValueError, match="spike_feed"):
        DetectorParams(spike_feed="skip")


@pytest.mark.parametrize("feed, absorbed", [("clip", True), ("raw", True), ("mean", False)])
def test_only_a_baseline_that_takes_spikes_in_absorbs_a_level_shift(feed, absorbed):
    detector = SpikeDetector(1, DetectorParams(spike_feed=feed))
    found = run(detector, [2, 3] * 60 + [20] * 600)
    if absorbed:
        assert (max(found) - 120) * 5 <= 180
    else:
        assert len(found) == 100  # one every 30 s for the 50 minutes after the jump
