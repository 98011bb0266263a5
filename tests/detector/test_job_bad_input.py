"""Bad input, end to end (issue 10): the clip detector on the real stack (Kafka -> Flink standalone
cluster -> the simulated Twitch -> Postgres) fed 10,000 fuzzed records, with Helix answering
garbage and hanging.

One scenario drives every assertion (the job takes ~15 s to start, so it runs once per module),
with 1 s buckets and a 20-bucket baseline:

* steady chat on A, C, D, E, F (10 messages per bucket) from bucket 0;
* 10,000 seeded fuzzed records spread over buckets 3..28 on both partitions (random bytes, invalid
  UTF-8, JSON of the wrong types, missing fields, ~1 MB texts, negative / year-3000 / 64-bit-edge
  timestamps, NaN and Infinity, deep nesting, truncated records). A bursts at bucket 25, in the
  middle of the fuzz;
* D bursts at 43: its first two Create Clip calls get garbage JSON (retried at +2 s/+4 s), then
  its first two Get Clips look-ups get garbage (looked up again per the fetch schedule);
* E bursts at 61: its first two Create Clip calls hang (the client times out after
  ``http_timeout_seconds`` = 1.5 s, so the retries still come at +2 s/+4 s), then one Get Clips
  look-up hangs;
* F bursts at 79: all three Create Clip calls get garbage -> ``failed``/``retries_exhausted``.

Faults of the simulator match path and method, not the channel, so each one is injected when its
channel's detection (or created clip) shows up in Postgres and nothing else calls that endpoint
until it is used up.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import urllib.request
import uuid

import pytest
from kafka import KafkaProducer

from flink_helpers import (
    ChatProducer, assert_retry_schedule, clip_requests, create_topic, delete_topic, detection_rows, epoch_ms, rows,
    sim_settings, wait_for, write_token_file,
)
from streamscout.detector import submit as jobs

pytestmark = pytest.mark.integration

A, C, D, E, F = 140001, 140003, 140004, 140005, 140006
REAL = {A, C, D, E, F}
RATE = 10  # messages per 1 s bucket (8 chat, 2 commands)
BURSTS = {(A, 25): 120, (D, 43): 120, (E, 61): 120, (F, 79): 120}
SCENARIO = {
    "name": "detector-bad-input",
    "channels": [{"login": f"chan_{c}", "id": str(c)} for c in sorted(REAL)],
}
FUZZ_TOTAL = 10_000
FUZZ_BUCKETS = range(3, 28)  # the fuzz flows while A's baseline fills and A bursts (bucket 25)
HUGE = 12  # records with a ~1 MB text (Kafka's default limit is 1 MiB per record)
FETCH_OFFSETS = (3, 6, 9)  # seconds after the create (the default 15/30/60 only costs wall time)
YEAR_3000_MS = 32_503_680_000_000
LONG_MAX, LONG_MIN = 2**63 - 1, -(2**63)
NOW_PLACEHOLDER = 4_242_424_242_424  # 13 digits like a current epoch-ms; replaced at send time
NOW_BYTES = str(NOW_PLACEHOLDER).encode()


# --- the fuzz ------------------------------------------------------------------------------
def fuzz_records(rng: random.Random, n: int, now_ms) -> list[tuple[str, bytes]]:
    """``n`` (kind, value) pairs. ``now_ms()`` gives the plausible timestamp of records whose point
    is another defect. Kinds ``malformed`` (a JSON object with a plausible timestamp and a usable
    broadcaster id but no message id / text, or no broadcaster at all) and ``implausible_ts`` (an
    otherwise valid chat record with a timestamp that is negative or far in the future) are the
    ones whose fate the job is specified for; the rest must only not hurt."""

    def other_id() -> int:  # never one of the real channels; a fresh key each time (no baseline)
        return rng.randrange(10**9, 10**12)

    def chat(**fields) -> dict:
        record = {"broadcaster_id": other_id(), "timestamp": now_ms(), "message_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                  "text": "fuzz", "user_id": rng.randrange(10**6), "user_name": "fuzzer",
                  "metadata": {"emotes": {}, "badges": {}, "is_subscriber": False, "is_mod": False}}
        record.update(fields)
        return {k: v for k, v in record.items() if v is not _DROP}

    def dumps(record) -> bytes:
        return json.dumps(record, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")

    def random_bytes():
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))

    def bad_utf8():
        text = dumps(chat(text="INVALIDUTF8"))
        return text.replace(b"INVALIDUTF8", bytes(rng.choice([0x80, 0xC3, 0xFF, 0xFE, 0xED]) for _ in range(8)))

    def not_object():
        return rng.choice([b"[]", b"null", b"true", b"123", b'"text"', b"{}", b"", b" ", b"[{}]",
                           json.dumps([chat()]).encode()])

    def wrong_types():
        field = rng.choice(["broadcaster_id", "timestamp", "message_id", "text", "event", "metadata"])
        value = rng.choice(["abc", "", {"id": 1}, [1, 2], True, None, 1.5e300, 10**30, -(10**30), "12.5x",
                            {"type": "raid"}, "raid", 3.7, [], {}])
        return dumps(chat(**{field: value}))

    def malformed():
        missing = rng.choice(["broadcaster_id", "message_id", "text", "broadcaster_null", "message_null", "text_null"])
        if missing.endswith("_null"):
            name = {"broadcaster_null": "broadcaster_id", "message_null": "message_id", "text_null": "text"}[missing]
            return dumps(chat(**{name: None}))
        return dumps(chat(**{missing: _DROP}))

    def implausible_ts():
        ts = rng.choice([-1, -1_000, -1_700_000_000_000, LONG_MIN, YEAR_3000_MS, YEAR_3000_MS + rng.randrange(10**9),
                         LONG_MAX, 10**18, int(time.time() * 1000) + 86_400_000 * 365])
        return dumps(chat(timestamp=ts))

    def weird_numbers():
        literal = rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "-0", "0x10", "1_000", "9223372036854775808",
                              "-9223372036854775809", "1.7e12", "00017"])
        field = rng.choice(["broadcaster_id", "timestamp"])
        return dumps(chat(**{field: "@@N@@"})).replace(b'"@@N@@"', literal.encode())

    def nested():
        depth = rng.choice([10, 100, 2_000, 50_000])
        inner = "[" * depth + "]" * depth
        if rng.random() < 0.5:
            return dumps(chat(text="@@N@@")).replace(b'"@@N@@"', inner.encode())
        return ('{"broadcaster_id":' + '{"a":' * depth + "1" + "}" * depth + "}").encode()

    def truncated():
        data = dumps(chat())
        return data[: rng.randrange(1, len(data))]

    def duplicate_keys():
        data = dumps(chat())
        return data[:-1] + b', "broadcaster_id": "x", "timestamp": -5, "text": null}'

    weighted = [(random_bytes, 14), (bad_utf8, 8), (not_object, 6), (wrong_types, 18), (malformed, 14),
                (implausible_ts, 12), (weird_numbers, 10), (nested, 4), (truncated, 8), (duplicate_keys, 6)]
    makers, weights = zip(*weighted)
    out: list[tuple[str, bytes]] = []
    for i in range(n - HUGE):
        maker = rng.choices(makers, weights)[0]
        out.append((maker.__name__, maker()))
    for i in range(HUGE):  # ~1 MB: ASCII, multi-byte UTF-8, and a huge *valid-looking* chat message
        body = rng.choice(["x" * 1_000_000, "é" * 450_000, "!" + "a" * 999_000])
        out.append(("huge", json.dumps(chat(text=body), ensure_ascii=False).encode()))
    rng.shuffle(out)
    return out


_DROP = object()


class FuzzProducer(threading.Thread):
    """Sends the fuzz spread over ``FUZZ_BUCKETS`` of ``chat`` (so it flows with steady chat and
    A's burst), alternating partitions, without keys; plausible timestamps are the wall clock."""

    def __init__(self, settings, chat: ChatProducer, seed: int = 10) -> None:
        super().__init__(daemon=True)
        self.settings, self.chat = settings, chat
        self.rng = random.Random(seed)
        # Plausible timestamps are filled in when the record is sent (they must be "now").
        self.records = fuzz_records(self.rng, FUZZ_TOTAL, lambda: NOW_PLACEHOLDER)
        self.sent = 0
        self.kinds: dict[str, int] = {}
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        producer = None
        try:
            producer = KafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, linger_ms=5,
                                     max_request_size=1_048_576)
            while self.chat.start_bucket_ms is None:
                time.sleep(0.05)
            chunks = len(FUZZ_BUCKETS)
            per = -(-len(self.records) // chunks)
            for n, index in enumerate(FUZZ_BUCKETS):
                delay = (self.chat.bucket_start(index) + 300) / 1000 - time.time()
                if delay > 0:
                    time.sleep(delay)
                for kind, value in self.records[n * per:(n + 1) * per]:
                    value = value.replace(NOW_BYTES, str(int(time.time() * 1000)).encode())
                    producer.send(self.settings.topic_chat, value, partition=self.sent % 2)
                    self.sent += 1
                    self.kinds[kind] = self.kinds.get(kind, 0) + 1
                producer.flush()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            if producer is not None:
                producer.close()
            self.done.set()


# --- reading the job's health and metrics --------------------------------------------------
def rest(s, path):
    with urllib.request.urlopen(s.flink_rest_url.rstrip("/") + path, timeout=10) as response:
        return json.loads(response.read())


def job_metric(s, job_id: str, name: str, timeout: float = 30.0):
    """A job metric through Flink's REST API, or None. The JobManager fills its metric store
    asynchronously when asked, so the first answers for a job can be empty: ask until it is there."""
    deadline = time.monotonic() + timeout
    while True:
        values = {m["id"]: m["value"] for m in rest(s, f"/jobs/{job_id}/metrics?get={name}")}
        if name in values or time.monotonic() > deadline:
            return values.get(name)
        time.sleep(1)


_SAMPLE = re.compile(r"^(\w+)\{(.*)\}\s+(\S+)$")


def tm_metrics(s, job_id: str) -> dict[str, float]:
    """The TaskManager's Prometheus reporter, this job's samples summed per metric name (and per
    ``operator_name``/``reason`` as ``name@label``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{s.flink_taskmanager_metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    sums: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or f'job_id="{job_id}"' not in match.group(2):
            continue
        name, labels, value = match.groups()
        name = name.removeprefix("flink_taskmanager_job_task_operator_")
        try:
            number = float(value)
        except ValueError:
            continue
        sums[name] = sums.get(name, 0.0) + number
        for label in ("operator_name", "reason"):
            found = re.search(label + r'="([^"]*)"', labels)
            if found:
                key = f"{name}@{found.group(1)}"
                sums[key] = sums.get(key, 0.0) + number
    return sums


class FaultLog(logging.Handler):
    """The simulator's ``fault injected`` log records (it runs in this process): when each faulted
    Helix request arrived, including Get Clips, which its ground truth does not list."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.entries: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "fault injected":
            self.entries.append({"ms": record.created * 1000, "fault": getattr(record, "fault", None),
                                 "method": getattr(record, "method", None), "path": getattr(record, "path", None)})


# --- the scenario ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(settings, postgres_dsn, tmp_path_factory):
    from streamscout.sim import start_simulator

    sim = start_simulator(SCENARIO, clip_delay=1.0)
    faults = FaultLog()
    world_log = logging.getLogger("streamscout.sim.world")
    world_log.addHandler(faults)
    old_level = world_log.level
    world_log.setLevel(logging.INFO)
    token_file = write_token_file(sim, tmp_path_factory.mktemp("tokens") / "tokens.json")
    s = sim_settings(
        settings, sim, token_file, postgres_dsn,
        detector_bucket_seconds=1.0, detector_baseline_buckets=20, detector_cooldown_seconds=10.0,
        detector_min_excess=3.0, detector_out_of_orderness_seconds=0.5, detector_checkpoint_seconds=5.0,
        detector_fetch_offsets=",".join(str(o) for o in FETCH_OFFSETS), http_timeout_seconds=1.5,
    )
    assert jobs.active_job(s) is None, "another detector job runs on the cluster; cancel it first"
    create_topic(s)
    producer = fuzz = None
    started = time.monotonic()
    try:
        job, submitted = jobs.submit(s, startup="earliest", resume=False)
        assert submitted and job.state == "RUNNING"
        producer = ChatProducer(s, {c: RATE for c in sorted(REAL)}, BURSTS, 1000)
        fuzz = FuzzProducer(s, producer)
        producer.start()
        fuzz.start()

        def detection(channel):
            return lambda: rows(postgres_dsn, "SELECT state FROM detections WHERE broadcaster_id = %s", channel)

        def state(channel, *states):
            return lambda: rows(postgres_dsn, "SELECT 1 FROM detections WHERE broadcaster_id = %s AND state = ANY(%s)",
                                channel, list(states))

        wait_for("A's detection (after the fuzz started)", detection(A), 90)
        wait_for("D's detection", detection(D), 60)
        assert {r["broadcaster_id"] for r in sim.ground_truth()["clip_requests"]} == {str(A)}
        sim.inject_fault(type="garbage", path="/helix/clips", method="POST", count=2)
        wait_for("D's clip created", state(D, "created", "stored", "failed"), 30)
        sim.inject_fault(type="garbage", path="/helix/clips", method="GET", count=2)
        wait_for("E's detection", detection(E), 60)
        sim.inject_fault(type="hang", path="/helix/clips", method="POST", count=2)
        wait_for("E's clip created", state(E, "created", "stored", "failed"), 30)
        sim.inject_fault(type="hang", path="/helix/clips", method="GET", count=1)
        wait_for("F's detection", detection(F), 60)
        sim.inject_fault(type="garbage", path="/helix/clips", method="POST", count=3)
        wait_for("every clip finished", lambda: len(rows(
            postgres_dsn, "SELECT 1 FROM detections WHERE broadcaster_id = ANY(%s) AND state IN ('stored', 'failed')",
            [A, D, E, F])) >= 4, 60)
        time.sleep(3)  # anything extra (a duplicate) would show up now
        assert fuzz.done.wait(5) and fuzz.error is None, fuzz.error
        metrics = tm_metrics(s, job.id)
        print("\nfuzz kinds", fuzz.kinds, {k: int(v) for k, v in metrics.items() if re.search(
            r"^(streamscout_malformed_records|streamscout_messages_processed|numLateRecordsDropped|"
            r"numRecords(In|Out)@Source.*)$", k)})
        yield {"settings": s, "sim": sim, "dsn": postgres_dsn, "job": job, "producer": producer, "fuzz": fuzz,
               "truth": sim.ground_truth(), "faults": list(faults.entries), "metrics": metrics}
    except BaseException:
        diagnose(s, fuzz)
        raise
    finally:
        print(f"\nbad-input scenario: {time.monotonic() - started:.0f} s")
        if producer is not None:
            producer.stop()
        jobs.cancel(s)
        world_log.removeHandler(faults)
        world_log.setLevel(old_level)
        sim.stop()
        delete_topic(s)


def diagnose(s, fuzz) -> None:
    """What a failed scenario looked like from Flink's side (printed with -s)."""
    try:
        job = jobs.jobs(s)[0]
        print(f"\njob {job.id} {rest(s, f'/jobs/{job.id}')['state']}", rest(s, f"/jobs/{job.id}/metrics?get=numRestarts"))
        for entry in rest(s, f"/jobs/{job.id}/exceptions").get("exceptionHistory", {}).get("entries", [])[:3]:
            print("exception:", entry.get("exceptionName"), (entry.get("stacktrace") or "")[:1500])
        metrics = tm_metrics(s, job.id)
        for key in sorted(metrics):
            if re.search(r"Watermark@|numLateRecordsDropped|streamscout_|numRecordsIn@|numRecordsOut@", key):
                print(f"  {key} = {metrics[key]:.0f}")
        print("now ms", int(time.time() * 1000), "fuzz", fuzz and (fuzz.sent, fuzz.kinds, fuzz.error))
    except Exception as exc:  # diagnostics only
        print("diagnostics failed:", exc)


def detections(run, broadcaster):
    return detection_rows(run["dsn"], broadcaster)


def requests(run, broadcaster):
    return clip_requests(run["truth"], broadcaster)


# --- the job survives and counts -----------------------------------------------------------
def test_job_keeps_running_without_a_restart(run):
    s, job = run["settings"], run["job"]
    assert jobs.active_job(s).id == job.id
    assert rest(s, f"/jobs/{job.id}")["state"] == "RUNNING"
    assert job_metric(s, job.id, "numRestarts") in ("0", 0)
    history = rest(s, f"/jobs/{job.id}/exceptions").get("exceptionHistory", {}).get("entries", [])
    assert history == [], [e.get("exceptionName") for e in history]


def test_every_fuzzed_record_was_sent_and_read(run):
    fuzz, producer, metrics = run["fuzz"], run["producer"], run["metrics"]
    assert fuzz.sent == FUZZ_TOTAL and fuzz.kinds["huge"] == HUGE
    source_in = sum(v for k, v in metrics.items() if k.startswith("numRecordsIn@Source"))
    # The Kafka source read every record, fuzz included (steady chat keeps coming meanwhile).
    assert source_in >= FUZZ_TOTAL + producer.sent - 200, (source_in, FUZZ_TOTAL, producer.sent)


def test_malformed_records_are_counted(run):
    metrics, fuzz = run["metrics"], run["fuzz"]
    malformed = metrics.get("streamscout_malformed_records", 0)
    # Every JSON object with a plausible timestamp and no broadcaster / message id / text is
    # counted as malformed; valid chat never is.
    assert fuzz.kinds["malformed"] <= malformed <= FUZZ_TOTAL, (malformed, fuzz.kinds)


def test_implausible_timestamps_are_dropped_not_trusted(run):
    metrics, fuzz = run["metrics"], run["fuzz"]
    late = metrics.get("numLateRecordsDropped", 0)
    assert late >= fuzz.kinds["implausible_ts"], (late, fuzz.kinds)
    # The event-time clock (watermark) of the window never ran ahead of the wall clock.
    watermarks = [v for k, v in metrics.items() if k.startswith("currentInputWatermark@")]
    assert watermarks and max(watermarks) <= time.time() * 1000 + 60_000, watermarks


def test_no_detection_outside_the_real_bursts(run):
    others = rows(run["dsn"], "SELECT broadcaster_id, bucket_start FROM detections WHERE broadcaster_id <> ALL(%s)",
                  list(REAL))
    assert others == []
    assert detections(run, C) == [] and requests(run, C) == []


def test_burst_amid_the_fuzz_yields_exactly_one_clip(run):
    (detection,) = detections(run, A)
    assert epoch_ms(detection[0]) == run["producer"].bucket_start(25)
    assert detection[2] == "stored" and detection[6] == 96  # 120 messages, every fifth a command
    assert [r["status"] for r in requests(run, A)] == [202]
    stored = rows(run["dsn"], "SELECT clip_id FROM clips WHERE broadcaster_id = %s", A)
    assert stored == [(detection[3],)]


# --- Helix misbehaving ------------------------------------------------------------------------
def test_garbage_create_answers_are_retried_at_two_and_four_seconds(run):
    (detection,) = detections(run, D)
    attempts = requests(run, D)
    assert [(a["status"], a["outcome"]) for a in attempts][:2] == [(0, "fault:garbage")] * 2
    assert [a["status"] for a in attempts] == [0, 0, 202]
    assert_retry_schedule(attempts, detection[1])
    assert detection[2:4] == ("stored", attempts[2]["clip_id"]) and detection[5] == 3


def test_garbage_get_clips_answers_are_looked_up_again_per_schedule(run):
    (detection,) = detections(run, D)
    created = requests(run, D)[2]["arrived_ms"]
    gets = [f["ms"] - created for f in run["faults"] if f["method"] == "GET" and f["fault"] == "garbage"]
    assert len(gets) == 2
    for got, offset in zip(gets, FETCH_OFFSETS):
        assert abs(got - offset * 1000) <= 600, gets
    # Stored by the third look-up.
    assert abs(epoch_ms(detection[7]) - created - FETCH_OFFSETS[2] * 1000) <= 1_000
    assert rows(run["dsn"], "SELECT clip_id FROM clips WHERE broadcaster_id = %s", D) == [(detection[3],)]


def test_hanging_create_calls_time_out_and_are_retried_at_two_and_four_seconds(run):
    (detection,) = detections(run, E)
    attempts = requests(run, E)
    assert [(a["status"], a["outcome"]) for a in attempts] == [(0, "fault:hang"), (0, "fault:hang"), (202, "created")] \
        or [a["status"] for a in attempts] == [0, 0, 202], attempts
    assert_retry_schedule(attempts, detection[1])
    assert detection[2:4] == ("stored", attempts[2]["clip_id"]) and detection[5] == 3


def test_hanging_get_clips_times_out_and_is_looked_up_again(run):
    (detection,) = detections(run, E)
    created = requests(run, E)[2]["arrived_ms"]
    gets = [f["ms"] - created for f in run["faults"] if f["method"] == "GET" and f["fault"] == "hang"]
    assert len(gets) == 1 and abs(gets[0] - FETCH_OFFSETS[0] * 1000) <= 600, gets
    assert abs(epoch_ms(detection[7]) - created - FETCH_OFFSETS[1] * 1000) <= 1_000
    assert rows(run["dsn"], "SELECT clip_id FROM clips WHERE broadcaster_id = %s", E) == [(detection[3],)]


def test_create_failing_every_attempt_is_marked_failed(run):
    (detection,) = detections(run, F)
    attempts = requests(run, F)
    assert [(a["status"], a["outcome"]) for a in attempts] == [(0, "fault:garbage")] * 3
    assert_retry_schedule(attempts, detection[1])
    assert detection[2] == "failed" and detection[4] == "retries_exhausted" and detection[5] == 3
    assert rows(run["dsn"], "SELECT 1 FROM clips WHERE broadcaster_id = %s", F) == []
    assert run["metrics"].get("streamscout_reason_clip_failures@retries_exhausted", 0) >= 1
