"""Cancel the job while a clip is pending and submit again: the job resumes from the retained
checkpoint (baselines kept: no second warm-up) and the pending clip is created exactly once."""

from __future__ import annotations

import time

import pytest

from flink_helpers import ChatProducer, create_topic, delete_topic, rows, sim_settings, wait_for, write_token_file
from streamscout.detector import submit as jobs

pytestmark = pytest.mark.integration

A, C = 150001, 150003
SCENARIO = {"name": "detector-resume", "channels": [{"login": "chan_a", "id": str(A)}, {"login": "chan_c", "id": str(C)}]}


def test_resubmitted_job_keeps_state_and_the_pending_clip(settings, sim, postgres_dsn, tmp_path):
    twitch = sim(SCENARIO, clip_delay=1.0)
    s = sim_settings(
        settings, twitch, write_token_file(twitch, tmp_path / "tokens.json"), postgres_dsn,
        detector_bucket_seconds=1.0, detector_baseline_buckets=20, detector_cooldown_seconds=10.0,
        detector_min_excess=3.0, detector_out_of_orderness_seconds=0.5, detector_checkpoint_seconds=2.0,
    )
    create_topic(s)
    producer = ChatProducer(s, {A: 10, C: 10}, {(A, 25): 120, (A, 75): 120}, 1000)
    try:
        first, _ = jobs.submit(s, startup="earliest", resume=False)
        producer.start()
        wait_for("the first detection", lambda: rows(postgres_dsn, "SELECT 1 FROM detections WHERE state = 'pending'"), 90)
        time.sleep(2.5)  # let a checkpoint hold the pending clip
        assert jobs.cancel(s) == [first.id]
        assert jobs.latest_checkpoint(s) is not None
        second, submitted = jobs.submit(s, startup="earliest")
        assert submitted and second.id != first.id
        assert (jobs.status(s)["job"]["restored"] or 0) >= 1
        wait_for(
            "both clips stored",
            lambda: len(rows(postgres_dsn, "SELECT 1 FROM detections WHERE state = 'stored'")) == 2,
            120,
        )
        time.sleep(3)
        truth = twitch.ground_truth()
    finally:
        producer.stop()
        jobs.cancel(s)
        delete_topic(s)
    found = rows(postgres_dsn, "SELECT bucket_start, state FROM detections WHERE broadcaster_id = %s ORDER BY 1", A)
    assert [state for _, state in found] == ["stored", "stored"]
    assert [r["status"] for r in truth["clip_requests"]] == [202, 202]  # one create per detection
    assert rows(postgres_dsn, "SELECT count(*) FROM clips")[0][0] == 2
    assert rows(postgres_dsn, "SELECT count(*) FROM detections WHERE broadcaster_id = %s", C)[0][0] == 0
