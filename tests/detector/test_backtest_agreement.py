"""The Flink job and the backtest's statistics agree exactly on a real recording.

The xqcow IRC transcript is turned into ``chat-messages`` records by the monitor's own parser,
replayed into Kafka with its original timestamps and judged by the job on the cluster; the same
records, bucketed and filtered in Python (``bucket_start_ms``, ``is_command``), are fed to a
``SpikeDetector``. Both must find the same buckets with the same counts and scores.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import psycopg
import pytest
from kafka import KafkaProducer

from flink_helpers import create_topic, delete_topic, sim_settings, write_token_file
from streamscout.detector import submit as jobs
from streamscout.detector.stats import DetectorParams, SpikeDetector, bucket_start_ms, is_command

pytestmark = pytest.mark.integration

RECORDING = "go-twitch-irc/channel_xqcow_2019-09-15.irc.txt"
OVERRIDES = dict(
    detector_bucket_seconds=2.0, detector_baseline_buckets=30, detector_cooldown_seconds=10.0,
    detector_out_of_orderness_seconds=120.0,  # a replay: nothing may be dropped as late
)


def recorded_messages(path):
    from streamscout.monitor.irc import chat_record, parse_line

    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parsed = parse_line(line)
        if parsed and (parsed.get("command") or {}).get("command") == "PRIVMSG":
            record = chat_record(parsed, 0)
            if record is not None:
                records.append(record)
    return records


def reference(records, params):
    counts, seen = Counter(), set()
    for r in records:
        bucket = bucket_start_ms(r["timestamp"], params.bucket_ms)
        seen.add((r["broadcaster_id"], bucket))
        if not is_command(r["text"]):
            counts[(r["broadcaster_id"], bucket)] += 1
    detectors, found = {}, []
    for broadcaster, bucket in sorted(seen, key=lambda k: (k[0], k[1])):
        detector = detectors.setdefault(broadcaster, SpikeDetector(broadcaster, params))
        detection = detector.push(bucket, counts[(broadcaster, bucket)])
        if detection:
            found.append((broadcaster, bucket, detection.count, round(detection.score, 9)))
    return found


def test_job_and_backtest_find_the_same_spikes(settings, sim, datasets_dir, postgres_dsn, tmp_path):
    records = recorded_messages(datasets_dir / RECORDING)
    assert len(records) > 4000
    twitch = sim({"name": "agreement", "channels": [{"login": "someone", "id": "1"}]})
    s = sim_settings(settings, twitch, write_token_file(twitch, tmp_path / "tokens.json"), postgres_dsn, **OVERRIDES)
    expected = reference(records, DetectorParams.from_settings(s))
    assert len(expected) >= 3, "the recording should hold a few spikes under these settings"

    create_topic(s, partitions=1)
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=20)
    for r in records:
        producer.send(s.topic_chat, json.dumps(r).encode())
    # A later message of another channel moves the watermark past the recording's last bucket.
    last = max(r["timestamp"] for r in records)
    producer.send(s.topic_chat, json.dumps({"broadcaster_id": 1, "timestamp": last + 600_000, "text": "end"}).encode())
    producer.flush()
    producer.close()
    try:
        jobs.submit(s, startup="earliest", resume=False)
        deadline = time.monotonic() + 120
        found = []
        while time.monotonic() < deadline:
            with psycopg.connect(postgres_dsn) as conn:
                rows = conn.execute(
                    "SELECT broadcaster_id, (extract(epoch FROM bucket_start) * 1000)::bigint, message_count, score"
                    " FROM detections ORDER BY broadcaster_id, bucket_start"
                ).fetchall()
            found = [(b, t, c, round(score, 9)) for b, t, c, score in rows]
            if len(found) >= len(expected):
                break
            time.sleep(1)
        time.sleep(2)  # a surplus detection would appear now
    finally:
        jobs.cancel(s)
        delete_topic(s)
    assert found == expected
