"""The clip runner against real Postgres with a scripted Twitch: rows, idempotency, resume."""

import psycopg
import pytest

from streamscout.detector.clips import ClipRunner, DetectionRepository
from streamscout.detector.lifecycle import ClipRequest, Outcome, Schedule

pytestmark = pytest.mark.integration

T0 = 1_800_000_000_000


class ScriptedTwitch:
    """Answers create/get from queues of outcomes; records every call."""

    def __init__(self, creates=(), gets=()):
        self.creates, self.gets, self.calls = list(creates), list(gets), []
        self.last_token = "tok"

    def create(self, broadcaster_id):
        self.calls.append(("create", broadcaster_id))
        return self.creates.pop(0)

    def get(self, clip_id):
        self.calls.append(("get", clip_id))
        return self.gets.pop(0)


class Tokens:
    refreshed = 0

    def access_token(self):
        return "tok"

    def refresh_after_401(self, stale):
        self.refreshed += 1
        return "tok2"


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def repo(postgres_dsn):
    repository = DetectionRepository(postgres_dsn)
    yield repository
    repository.close()


def make(repo, twitch, clock, metrics=None):
    record = (lambda name, value: metrics.append(name)) if metrics is not None else None
    return ClipRunner(twitch, repo, Tokens(), Schedule(), clock, record)


def detection_row(dsn, bucket_ms, broadcaster=7):
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT state, create_attempts, clip_id, failure_reason FROM detections"
            " WHERE broadcaster_id = %s AND bucket_start = to_timestamp(%s / 1000.0) AT TIME ZONE 'UTC'",
            (broadcaster, bucket_ms),
        ).fetchone()


def clips(dsn, broadcaster=7):
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT clip_id, score, thumbnail_url, detection_id IS NOT NULL, detected_at FROM clips WHERE broadcaster_id = %s",
            (broadcaster,),
        ).fetchall()


def request(bucket, broadcaster=7, detected=T0):
    return ClipRequest(broadcaster, bucket, detected, 40, 5.0, 2.0, 17.5)


def test_happy_path_stores_the_clip_once(repo, postgres_dsn):
    clock, metrics = Clock(T0), []
    twitch = ScriptedTwitch([Outcome.ok({"id": "C1"}, 202)], [Outcome("missing"), Outcome.ok({"id": "C1", "embed_url": "e", "thumbnail_url": "t"})])
    runner = make(repo, twitch, clock, metrics)
    open_clips, timers = runner.begin(request(T0 - 5000))
    assert timers == [T0 + 10_000]
    (did, lc), = open_clips.items()
    assert detection_row(postgres_dsn, T0 - 5000) == ("pending", 0, None, None)
    clock.now = T0 + 10_000
    assert runner.fire(did, lc) == [T0 + 25_000]
    assert detection_row(postgres_dsn, T0 - 5000) == ("created", 1, "C1", None)
    clock.now = T0 + 25_000
    assert runner.fire(did, lc) == [T0 + 40_000]
    clock.now = T0 + 40_000
    assert runner.fire(did, lc) == []
    assert detection_row(postgres_dsn, T0 - 5000) == ("stored", 1, "C1", None)
    assert [c[:4] for c in clips(postgres_dsn)] == [("C1", 17.5, "t", True)]
    assert metrics == ["clip_created", "clip_stored"]
    # the same detection again (a replay): found, nothing re-created
    assert runner.begin(request(T0 - 5000)) == ({}, [])
    assert twitch.calls == [("create", 7), ("get", "C1"), ("get", "C1")]


def test_replayed_pending_detection_is_resumed_not_duplicated(repo, postgres_dsn):
    clock = Clock(T0)
    twitch = ScriptedTwitch([Outcome.ok({"id": "C2"})])
    first = make(repo, twitch, clock)
    first.begin(request(T0 - 10_000))
    # the job died; a restored job judges the bucket again 3 s later
    clock.now = T0 + 3_000
    second = make(repo, twitch, clock)
    open_clips, timers = second.begin(request(T0 - 10_000, detected=T0 + 3_000))
    assert timers == [T0 + 10_000]  # the original create time, from Postgres
    (did, lc), = open_clips.items()
    clock.now = T0 + 10_000
    second.fire(did, lc)
    assert twitch.calls == [("create", 7)]


def test_adopt_resumes_open_detections_the_state_does_not_hold(repo, postgres_dsn):
    clock = Clock(T0)
    runner = make(repo, ScriptedTwitch(), clock)
    held, _ = runner.begin(request(T0 - 20_000, broadcaster=8))
    runner.begin(request(T0 - 15_000, broadcaster=8))
    adopted, timers = runner.adopt(8, known=set(held))
    assert len(adopted) == 1 and timers == [T0 + 10_000]


def test_unanswered_create_is_not_repeated_after_a_crash(repo, postgres_dsn):
    clock = Clock(T0)

    class Crash(ScriptedTwitch):
        def create(self, broadcaster_id):
            raise KeyboardInterrupt  # the process died mid-call

    runner = make(repo, Crash(), clock)
    (did, lc), = runner.begin(request(T0 - 25_000, broadcaster=9))[0].items()
    clock.now = T0 + 10_000
    with pytest.raises(KeyboardInterrupt):
        runner.fire(did, lc)
    assert detection_row(postgres_dsn, T0 - 25_000, 9) == ("pending", 1, None, None)
    adopted, timers = make(repo, ScriptedTwitch(), clock).adopt(9, known=set())
    assert adopted == {} and detection_row(postgres_dsn, T0 - 25_000, 9)[3] == "interrupted"


