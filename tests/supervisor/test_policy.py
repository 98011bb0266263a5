import pytest

from streamscout.supervisor.policy import RestartPolicy, RestartTracker

pytestmark = pytest.mark.unit


def test_delay_doubles_on_quick_failures_and_is_capped():
    tracker = RestartTracker(RestartPolicy(base_delay=1, max_delay=5, stable_seconds=60, burst_limit=100))
    delays = [tracker.on_exit(now=t, started_at=t - 1) for t in range(10, 15)]
    assert delays == [1, 2, 4, 5, 5]


def test_a_stable_run_resets_the_backoff():
    tracker = RestartTracker(RestartPolicy(base_delay=1, max_delay=30, stable_seconds=60))
    assert tracker.on_exit(now=10, started_at=9) == 1
    assert tracker.on_exit(now=12, started_at=11) == 2
    assert tracker.on_exit(now=200, started_at=100) == 1


def test_gives_up_after_too_many_failures_in_the_window():
    tracker = RestartTracker(RestartPolicy(base_delay=0.1, burst_limit=3, burst_window_seconds=100))
    results = [tracker.on_exit(now=t, started_at=t) for t in (1, 2, 3, 4)]
    assert results[:3] == [0.1, 0.2, 0.4] and results[3] is None


def test_old_failures_leave_the_window():
    tracker = RestartTracker(RestartPolicy(base_delay=1, burst_limit=2, burst_window_seconds=10, stable_seconds=5))
    assert tracker.on_exit(now=1, started_at=0) is not None
    assert tracker.on_exit(now=2, started_at=1.5) is not None
    assert tracker.on_exit(now=50, started_at=49) is not None
