"""Seeded ground truth on top of real chat: bursts of N x the channel's baseline rate.

Real recordings carry no labels, so recall is measured on moments we add ourselves. A burst of
multiplier ``m`` lasting ``d`` seconds adds ``(m - 1) * rate * d`` messages at uniformly random
times in its interval, where ``rate`` is the channel's real message rate (commands excluded)
over the five minutes before the burst -- the same window the detector's baseline uses, so
"3x" means "three times what the detector has been seeing". Bursts start after the warm-up and
are spaced so that no burst sits in the next one's baseline.

SPEC grammar: ``MULTIPLIERS[:MIN-MAX][@EVERY]``, e.g. ``2x,3x,5x:5-20@600`` -- multipliers
(the ``x`` is optional) used in turn, durations drawn uniformly from MIN..MAX seconds (default
5-20), one burst every EVERY seconds (default 600).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from streamscout.backtest.series import Broadcast, Burst

SPEC_RE = re.compile(
    r"^(?P<mults>[0-9.]+x?(?:,[0-9.]+x?)*)"
    r"(?::(?P<dmin>[0-9.]+)-(?P<dmax>[0-9.]+)s?)?"
    r"(?:@(?P<every>[0-9.]+)s?)?$"
)
WARMUP_MARGIN_MS = 60_000  # first burst one minute after the baseline is full
BASELINE_MS = 300_000


class InjectSpecError(ValueError):
    """An --inject SPEC does not parse."""


@dataclass(frozen=True)
class InjectSpec:
    multipliers: tuple[float, ...]
    min_seconds: float = 5.0
    max_seconds: float = 20.0
    every_seconds: float = 600.0

    @classmethod
    def parse(cls, text: str) -> "InjectSpec":
        match = SPEC_RE.match(text.replace(" ", ""))
        if not match:
            raise InjectSpecError(f"--inject {text!r}: expected MULTIPLIERS[:MIN-MAX][@EVERY], e.g. 2x,3x,5x:5-20@600")
        try:
            mults = tuple(float(m.rstrip("x")) for m in match["mults"].split(","))
            values = dict(multipliers=mults)
            if match["dmin"]:
                values.update(min_seconds=float(match["dmin"]), max_seconds=float(match["dmax"]))
            if match["every"]:
                values["every_seconds"] = float(match["every"])
        except ValueError:
            raise InjectSpecError(f"--inject {text!r}: not a number") from None
        spec = cls(**values)
        if any(m <= 1 for m in spec.multipliers):
            raise InjectSpecError(f"--inject {text!r}: multipliers must be above 1")
        if not 0 < spec.min_seconds <= spec.max_seconds:
            raise InjectSpecError(f"--inject {text!r}: need 0 < MIN <= MAX")
        if spec.every_seconds < spec.max_seconds + BASELINE_MS / 1000:
            raise InjectSpecError(f"--inject {text!r}: EVERY must leave a clean 5-minute baseline (>= MAX + 300)")
        return spec

    def describe(self) -> str:
        mults = ",".join(f"{m:g}x" for m in self.multipliers)
        return f"{mults}:{self.min_seconds:g}-{self.max_seconds:g}@{self.every_seconds:g}"


def inject(broadcast: Broadcast, spec: InjectSpec, seed: int, warmup_ms: int = BASELINE_MS) -> Broadcast:
    """A copy of ``broadcast`` with bursts added and recorded as its ground truth.

    The random stream depends on the seed and the broadcast's name only, so one broadcast's
    bursts do not change when other files are added to the run. Slots whose five-minute rate is
    zero get no burst (a multiple of nothing is nothing).
    """
    rng = random.Random(f"{seed}:{broadcast.name}")
    bucket_ms = broadcast.bucket_ms
    counts = dict(broadcast.counts)
    truth = []
    every_ms = int(spec.every_seconds * 1000)
    slot_start = broadcast.start_ms + warmup_ms + WARMUP_MARGIN_MS
    index = 0
    while True:
        duration_ms = int(rng.uniform(spec.min_seconds, spec.max_seconds) * 1000)
        start = slot_start + rng.randrange(0, every_ms - BASELINE_MS - duration_ms + 1)
        end = start + duration_ms
        if end > broadcast.end_ms:
            break
        multiplier = spec.multipliers[index % len(spec.multipliers)]
        rate = _rate_per_ms(broadcast.counts, start - BASELINE_MS, start, bucket_ms)
        extra = round((multiplier - 1) * rate * duration_ms)
        if extra > 0:
            for _ in range(extra):
                bucket = (start + rng.randrange(duration_ms)) // bucket_ms * bucket_ms
                counts[bucket] = counts.get(bucket, 0) + 1
            truth.append(Burst(start, end, multiplier, "injected", extra))
            index += 1
        slot_start += every_ms
    return broadcast.with_counts(dict(sorted(counts.items())), tuple(truth))


def _rate_per_ms(counts: dict[int, int], start: int, end: int, bucket_ms: int) -> float:
    """Real messages per ms in the buckets that lie wholly inside [start, end)."""
    first = -(-start // bucket_ms) * bucket_ms
    last = end // bucket_ms * bucket_ms
    if last <= first:
        return 0.0
    total = sum(counts.get(b, 0) for b in range(first, last, bucket_ms))
    return total / (last - first)
