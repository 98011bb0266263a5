"""Push a broadcast's buckets through the detector and score the detections.

Every bucket from the first to the last is pushed, empty ones as zero, so the run records the
baseline at every bucket for the plot. The Flink job pushes only the buckets that had messages
and lets :class:`SpikeDetector` fill the gaps; the two give the same detections (a test checks).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

from streamscout.backtest.series import Broadcast, Burst
from streamscout.detector.stats import Detection, DetectorParams, SpikeDetector, Verdict


@dataclass(frozen=True)
class Run:
    broadcast: Broadcast
    params: DetectorParams
    verdicts: list[Verdict]
    detections: list[Detection]

    @property
    def per_hour(self) -> float:
        hours = self.broadcast.hours
        return len(self.detections) / hours if hours else 0.0


@dataclass(frozen=True)
class Score:
    """Detections against ground truth.

    A detection *hits* a burst when its bucket overlaps the burst or the bucket right after it
    (a burst ending mid-bucket shows in that bucket). The *delay* is from the burst's start to
    the end of the first hitting bucket: when the detector could know, in event time.
    """

    bursts: int
    detected: int
    detections: int
    true_detections: int
    delays_s: list[float]
    by_multiplier: dict[str, dict[str, float | int | None]]
    flood_detections: int = 0
    """Detections during raid / gift-sub surges (should be discounted)."""

    @property
    def recall(self) -> float | None:
        return self.detected / self.bursts if self.bursts else None

    @property
    def precision(self) -> float | None:
        return self.true_detections / self.detections if self.detections else None

    @property
    def median_delay_s(self) -> float | None:
        return statistics.median(self.delays_s) if self.delays_s else None


def run(broadcast: Broadcast, params: DetectorParams, broadcaster_id: int = 0,
        on_bucket: Callable[[int], None] | None = None) -> Run:
    """Replay one broadcast; ``on_bucket(n)`` reports progress every 10,000 buckets."""
    if broadcast.bucket_ms != params.bucket_ms:
        raise ValueError(f"{broadcast.name}: counted in {broadcast.bucket_ms} ms buckets, detector uses {params.bucket_ms}")
    detector = SpikeDetector(broadcaster_id, params)
    counts, events = broadcast.counts, broadcast.events
    verdicts = []
    detections = []
    for i, bucket in enumerate(broadcast.buckets(), start=1):
        verdict = detector.step(bucket, counts.get(bucket, 0), events.get(bucket, 0))
        verdicts.append(verdict)
        if verdict.detection:
            detections.append(verdict.detection)
        if on_bucket and i % 10_000 == 0:
            on_bucket(10_000)
    return Run(broadcast, params, verdicts, detections)


def _hits(detection: Detection, burst: Burst, bucket_ms: int) -> bool:
    start = detection.bucket_start_ms
    return start < burst.end_ms + bucket_ms and start + bucket_ms > burst.start_ms


def score(result: Run) -> Score | None:
    """Precision, recall and delay against the broadcast's ground truth (None without one)."""
    truth = result.broadcast.truth
    if truth is None:
        return None
    bucket_ms = result.params.bucket_ms
    detections = result.detections
    true_ids = set()
    delays = []
    per_mult: dict[str, dict[str, list]] = {}
    for burst in truth:
        hits = [d for d in detections if _hits(d, burst, bucket_ms)]
        true_ids.update(id(d) for d in hits)
        row = per_mult.setdefault(f"{burst.multiplier:g}x", {"bursts": [], "delays": []})
        row["bursts"].append(bool(hits))
        if hits:
            delay = (hits[0].bucket_start_ms + bucket_ms - burst.start_ms) / 1000
            delays.append(delay)
            row["delays"].append(delay)
    floods = result.broadcast.floods
    flood_hits = sum(1 for d in detections if id(d) not in true_ids and any(_hits(d, f, bucket_ms) for f in floods))
    by_multiplier = {
        key: {
            "bursts": len(row["bursts"]),
            "detected": sum(row["bursts"]),
            "recall": sum(row["bursts"]) / len(row["bursts"]),
            "median_delay_s": statistics.median(row["delays"]) if row["delays"] else None,
        }
        for key, row in sorted(per_mult.items(), key=lambda kv: float(kv[0][:-1]))
    }
    return Score(
        bursts=len(truth),
        detected=sum(1 for b in truth if any(_hits(d, b, bucket_ms) for d in detections)),
        detections=len(detections),
        true_detections=len(true_ids),
        delays_s=delays,
        by_multiplier=by_multiplier,
        flood_detections=flood_hits,
    )
