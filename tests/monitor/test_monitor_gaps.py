"""The chat-gap bookkeeping: which message ends a gap, and how long the gap was."""

from __future__ import annotations

import pytest

from streamscout.monitor.gaps import ChatGaps

pytestmark = pytest.mark.unit


def test_no_gap_without_an_interruption():
    gaps = ChatGaps()
    assert [gaps.seen(1, t) for t in (1_000, 2_000, 9_000)] == [None, None, None]


def test_first_message_after_a_resume_reports_the_gap_once():
    gaps = ChatGaps()
    gaps.seen(1, 1_000)
    gaps.resume(1, gaps.last_ms[1], "rebuild")
    assert gaps.seen(2, 5_000) is None  # another channel does not end channel 1's gap
    assert gaps.seen(1, 7_250) == ("rebuild", 6.25)
    assert gaps.seen(1, 7_300) is None


def test_a_channel_never_read_before_has_no_gap():
    gaps = ChatGaps()
    gaps.resume(1, None, "restart")
    assert gaps.seen(1, 5_000) is None


def test_a_restart_resumes_from_the_persisted_time():
    before = ChatGaps()
    before.seen(1, 1_000)
    before.seen(1, 3_000)
    before.seen(2, 2_000)
    persisted = before.changed()
    assert persisted == {1: 3_000, 2: 2_000} and before.changed() == {}
    after = ChatGaps()
    after.resume(1, persisted[1], "restart")
    assert after.seen(1, 13_000) == ("restart", 10.0)


def test_a_deliberate_leave_forgets_the_channel():
    gaps = ChatGaps()
    gaps.seen(1, 1_000)
    gaps.resume(1, 1_000, "rebuild")
    gaps.forget(1)
    assert gaps.changed() == {} and gaps.last_ms == {}
    assert gaps.seen(1, 60_000) is None


def test_a_message_older_than_the_last_one_before_is_no_gap():
    gaps = ChatGaps()
    gaps.resume(1, 10_000, "restart")
    assert gaps.seen(1, 9_000) is None  # a late line; the gap is not negative
    assert gaps.seen(1, 11_000) is None  # and the resume was used up by it
