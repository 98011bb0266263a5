"""Every path of the clip lifecycle, driven with plain numbers (no Flink, no Twitch)."""

import pytest

from streamscout.common.config import load_settings
from streamscout.detector.lifecycle import (
    ClipLifecycle,
    ClipRequest,
    CreateClip,
    GetClip,
    MarkNoClipping,
    Outcome,
    Persist,
    RefreshToken,
    Schedule,
    ScheduleTimer,
    StoreClip,
)

pytestmark = pytest.mark.unit

T0 = 1_700_000_000_000  # detection time
REQ = ClipRequest(42, T0 - 5_000, T0, 30, 5.0, 2.0, 12.5)
SCHED = Schedule()
CLIP = {"id": "Clip1", "edit_url": "https://clips.twitch.tv/Clip1/edit"}
GOT = {"id": "Clip1", "url": "u", "embed_url": "e", "thumbnail_url": "t"}


def started():
    lc, actions = ClipLifecycle.start(REQ, SCHED)
    assert actions == [ScheduleTimer(T0 + 10_000)]
    return lc


def created(at=T0 + 10_000):
    lc = started()
    assert lc.on_timer(at) == [Persist(), CreateClip(42)]
    assert lc.on_create_result(Outcome.ok(CLIP, 202), at + 300) == [Persist(), ScheduleTimer(at + 15_300)]
    return lc


def test_schedule_from_settings():
    s = load_settings({"STREAMSCOUT_DETECTOR_RETRY_OFFSETS": "1,3,5", "STREAMSCOUT_DETECTOR_CLIP_DELAY_SECONDS": "2.5"})
    assert Schedule.from_settings(s) == Schedule(2_500, (1_000, 3_000, 5_000), (15_000, 30_000, 60_000))


def test_timer_before_due_does_nothing():
    lc = started()
    assert lc.on_timer(T0 + 9_999) == []
    assert lc.attempts == 0 and lc.db_state() == "pending"


def test_happy_path_creates_after_delay_then_stores_at_first_lookup():
    lc = created()
    assert lc.db_state() == "created" and lc.clip_id == "Clip1" and lc.attempts == 1
    assert lc.on_timer(T0 + 25_299) == []
    assert lc.on_timer(T0 + 25_300) == [GetClip("Clip1")]
    assert lc.on_get_result(Outcome.ok(GOT), T0 + 25_400) == [StoreClip(GOT), Persist()]
    assert lc.done and lc.db_state() == "stored"
    assert lc.on_timer(T0 + 99_000) == []


def test_transient_failures_retry_two_and_four_seconds_after_first_attempt():
    lc = started()
    first = T0 + 10_000
    lc.on_timer(first)
    # the failing call took 1.5 s; the retry stays at first + 2 s
    assert lc.on_create_result(Outcome("transient", 503), first + 1_500) == [Persist(), ScheduleTimer(first + 2_000)]
    assert lc.persisted_failure_reason() == "http_503" and lc.db_state() == "pending"
    assert lc.on_timer(first + 2_000) == [Persist(), CreateClip(42)]
    assert lc.persisted_failure_reason() is None  # cleared before the call
    assert lc.on_create_result(Outcome("transient", 429), first + 2_100) == [Persist(), ScheduleTimer(first + 4_000)]
    assert lc.on_timer(first + 4_000) == [Persist(), CreateClip(42)]
    assert lc.on_create_result(Outcome("transient", None, "timeout"), first + 9_000) == [Persist()]
    assert lc.db_state() == "failed" and lc.failure_reason == "retries_exhausted" and lc.attempts == 3


def test_slow_failure_makes_the_next_retry_due_at_once():
    lc = started()
    first = T0 + 10_000
    lc.on_timer(first)
    assert lc.on_create_result(Outcome("transient", None, "timeout"), first + 5_000) == [
        Persist(),
        ScheduleTimer(first + 5_000),
    ]


def test_retry_success_then_fetch_relative_to_creation():
    lc = started()
    first = T0 + 10_000
    lc.on_timer(first)
    lc.on_create_result(Outcome("transient", 500), first + 100)
    lc.on_timer(first + 2_000)
    assert lc.on_create_result(Outcome.ok(CLIP), first + 2_200) == [Persist(), ScheduleTimer(first + 17_200)]


def test_401_refreshes_once_and_calls_again_at_once():
    lc = started()
    lc.on_timer(T0 + 10_000)
    assert lc.on_create_result(Outcome("unauthorized", 401), T0 + 10_100) == [RefreshToken(), Persist(), CreateClip(42)]
    assert lc.on_create_result(Outcome.ok(CLIP), T0 + 10_200)[0] == Persist()
    assert lc.db_state() == "created" and lc.attempts == 2


def test_second_401_fails_as_unauthorized():
    lc = started()
    lc.on_timer(T0 + 10_000)
    lc.on_create_result(Outcome("unauthorized", 401), T0 + 10_100)
    assert lc.on_create_result(Outcome("unauthorized", 401), T0 + 10_200) == [Persist()]
    assert lc.failure_reason == "unauthorized"


