"""Runs `streamscout demo` as a user would, on its own ports, topics and database, and scores it.

The pipeline under test is the real one: the simulator (standing in for Twitch only), the
monitor and the API as supervised processes, Kafka, the Flink job on the standalone cluster and
Postgres. A run is scored against the simulator's ground truth.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Iterator

import psycopg
import yaml

from streamscout.common.config import load_settings
from streamscout.common.db import migrate

from conftest import REPO_ROOT, free_port, _with_database


@contextlib.contextmanager
def fresh_database(admin_dsn: str) -> Iterator[str]:
    """A new, migrated database for one demo run, dropped afterwards.

    Each run needs its own: the demo's state lives in Postgres, and a run that inherits another
    run's rows is a different scenario. (The spec-timings run used to share its module's
    database with the short run, whose 403 had already set ``allows_clipping = false`` for
    ``e2e_noclip``: the monitor never joined that channel, so its burst was never seen.)"""
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_database(admin_dsn, name)
    try:
        migrate(dsn)
        yield dsn
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


DEMO_LOGS = REPO_ROOT / "var" / "demo" / "logs"


def http_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def write_scenario(path: Path, channels: list[dict], events: list[dict], seed: int = 7) -> Path:
    path.write_text(yaml.safe_dump({"name": path.stem, "seed": seed, "channels": channels, "events": events}))
    return path


@dataclass
class DemoRun:
    """One `streamscout demo` process with everything it needs to be scored."""

    process: subprocess.Popen
    env: dict[str, str]
    sim_url: str
    api_url: str
    monitor_url: str
    dsn: str
    output: Path
    log_offsets: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(cls, scenario: Path, dsn: str, output: Path, **settings: str) -> "DemoRun":
        suffix = uuid.uuid4().hex[:8]
        sim_port, api_port, monitor_port = free_port(), free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSCOUT_")}
        env.update({
            "STREAMSCOUT_POSTGRES_DSN": dsn,
            "STREAMSCOUT_SIM_PORT": str(sim_port),
            "STREAMSCOUT_API_PORT": str(api_port),
            "STREAMSCOUT_MONITOR_PORT": str(monitor_port),
            "STREAMSCOUT_TOPIC_CHAT": f"e2e-chat-{suffix}",
            "STREAMSCOUT_TOPIC_LIFECYCLE": f"e2e-lifecycle-{suffix}",
        })
        env.update({f"STREAMSCOUT_{k.upper()}": str(v) for k, v in settings.items()})
        output.mkdir(parents=True, exist_ok=True)
        # the supervised processes append to var/demo/logs; remember where this run starts
        offsets = {log.name: log.stat().st_size for log in DEMO_LOGS.glob("*.log")}
        log = open(output / "demo.log", "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "streamscout", "demo", "--scenario", str(scenario), "--keep-stack"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        run = cls(process, env, f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{api_port}",
                  f"http://127.0.0.1:{monitor_port}", dsn, output, offsets)
        run.wait_until_running()
        return run

    def demo_output(self) -> str:
        return (self.output / "demo.log").read_text(errors="replace")

    def wait_until_running(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while "StreamScout is running" not in self.demo_output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"`streamscout demo` did not come up:\n{self.demo_output()[-4000:]}")
            time.sleep(1)

    def stop(self) -> None:
        """Ctrl-C, as a user would; the demo cancels the job and stops its processes."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # keep this run's part of the supervised processes' logs next to demo.log
        target = self.output / "logs"
        target.mkdir(exist_ok=True)
        for log in DEMO_LOGS.glob("*.log"):
            with open(log, "rb") as source:
                source.seek(self.log_offsets.get(log.name, 0))
                (target / log.name).write_bytes(source.read())

    def save_evidence(self, truth: dict, detections: list[dict], result: dict) -> None:
        """Keep what a run is scored on (the database is dropped after the test) next to its log."""
        evidence = {"ground_truth": truth, "detections": detections, "score": result}
        try:
            evidence["streamers"] = self.rows("SELECT broadcaster_id, streamer_login, allows_clipping FROM streamers")
        except psycopg.Error as exc:
            evidence["streamers"] = repr(exc)
        (self.output / "evidence.json").write_text(json.dumps(evidence, indent=1, default=str))

    def ground_truth(self) -> dict:
        return http_json(f"{self.sim_url}/sim/ground-truth")

    def rows(self, sql: str, *params) -> list[tuple]:
        with psycopg.connect(self.dsn, options="-c TimeZone=UTC") as conn:
            return conn.execute(sql, params).fetchall()

    def detections(self) -> list[dict]:
        rows = self.rows(
            "SELECT broadcaster_id, bucket_start, detected_at, state, clip_id, failure_reason, score "
            "FROM detections ORDER BY detected_at")
        keys = ("broadcaster_id", "bucket_start", "detected_at", "state", "clip_id", "failure_reason", "score")
        return [dict(zip(keys, row)) for row in rows]

    def detector_watermark_ms(self) -> int | None:
        """The event time up to which the job has judged every bucket (its detector operator's
        input watermark), or None while the job is not running."""
        flink = load_settings({}).flink_rest_url
        name = f"streamscout-clip-detector-{self.env['STREAMSCOUT_TOPIC_CHAT']}"
        try:
            jobs = http_json(f"{flink}/jobs/overview")["jobs"]
            job = next(j for j in jobs if j["name"] == name and j["state"] == "RUNNING")
            vertices = http_json(f"{flink}/jobs/{job['jid']}")["vertices"]
            vertex = next(v for v in vertices if "spikes-and-clips" in v["name"])
            marks = http_json(f"{flink}/jobs/{job['jid']}/vertices/{vertex['id']}/watermarks")
        except (OSError, StopIteration, KeyError, ValueError):
            return None
        values = [int(m["value"]) for m in marks if m["id"].endswith("currentInputWatermark")]
        return min(values) if values else None

    def wait_until_settled(self, judged_ms: int, timeout: float) -> list[dict]:
        """Wait (at most ``timeout`` seconds past ``judged_ms``) until the job has judged every
        bucket before ``judged_ms`` (event time) and no detection is still in flight. Waiting
        for the watermark rather than the clock keeps a slow, loaded machine from being scored
        before the job got there."""
        deadline = time.monotonic() + max(0.0, judged_ms / 1000 - time.time()) + timeout
        judged_at = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"`streamscout demo` exited:\n{self.demo_output()[-4000:]}")
            watermark = self.detector_watermark_ms()
            if judged_at is None and watermark is not None and watermark >= judged_ms:
                judged_at = time.monotonic()  # the Python worker may still hold the last bundle
            if judged_at is not None and time.monotonic() - judged_at >= 3:
                detections = self.detections()
                if all(d["state"] in ("stored", "failed") for d in detections):
                    return detections
            time.sleep(2)
        raise AssertionError(
            f"pipeline did not settle: watermark {self.detector_watermark_ms()}, detections {self.detections()}")


def epoch_ms(naive_utc) -> int:
    return int(naive_utc.replace(tzinfo=timezone.utc).timestamp() * 1000)


def score(truth: dict, detections: list[dict], bucket_ms: int) -> dict:
    """Match detections to injected bursts (a detection belongs to the burst its bucket overlaps)."""
    matched: dict[int, list[dict]] = {i: [] for i in range(len(truth["bursts"]))}
    unmatched = []
    for detection in detections:
        start = epoch_ms(detection["bucket_start"])
        for i, burst in enumerate(truth["bursts"]):
            if (int(burst["broadcaster_id"]) == detection["broadcaster_id"]
                    and burst["start_ms"] - bucket_ms <= start <= burst["end_ms"]):
                matched[i].append(detection)
                break
        else:
            unmatched.append(detection)
    return {"per_burst": matched, "unmatched": unmatched}