def test_403_marks_the_channel_and_later_detections_skip_twitch(repo, postgres_dsn):
    clock, metrics = Clock(T0), []
    twitch = ScriptedTwitch([Outcome("forbidden", 403)])
    runner = make(repo, twitch, clock, metrics)
    (did, lc), = runner.begin(request(T0 - 30_000, broadcaster=10))[0].items()
    clock.now = T0 + 10_000
    runner.fire(did, lc)
    with psycopg.connect(postgres_dsn) as conn:
        allows, refused = conn.execute(
            "SELECT allows_clipping, clipping_refused_at IS NOT NULL FROM streamers WHERE broadcaster_id = 10"
        ).fetchone()
    assert (allows, refused) == (False, True)
    assert runner.begin(request(T0 + 30_000, broadcaster=10)) == ({}, [])
    assert detection_row(postgres_dsn, T0 + 30_000, 10) == ("failed", 0, None, "clipping_disabled")
    assert twitch.calls == [("create", 10)]
    assert metrics == ["clip_failed:clipping_disabled", "clip_failed:clipping_disabled"]


def test_transient_errors_are_kept_on_the_row_while_retrying(repo, postgres_dsn):
    clock = Clock(T0)
    twitch = ScriptedTwitch([Outcome("transient", 503), Outcome("transient", None, "timeout"), Outcome("transient", 500)])
    runner = make(repo, twitch, clock)
    (did, lc), = runner.begin(request(T0 - 35_000, broadcaster=11))[0].items()
    for now in (T0 + 10_000, T0 + 12_000, T0 + 14_000):
        clock.now = now
        runner.fire(did, lc)
        if now == T0 + 10_000:
            assert detection_row(postgres_dsn, T0 - 35_000, 11) == ("pending", 1, None, "http_503")
    assert detection_row(postgres_dsn, T0 - 35_000, 11) == ("failed", 3, None, "retries_exhausted")


def test_storing_the_same_clip_twice_keeps_one_row(repo, postgres_dsn):
    row, _ = repo.record_detection(request(T0 - 40_000, broadcaster=12))
    clip = {"id": "Same", "embed_url": "e", "thumbnail_url": "t"}
    repo.store_clip(row.id, row.request, clip)
    repo.store_clip(row.id, row.request, clip)
    assert len(clips(postgres_dsn, 12)) == 1


def test_state_restored_from_before_the_create_does_not_create_again(repo, postgres_dsn):
    """A job restored from a checkpoint taken between the detection and its Create Clip holds the
    lifecycle as still waiting, while the (killed) job it replaces already created the clip: seen
    in the fault-injection run as a second Twitch clip after a JobManager kill."""
    from streamscout.detector.lifecycle import ClipLifecycle

    clock = Clock(T0)
    twitch = ScriptedTwitch([Outcome.ok({"id": "C9"})], [Outcome.ok({"id": "C9", "embed_url": "e", "thumbnail_url": "t"})])
    runner = make(repo, twitch, clock)
    open_clips, _ = runner.begin(request(T0 - 30_000, broadcaster=11))
    (did, lc), = open_clips.items()
    checkpointed = ClipLifecycle.from_state(lc.to_state())
    clock.now = T0 + 10_000
    runner.fire(did, lc)  # the old job creates C9, then dies
    assert detection_row(postgres_dsn, T0 - 30_000, broadcaster=11) == ("created", 1, "C9", None)
    # the restored job's timer fires for the checkpointed (still waiting) lifecycle
    clock.now = T0 + 12_000
    restored = make(repo, twitch, clock)
    timers = restored.fire(did, checkpointed)
    assert twitch.calls == [("create", 11)]  # no second Create Clip
    assert checkpointed.clip_id == "C9" and len(timers) == 1  # look-ups of C9 continue
    clock.now = timers[0]
    assert restored.fire(did, checkpointed) == []
    assert detection_row(postgres_dsn, T0 - 30_000, broadcaster=11) == ("stored", 1, "C9", None)


def test_state_restored_from_before_an_unanswered_create_fails_as_interrupted(repo, postgres_dsn):
    from streamscout.detector.lifecycle import ClipLifecycle

    clock = Clock(T0)
    twitch = ScriptedTwitch()
    runner = make(repo, twitch, clock)
    open_clips, _ = runner.begin(request(T0 - 35_000, broadcaster=12))
    (did, lc), = open_clips.items()
    checkpointed = ClipLifecycle.from_state(lc.to_state())
    lc.on_timer(T0 + 10_000)  # the attempt is counted ...
    repo.persist(did, lc)      # ... and persisted; the job died before Twitch answered
    clock.now = T0 + 11_000
    assert runner.fire(did, checkpointed) == []
    assert checkpointed.done and twitch.calls == []
    assert detection_row(postgres_dsn, T0 - 35_000, broadcaster=12) == ("failed", 1, None, "interrupted")
