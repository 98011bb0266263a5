"""The clip detector end to end on the real stack: Kafka -> Flink standalone cluster -> the
simulated Twitch -> Postgres, with short buckets (1 s) and a short baseline (20 buckets).

One scenario drives every assertion (the job takes ~15 s to start, so it runs once per module):
channel A bursts twice (two clips), B refuses clipping (403), C chats steadily (no clip), D's
first two Create Clip calls get injected 503s (retried at +2 s/+4 s). Malformed records are
mixed in and must not stop the job.
"""

from __future__ import annotations

import json
import time

import pytest

from flink_helpers import (
    ChatProducer, assert_retry_schedule, clip_requests, create_topic, delete_topic, detection_rows, epoch_ms, rows,
    sim_settings, wait_for, write_token_file,
)
from streamscout.detector import submit as jobs

pytestmark = pytest.mark.integration

A, B, C, D = 130001, 130002, 130003, 130004
RATE = 10  # messages per 1 s bucket (8 of them chat, 2 commands)
BURSTS = {(A, 25): 120, (B, 25): 120, (D, 40): 120, (A, 50): 120}
SCENARIO = {
    "name": "detector-it",
    "channels": [
        {"login": "chan_a", "id": str(A)},
        {"login": "chan_b", "id": str(B), "clipping": False},
        {"login": "chan_c", "id": str(C)},
        {"login": "chan_d", "id": str(D)},
    ],
}
MALFORMED = [b"{not json", json.dumps({"broadcaster_id": "abc", "timestamp": 1, "text": "x"}).encode(),
             json.dumps({"timestamp": 5, "text": "no broadcaster"}).encode(), b"[]", b""]


@pytest.fixture(scope="module")
def run(settings, postgres_dsn, tmp_path_factory):
    from streamscout.sim import start_simulator

    sim = start_simulator(SCENARIO, clip_delay=1.0)
    token_file = write_token_file(sim, tmp_path_factory.mktemp("tokens") / "tokens.json")
    s = sim_settings(
        settings, sim, token_file, postgres_dsn,
        detector_bucket_seconds=1.0, detector_baseline_buckets=20, detector_cooldown_seconds=10.0,
        detector_min_excess=3.0, detector_out_of_orderness_seconds=0.5, detector_checkpoint_seconds=5.0,
    )
    assert jobs.active_job(s) is None, "another detector job runs on the cluster; cancel it first"
    create_topic(s)
    producer = None
    try:
        job, submitted = jobs.submit(s, startup="earliest", resume=False)
        assert submitted and job.state == "RUNNING"
        producer = ChatProducer(s, {A: RATE, B: RATE, C: RATE, D: RATE}, BURSTS, 1000, extra=MALFORMED)
        producer.start()
        # D's detection is recorded after A's and B's first creates and 10 s before its own (and
        # A's second burst comes after D's retries): make the next two creates fail.
        wait_for("D's detection", lambda: rows(postgres_dsn, "SELECT 1 FROM detections WHERE broadcaster_id = %s", D), 90)
        assert len(sim.ground_truth()["clip_requests"]) == 2, "A's and B's creates should be done by now"
        sim.inject_fault(type="status", status=503, path="/helix/clips", method="POST", count=2)
        wait_for(
            "every clip finished",
            lambda: len(rows(postgres_dsn, "SELECT 1 FROM detections WHERE state IN ('stored', 'failed')")) >= 4,
            120,
        )
        time.sleep(3)  # anything extra (a duplicate) would show up now
        yield {"settings": s, "sim": sim, "dsn": postgres_dsn, "job": job, "producer": producer,
               "truth": sim.ground_truth()}
    finally:
        if producer is not None:
            producer.stop()
        jobs.cancel(s)
        sim.stop()
        delete_topic(s)


def detections(run, broadcaster):
    return detection_rows(run["dsn"], broadcaster)


def requests(run, broadcaster):
    return clip_requests(run["truth"], broadcaster)


def test_each_burst_yields_exactly_one_stored_clip(run):
    found = detections(run, A)
    producer = run["producer"]
    assert [epoch_ms(d[0]) for d in found] == [producer.bucket_start(25), producer.bucket_start(50)]
    assert [d[2] for d in found] == ["stored", "stored"]
    assert [d[6] for d in found] == [96, 96]  # 120 messages, every fifth a command
    stored = rows(run["dsn"], "SELECT clip_id, detected_at, score FROM clips WHERE broadcaster_id = %s ORDER BY detected_at", A)
    assert [c[0] for c in stored] == [d[3] for d in found]
    assert [c[1] for c in stored] == [d[1] for d in found]
    assert all(c[2] > 3 for c in stored)
    assert len(requests(run, A)) == 2 and {r["status"] for r in requests(run, A)} == {202}


def test_create_clip_arrives_ten_seconds_after_detection(run):
    for broadcaster in (A, B):
        for detection, request in zip(detections(run, broadcaster), requests(run, broadcaster), strict=True):
            delay = request["arrived_ms"] - epoch_ms(detection[1])
            assert 9_500 <= delay <= 10_500, (broadcaster, delay)


def test_transient_errors_are_retried_at_two_and_four_seconds(run):
    (detection,) = detections(run, D)
    attempts = requests(run, D)
    assert [a["status"] for a in attempts] == [503, 503, 202]
    assert_retry_schedule(attempts, detection[1])
    assert detection[2:4] == ("stored", attempts[2]["clip_id"]) and detection[5] == 3


def test_channel_refusing_clips_is_marked(run):
    (detection,) = detections(run, B)
    assert detection[2] == "failed" and detection[4] == "clipping_disabled"
    assert [r["status"] for r in requests(run, B)] == [403]
    (streamer,) = rows(run["dsn"], "SELECT allows_clipping, clipping_refused_at FROM streamers WHERE broadcaster_id = %s", B)
    assert streamer[0] is False and streamer[1] is not None


def test_steady_chat_yields_no_clip(run):
    assert detections(run, C) == [] and requests(run, C) == []


def test_malformed_records_do_not_stop_the_job(run):
    assert jobs.active_job(run["settings"]).id == run["job"].id


def test_submitting_again_is_a_no_op(run):
    job, submitted = jobs.submit(run["settings"], startup="earliest", resume=False)
    assert (job.id, submitted) == (run["job"].id, False)
    assert [j.id for j in jobs.jobs(run["settings"]) if j.state in jobs.ACTIVE_STATES] == [run["job"].id]
