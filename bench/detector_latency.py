"""Clip-detector detection latency: bucket end -> detection, on the stack's Flink cluster, live.

    .venv/bin/python bench/detector_latency.py [--seconds 70]

Produces real-time chat (1 s buckets, 20-bucket baseline, 10 s cooldown; 6 channels at 20
messages per bucket, each bursting every 12 s after the warm-up; every message is sent at its own
timestamp, as live chat is) into a fresh topic, runs the
submitted job against the Twitch simulator, and reads ``detections.detected_at`` (wall clock when
the Python operator judged the bucket) minus the bucket's end. The watermark's out-of-orderness
(``--out-of-orderness``, default 0.5 s) is part of that latency by design. Adds ``latency`` to
bench/results/detector.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "detector"))
from flink_helpers import ChatProducer, create_topic, delete_topic, sim_settings, write_token_file  # noqa: E402

from streamscout.common.config import load_settings  # noqa: E402
from streamscout.common.db import migrate  # noqa: E402
from streamscout.detector import submit as jobs  # noqa: E402
from streamscout.sim import start_simulator  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "detector.json"
CHANNELS = [140001 + i for i in range(6)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=70)
    parser.add_argument("--out-of-orderness", type=float, default=0.5)
    args = parser.parse_args()
    base = load_settings()
    db = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base.postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    dsn = base.postgres_dsn.rsplit("/", 1)[0] + "/" + db
    migrate(dsn)
    sim = start_simulator({"name": "latency", "channels": [{"login": f"c{c}", "id": str(c)} for c in CHANNELS]},
                          clip_delay=1.0)
    token_file = write_token_file(sim, Path(tempfile.mkdtemp()) / "tokens.json")
    settings = sim_settings(
        base, sim, token_file, dsn, detector_bucket_seconds=1.0, detector_baseline_buckets=20,
        detector_cooldown_seconds=10.0, detector_min_excess=3.0,
        detector_out_of_orderness_seconds=args.out_of_orderness,
    )
    bursts = {(c, b): 150 for i, c in enumerate(CHANNELS) for b in range(22 + 2 * i, args.seconds, 12)}
    create_topic(settings)
    producer = None
    try:
        jobs.submit(settings, startup="earliest", resume=False)
        producer = ChatProducer(settings, {c: 20 for c in CHANNELS}, bursts, 1000, realtime=True)
        producer.start()
        time.sleep(args.seconds + 5)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT extract(epoch FROM detected_at - bucket_start) * 1000 - 1000 FROM detections"
            ).fetchall()
    finally:
        if producer is not None:
            producer.stop()
        jobs.cancel(settings)
        sim.stop()
        delete_topic(settings)
        with psycopg.connect(base.postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    lags = [float(r[0]) for r in rows]
    if not lags:
        print("no detections: nothing to report", file=sys.stderr)
        return 1
    result = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "detections": len(lags),
        "bursts_after_warmup": sum(1 for (_, b) in bursts if b < args.seconds),
        "out_of_orderness_seconds": args.out_of_orderness,
        "bucket_end_to_detection_ms": {
            "p50": round(statistics.median(lags), 1), "p99": round(percentile(lags, 0.99), 1),
            "min": round(min(lags), 1), "max": round(max(lags), 1),
        },
        "notes": "detected_at is the Python operator's wall clock when it judged the bucket; the latency "
                 "includes the watermark delay (out-of-orderness) and Flink's 200 ms watermark interval.",
    }
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["latency"] = result
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
