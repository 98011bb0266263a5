"""Helpers of the detector's integration tests: a token file from the simulator, a unique Kafka
topic, a chat producer with exact per-bucket counts, and the job's submit/cancel."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from streamscout.auth.store import TokenFile, TokenStore


def write_token_file(sim, path: Path) -> Path:
    issued = sim.issue_user_token(["clips:edit", "chat:read"])
    now = datetime.now(timezone.utc)
    TokenStore(path).save(
        TokenFile(
            client_id=sim.info["client_id"], user_id=str(sim.info["bot_user_id"]), user_login=sim.info["bot_login"],
            scopes=tuple(issued["scopes"]), access_token=issued["access_token"],
            refresh_token=issued["refresh_token"], issued_at=now, obtained_at=now,
            expires_at=now + timedelta(seconds=issued["expires_in"] or 14400), version=0,
        )
    )
    return path


def sim_settings(settings, sim, token_file: Path, dsn: str, **overrides):
    return settings.with_overrides(
        token_file=str(token_file), twitch_helix_url=sim.info["helix_url"], twitch_auth_url=sim.info["auth_url"],
        twitch_client_id=sim.info["client_id"], twitch_client_secret=sim.info["client_secret"],
        postgres_dsn=dsn, topic_chat=f"test-chat-{uuid.uuid4().hex[:10]}", state_dir=settings.state_dir.resolve(),
        **overrides,
    )


def create_topic(settings, partitions: int = 2) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="detector-tests")
    try:
        admin.create_topics([NewTopic(settings.topic_chat, partitions, 1)])
    finally:
        admin.close()


def delete_topic(settings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="detector-tests")
    try:
        admin.delete_topics([settings.topic_chat])
    except Exception:  # cleanup only
        pass
    finally:
        admin.close()


class ChatProducer(threading.Thread):
    """Produces chat in real time with exact counts per bucket: ``rate`` messages per bucket for
    every channel, ``bursts[(channel, bucket_index)]`` messages in a burst bucket. Timestamps are
    spread inside the bucket, so each bucket's count is known exactly (steady chat has sigma 0)."""

    def __init__(self, settings, channels: dict[int, int], bursts: dict[tuple[int, int], int],
                 bucket_ms: int, extra: list[bytes] = (), realtime: bool = False) -> None:
        super().__init__(daemon=True)
        self.realtime = realtime  # send each message at its own timestamp, not the bucket's batch at its start
        self.settings, self.channels, self.bursts, self.bucket_ms = settings, channels, bursts, bucket_ms
        self.extra = list(extra)
        self.stop_event = threading.Event()
        self.start_bucket_ms: int | None = None
        self.sent = 0

    def bucket_start(self, index: int) -> int:
        return self.start_bucket_ms + index * self.bucket_ms

    def run(self) -> None:
        producer = KafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, linger_ms=5)
        now = int(time.time() * 1000)
        self.start_bucket_ms = now - now % self.bucket_ms + self.bucket_ms
        index = 0
        try:
            while not self.stop_event.is_set():
                start = self.bucket_start(index)
                delay = start / 1000 - time.time()
                if delay > 0:
                    time.sleep(delay)
                batch = []
                for channel, rate in self.channels.items():
                    n = self.bursts.get((channel, index), rate)
                    for i in range(n):
                        batch.append({
                            "broadcaster_id": channel, "timestamp": start + i * (self.bucket_ms - 1) // max(n, 1),
                            "message_id": uuid.uuid4().hex, "text": "!hype" if i % 5 == 4 else f"msg {i}",
                            "user_id": 1000 + i, "user_name": f"viewer{i}",
                            "metadata": {"emotes": {}, "badges": {}, "is_subscriber": False, "is_mod": False},
                        })
                for record in sorted(batch, key=lambda r: r["timestamp"]):
                    if self.realtime:
                        delay = record["timestamp"] / 1000 - time.time()
                        if delay > 0.002:
                            producer.flush()
                            time.sleep(delay)
                    key = str(record["broadcaster_id"]).encode()
                    producer.send(self.settings.topic_chat, json.dumps(record).encode(), key=key)
                    self.sent += 1
                if self.extra and index == 3:
                    for raw in self.extra:
                        producer.send(self.settings.topic_chat, raw)
                producer.flush()
                index += 1
        finally:
            producer.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)


def rows(dsn, sql, *params):
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


def detection_rows(dsn, broadcaster):
    """(bucket_start, detected_at, state, clip_id, failure_reason, create_attempts, message_count,
    updated_at) per detection of one broadcaster, oldest bucket first."""
    return rows(
        dsn,
        "SELECT bucket_start, detected_at, state, clip_id, failure_reason, create_attempts, message_count, updated_at"
        " FROM detections WHERE broadcaster_id = %s ORDER BY bucket_start",
        broadcaster,
    )


def clip_requests(truth, broadcaster):
    """The simulator's recorded Create Clip calls for one broadcaster, in arrival order."""
    return [r for r in truth["clip_requests"] if r["broadcaster_id"] == str(broadcaster)]


def epoch_ms(ts: datetime) -> float:
    """A naive UTC timestamp from Postgres as epoch milliseconds."""
    return ts.replace(tzinfo=timezone.utc).timestamp() * 1000


def assert_retry_schedule(attempts, detected_at) -> None:
    """Create Clip 10 s after the detection, retries 2 s and 4 s after the first attempt (± 0.5 s)."""
    first = attempts[0]["arrived_ms"]
    assert 9_500 <= first - epoch_ms(detected_at) <= 10_500
    assert 1_500 <= attempts[1]["arrived_ms"] - first <= 2_500
    assert 3_500 <= attempts[2]["arrived_ms"] - first <= 4_500


def wait_for(what, predicate, timeout):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