def test_refresh_is_allowed_again_on_a_later_retry():
    lc = started()
    lc.on_timer(T0 + 10_000)
    lc.on_create_result(Outcome("unauthorized", 401), T0 + 10_100)
    lc.on_create_result(Outcome("transient", 502), T0 + 10_200)
    lc.on_timer(T0 + 12_000)
    assert lc.on_create_result(Outcome("unauthorized", 401), T0 + 12_100)[0] == RefreshToken()


def test_403_marks_channel_and_never_retries():
    lc = started()
    lc.on_timer(T0 + 10_000)
    assert lc.on_create_result(Outcome("forbidden", 403), T0 + 10_100) == [MarkNoClipping(42), Persist()]
    assert lc.failure_reason == "clipping_disabled" and lc.done
    assert lc.on_timer(T0 + 12_000) == []


@pytest.mark.parametrize("kind, reason", [("offline", "offline"), ("rejected", "rejected")])
def test_404_and_other_client_errors_give_up(kind, reason):
    lc = started()
    lc.on_timer(T0 + 10_000)
    assert lc.on_create_result(Outcome(kind, 404), T0 + 10_100) == [Persist()]
    assert lc.failure_reason == reason and lc.attempts == 1


def test_lookups_at_15_30_60_then_processing_timeout():
    lc = created()
    c = T0 + 10_300
    assert lc.on_timer(c + 15_000) == [GetClip("Clip1")]
    assert lc.on_get_result(Outcome("missing", 200), c + 15_100) == [ScheduleTimer(c + 30_000)]
    assert lc.on_timer(c + 30_000) == [GetClip("Clip1")]
    assert lc.on_get_result(Outcome("transient", 503), c + 30_100) == [ScheduleTimer(c + 60_000)]
    assert lc.on_timer(c + 60_000) == [GetClip("Clip1")]
    assert lc.on_get_result(Outcome("missing", 200), c + 60_100) == [Persist()]
    assert lc.failure_reason == "processing_timeout" and lc.clip_id == "Clip1"


def test_clip_found_at_second_lookup_is_stored():
    lc = created()
    c = T0 + 10_300
    lc.on_timer(c + 15_000)
    lc.on_get_result(Outcome("missing"), c + 15_100)
    lc.on_timer(c + 30_000)
    assert lc.on_get_result(Outcome.ok(GOT), c + 30_100) == [StoreClip(GOT), Persist()]


def test_lookup_401_refreshes_once():
    lc = created()
    c = T0 + 10_300
    lc.on_timer(c + 15_000)
    assert lc.on_get_result(Outcome("unauthorized", 401), c + 15_100) == [RefreshToken(), GetClip("Clip1")]
    assert lc.on_get_result(Outcome("unauthorized", 401), c + 15_200) == [ScheduleTimer(c + 30_000)]


def test_state_round_trip_mid_retry():
    lc = started()
    lc.on_timer(T0 + 10_000)
    lc.on_create_result(Outcome("transient", 503), T0 + 10_100)
    again = ClipLifecycle.from_state(lc.to_state())
    assert again == lc
    assert again.on_timer(T0 + 12_000) == [Persist(), CreateClip(42)]


def resume(db_state, attempts=0, clip_id=None, failure_reason=None, updated_at=T0, now=T0 + 1_000):
    return ClipLifecycle.resume(
        REQ, SCHED, db_state=db_state, attempts=attempts, clip_id=clip_id,
        failure_reason=failure_reason, updated_at_ms=updated_at, now_ms=now,
    )


def test_resume_pending_before_create_keeps_the_original_create_time():
    lc, actions = resume("pending")
    assert actions == [ScheduleTimer(T0 + 10_000)]


def test_resume_pending_overdue_creates_at_once():
    lc, actions = resume("pending", now=T0 + 50_000)
    assert actions == [ScheduleTimer(T0 + 50_000)]
    assert lc.on_timer(T0 + 50_000) == [Persist(), CreateClip(42)]


def test_resume_after_transient_failure_continues_retries():
    lc, actions = resume("pending", attempts=1, failure_reason="http_503", now=T0 + 11_000)
    assert actions == [Persist(), ScheduleTimer(T0 + 12_000)]
    lc, actions = resume("pending", attempts=3, failure_reason="http_503", now=T0 + 20_000)
    assert actions == [Persist()] and lc.failure_reason == "retries_exhausted"


def test_resume_with_unanswered_call_fails_rather_than_risk_a_duplicate():
    lc, actions = resume("pending", attempts=1, failure_reason=None)
    assert actions == [Persist()] and lc.failure_reason == "interrupted"


def test_resume_created_continues_lookups():
    created_at = T0 + 10_000
    lc, actions = resume("created", attempts=1, clip_id="Clip1", updated_at=created_at, now=created_at + 5_000)
    assert actions == [ScheduleTimer(created_at + 15_000)]
    lc, actions = resume("created", attempts=1, clip_id="Clip1", updated_at=created_at, now=created_at + 40_000)
    assert actions == [ScheduleTimer(created_at + 40_000)]  # the 30 s look is overdue: now
    assert lc.on_timer(created_at + 40_000) == [GetClip("Clip1")]
    assert lc.on_get_result(Outcome("missing"), created_at + 40_100) == [ScheduleTimer(created_at + 60_000)]


@pytest.mark.parametrize("state", ["stored", "failed"])
def test_resume_finished_rows_needs_nothing(state):
    lc, actions = resume(state, attempts=1, clip_id="C")
    assert actions == [] and lc.done
