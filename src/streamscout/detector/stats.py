"""Chat-spike statistics: one pure implementation shared by the Flink job and the backtest.

A :class:`SpikeDetector` watches one broadcaster. Feed it the message count of each 5-second
bucket in time order; it answers with a :class:`Detection` when the bucket is a spike::

    >>> params = DetectorParams(baseline_buckets=4, cooldown_seconds=10)
    >>> detector = SpikeDetector(broadcaster_id=42, params=params)
    >>> [detector.push(t * 5000, n) for t, n in enumerate([1, 3, 1, 3])]  # warm-up
    [None, None, None, None]
    >>> detector.push(20_000, 9)
    Detection(broadcaster_id=42, bucket_start_ms=20000, count=9, mean=2.0, stddev=1.0, score=7.0, threshold=5.0)

The rules (seed spec, with the decisions it leaves open):

* **Commands.** A message is a command when its text starts with ``!`` -- exactly the first
  character, no stripping, so the JVM-side filter (``text NOT LIKE '!%'``) and :func:`is_command`
  agree on every message. Commands are not counted.
* **Buckets.** Event-time buckets aligned to the epoch (:func:`bucket_start_ms`), like Flink's
  tumbling windows. A keyed window emits nothing for an empty bucket, so a gap between two pushed
  buckets counts as zero-message buckets. Zero can never be a spike, so gaps are filled without
  being judged.
* **Silence is no baseline.** A window of nothing but zeros -- five minutes without a message,
  most often a channel that went offline (the monitor leaves it, so no chat arrives) and came
  back -- says nothing about how the channel's chat behaves live: judged against it, the first
  returning bucket would always be a "spike". When chat returns to an all-zero window the
  warm-up starts again. The rule depends only on the window's content, so pushing every bucket
  and pushing only non-empty ones still give the same detections.
* **Baseline.** Mean and population standard deviation (ddof 0) of the previous
  ``baseline_buckets`` buckets (60 x 5 s = 5 minutes), never including the bucket being judged.
  No detection before the baseline is full, i.e. 5 minutes after the broadcaster's first bucket.
  The window is a deque summed with :func:`math.fsum` each time: 60 values every 5 s is nothing,
  the result is exact on hand-computed series and does not drift the way a long-running
  sum-of-squares does, and the robust variants need the values themselves anyway.
* **Spike (variant ``spec``).** ``count > mean + k*sigma`` and ``count - mean >= min_excess``.
  With sigma = 0 (a steady or silent window) the first rule alone would call any count above
  the mean a spike, so the minimum excess must be positive: it is the threshold's floor. The
  default of 1 message keeps the spec's rule as written; the ``floor`` variant raises it to 5. The floor is the same as flooring sigma
  at ``min_excess / k``, and the score uses that floored sigma, so it is finite, comparable
  across channels, and a spike always scores at least ``k``:
  ``score = (count - mean) / max(sigma, min_excess / k)``.
* **Cooldown.** After a detection at bucket ``b`` no bucket starting before ``b + cooldown`` is
  reported (30 s: the next five buckets stay silent; the sixth may fire).

Do spikes feed the baseline? **Clipped (winsorised) at the spike threshold.** A bucket above the
threshold enters the window as the threshold value, not its raw count. The alternatives fail
in opposite ways:

* fed raw, one burst of 200 messages inflates sigma for the next five minutes and hides every
  later moment in that window -- exactly the minutes after a highlight, when chat stays hot;
* not fed at all, a *sustained level shift* (a raid whose viewers stay, a stream that takes off)
  never enters the baseline, so the channel fires every 30 s forever.

Clipped, a single burst moves the baseline no more than an ordinary high bucket would, while a
level shift keeps pushing threshold-sized values in, the mean and sigma climb, and the detector
stops firing within a few minutes (a test pins this down). Clipping applies to every bucket,
including those silenced by cooldown or discounting, so the window never depends on the
cooldown state. The cost: a burst several buckets long enters as several threshold-sized
values, which lifts sigma for five minutes. ``DetectorParams.spike_feed`` keeps the
alternatives (``raw``, ``mean`` = not fed) so the backtest can measure them; the measurements
are in ``docs/evaluation.md``.

Variants (``DetectorParams.variant``; ``spec`` is the default and the seed spec's rule):

``spec``
    as above.
``floor``
    the spec rule with the minimum excess raised to ``floor_excess`` (default 5 messages):
    on small channels most buckets hold 0-2 messages and the spec rule fires on 3.
``robust``
    median and MAD (scaled by 1.4826 so it estimates sigma for normal data) instead of mean and
    sigma, with the ``floor_excess`` floor: an earlier burst or a bot flood in the window does
    not move the median, and the MAD is 0 whenever half the window is equal, which on a quiet
    channel is always -- hence the floor.
``nbinom``
    a count model for overdispersed chat: a negative binomial fitted to the window by moments
    (Poisson when the variance does not exceed the mean); a bucket is a spike when its upper
    tail probability ``P(X >= count)`` is below the normal tail at ``k`` (0.135 % for k = 3)
    and the excess is at least ``floor_excess``. Bursty channels get a wider band than
    mean + 3 sigma, steady ones a tighter one.
``<variant>+discount``
    any of the above, plus raid / gift-sub flood discounting: :meth:`SpikeDetector.push` takes
    the number of raid or gift-sub events seen in the bucket (:func:`is_flood_event`), and
    buckets from an event until ``discount_seconds`` after it are not reported (the hype train
    after a raid is not a moment).

How they compare on real chat and injected bursts: ``docs/evaluation.md`` (in short, the spec
rule clips 15.6 times per channel-hour on small channels; ``floor+discount`` with k = 4 brings
small and busy channels to ~3.7 per hour and is the recommended production setting).
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

BASE_VARIANTS = ("spec", "floor", "robust", "nbinom")
MODIFIERS = ("discount",)
SPIKE_FEEDS = ("clip", "raw", "mean")
# MAD * 1.4826 estimates sigma for normally distributed data.
MAD_TO_SIGMA = 1.4826
STATE_VERSION = 1
# Channel events that bring a flood of chat with them (IRC USERNOTICE msg-id). One per flood:
# the `subgift` notices that follow a `submysterygift` are the same flood.
FLOOD_EVENTS = frozenset({"raid", "submysterygift"})


def is_command(text: str) -> bool:
    """True when a chat message is a bot command (its very first character is ``!``)."""
    return text.startswith("!")


def is_flood_event(event_type: str | None) -> bool:
    """True for the channel events ``+discount`` variants count (raids, gift-sub floods)."""
    return event_type in FLOOD_EVENTS


def bucket_start_ms(timestamp_ms: int, bucket_ms: int) -> int:
    """Start of the epoch-aligned bucket holding ``timestamp_ms`` (Flink's tumbling-window start)."""
    return timestamp_ms - timestamp_ms % bucket_ms


def variant_names() -> list[str]:
    """Every accepted ``variant`` value, for option help and validation."""
    return [*BASE_VARIANTS, *(f"{base}+{mod}" for base in BASE_VARIANTS for mod in MODIFIERS)]


@dataclass(frozen=True)
class DetectorParams:
    """How spikes are judged. Defaults are the seed spec's rule."""

    bucket_seconds: float = 5.0
    """Width of a count bucket."""
    baseline_buckets: int = 60
    """Buckets in the baseline; also the warm-up (60 x 5 s = 5 minutes)."""
    k: float = 3.0
    """Spike above mean + k sigma (``nbinom``: tail probability below the normal tail at k)."""
    min_excess: float = 1.0
    """A spike exceeds the mean by at least this many messages (must be > 0)."""
    cooldown_seconds: float = 30.0
    """No second detection per broadcaster within this time."""
    variant: str = "spec"
    """One of :func:`variant_names`."""
    floor_excess: float = 5.0
    """Minimum excess of the ``floor``, ``robust`` and ``nbinom`` variants."""
    discount_seconds: float = 30.0
    """``+discount`` variants: spikes this long after a raid/gift-sub event are not reported."""
    spike_feed: str = "clip"
    """What a spike puts into the baseline: ``clip`` (the threshold; see the module docstring),
    ``raw`` (its count) or ``mean`` (the baseline mean: as if it were not fed)."""

    def __post_init__(self) -> None:
        if self.bucket_seconds <= 0 or abs(self.bucket_seconds * 1000 - round(self.bucket_seconds * 1000)) > 1e-6:
            raise ValueError(f"bucket_seconds must be a positive whole number of ms, got {self.bucket_seconds}")
        if self.baseline_buckets < 2:
            raise ValueError(f"baseline_buckets must be at least 2, got {self.baseline_buckets}")
        if self.k <= 0:
            raise ValueError(f"k must be positive, got {self.k}")
        if self.min_excess <= 0 or self.floor_excess <= 0:
            raise ValueError("min_excess and floor_excess must be positive (they guard sigma = 0)")
        if self.cooldown_seconds < 0 or self.discount_seconds < 0:
            raise ValueError("cooldown_seconds and discount_seconds must not be negative")
        if self.spike_feed not in SPIKE_FEEDS:
            raise ValueError(f"spike_feed must be one of {', '.join(SPIKE_FEEDS)}, got {self.spike_feed!r}")
        if self.variant not in variant_names():
            raise ValueError(f"unknown detector variant {self.variant!r}; choose from {', '.join(variant_names())}")

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> "DetectorParams":
        """The parameters of the ``detector_*`` fields of :class:`~streamscout.common.config.Settings`."""
        values = dict(
            bucket_seconds=settings.detector_bucket_seconds,
            baseline_buckets=settings.detector_baseline_buckets,
            k=settings.detector_k,
            min_excess=settings.detector_min_excess,
            cooldown_seconds=settings.detector_cooldown_seconds,
            variant=settings.detector_variant,
        )
        values.update(overrides)
        return cls(**values)

    @property
    def bucket_ms(self) -> int:
        return round(self.bucket_seconds * 1000)

    @property
    def cooldown_ms(self) -> int:
        return round(self.cooldown_seconds * 1000)

    @property
    def discount_ms(self) -> int:
        return round(self.discount_seconds * 1000)

    @property
    def base_variant(self) -> str:
        return self.variant.split("+")[0]

    @property
    def discounting(self) -> bool:
        return self.variant.endswith("+discount")

    @property
    def excess_floor(self) -> float:
        """The minimum excess this variant applies."""
        if self.base_variant == "spec":
            return self.min_excess
        return max(self.min_excess, self.floor_excess)

    @property
    def tail_alpha(self) -> float:
        """One-sided normal tail probability at ``k`` (``nbinom``'s significance level)."""
        return 0.5 * math.erfc(self.k / math.sqrt(2.0))


@dataclass(frozen=True)
class Detection:
    """A spike: the bucket, its count and the baseline it was judged against."""

    broadcaster_id: int
    bucket_start_ms: int
    """Start of the spiking bucket (epoch ms); the moment is this bucket."""
    count: int
    mean: float
    """Mean of the baseline window."""
    stddev: float
    """Population standard deviation of the baseline window."""
    score: float
    """(count - mean) / max(stddev, min_excess / k): how extraordinary the bucket was."""
    threshold: float
    """The level the count had to reach under the variant that judged it."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Baseline:
    """The window's summary for judging the next bucket."""

    mean: float
    stddev: float
    threshold: float
    """Counts at or above this level (and above the variant's exact rule) are spikes."""


@dataclass(frozen=True)
class Verdict:
    """What :meth:`SpikeDetector.step` made of one bucket (the backtest shows all of it)."""

    bucket_start_ms: int
    count: int
    baseline: Baseline | None
    """None while warming up."""
    spike: bool
    """The count broke the threshold (whether or not it was reported)."""
    detection: Detection | None
    """The reported detection; None when not a spike or silenced."""
    silenced_by: str | None = None
    """``warmup``, ``cooldown`` or ``discount`` when a spike was not reported."""


class OutOfOrderBucket(ValueError):
    """A bucket was pushed that does not come after the previous one."""


@dataclass
class SpikeDetector:
    """Spike detection for one broadcaster: push bucket counts in, get detections out.

    ``push`` is all the Flink job needs; ``step`` also returns the baseline and why a spike
    was silenced, for the backtest. ``to_state``/``from_state`` make a compact JSON snapshot
    for Flink's checkpointed ``ValueState``.
    """

    broadcaster_id: int
    params: DetectorParams = field(default_factory=DetectorParams)
    _window: deque = field(init=False, repr=False)
    _next_bucket_ms: int | None = field(default=None, init=False)
    _last_detection_ms: int | None = field(default=None, init=False)
    _discount_until_ms: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._window = deque(maxlen=self.params.baseline_buckets)

    # --- the one entry point --------------------------------------------------------------

    def push(self, bucket_start_ms: int, count: int, events: int = 0) -> Detection | None:
        """Judge one bucket's (non-command) message count; return the detection, if any.

        Buckets must come in increasing order (missing buckets count as zero). ``events`` is
        the number of raid / gift-sub events in the bucket; only ``+discount`` variants use it.
        """
        return self.step(bucket_start_ms, count, events).detection

    def step(self, bucket_start_ms: int, count: int, events: int = 0) -> Verdict:
        """Like :meth:`push`, returning the full :class:`Verdict`."""
        params = self.params
        if bucket_start_ms % params.bucket_ms:
            raise ValueError(f"bucket start {bucket_start_ms} is not aligned to {params.bucket_ms} ms")
        if count < 0:
            raise ValueError(f"a bucket count cannot be negative, got {count}")
        if self._next_bucket_ms is not None:
            if bucket_start_ms < self._next_bucket_ms:
                raise OutOfOrderBucket(
                    f"broadcaster {self.broadcaster_id}: bucket {bucket_start_ms} pushed after "
                    f"{self._next_bucket_ms - params.bucket_ms}"
                )
            missing = (bucket_start_ms - self._next_bucket_ms) // params.bucket_ms
            self._window.extend([0] * min(missing, params.baseline_buckets))
        self._next_bucket_ms = bucket_start_ms + params.bucket_ms
        if events and params.discounting:
            self._discount_until_ms = bucket_start_ms + params.discount_ms

        if count and self.warmed_up and not any(self._window):
            self._window.clear()  # silence is no baseline (module doc): warm up again
        baseline = self.baseline()
        if baseline is None:
            self._window.append(count)
            return Verdict(bucket_start_ms, count, None, False, None)

        spike = self._is_spike(count, baseline)
        self._window.append(self._fed_value(count, baseline) if spike else count)
        if not spike:
            return Verdict(bucket_start_ms, count, baseline, False, None)
        silenced = self._silenced_by(bucket_start_ms)
        if silenced:
            return Verdict(bucket_start_ms, count, baseline, True, None, silenced)
        self._last_detection_ms = bucket_start_ms
        sigma = max(baseline.stddev, params.min_excess / params.k)
        detection = Detection(
            broadcaster_id=self.broadcaster_id,
            bucket_start_ms=bucket_start_ms,
            count=count,
            mean=baseline.mean,
            stddev=baseline.stddev,
            score=(count - baseline.mean) / sigma,
            threshold=baseline.threshold,
        )
        return Verdict(bucket_start_ms, count, baseline, True, detection)

    # --- the statistics ---------------------------------------------------------------------

    @property
    def warmed_up(self) -> bool:
        return len(self._window) == self.params.baseline_buckets

    def baseline(self) -> Baseline | None:
        """The baseline the next bucket is judged against; None during warm-up.

        The next bucket must directly follow the last pushed one (no gap), else the window
        changes first.
        """
        if not self.warmed_up:
            return None
        values = self._window
        n = len(values)
        mean = math.fsum(values) / n
        stddev = math.sqrt(math.fsum((x - mean) ** 2 for x in values) / n)
        params = self.params
        floor = params.excess_floor
        base = params.base_variant
        if base in ("spec", "floor"):
            threshold = mean + max(params.k * stddev, floor)
        elif base == "robust":
            median, spread = _median_and_sigma_mad(values)
            threshold = median + max(params.k * spread, floor)
        else:  # nbinom
            threshold = max(float(_nbinom_critical_count(mean, stddev * stddev, params.tail_alpha)), mean + floor)
        return Baseline(mean=mean, stddev=stddev, threshold=threshold)

    def _is_spike(self, count: int, baseline: Baseline) -> bool:
        params = self.params
        base = params.base_variant
        if base in ("spec", "floor"):
            return count > baseline.mean + params.k * baseline.stddev and count - baseline.mean >= params.excess_floor
        # robust and nbinom: the threshold already holds the floor (median/critical count + floor)
        return count >= baseline.threshold and count - baseline.mean >= params.min_excess

    def _fed_value(self, count: int, baseline: Baseline) -> float:
        feed = self.params.spike_feed
        if feed == "clip":  # winsorise (see the module docstring)
            return min(count, baseline.threshold)
        return count if feed == "raw" else baseline.mean

    def _silenced_by(self, bucket_start_ms: int) -> str | None:
        last = self._last_detection_ms
        if last is not None and bucket_start_ms - last < self.params.cooldown_ms:
            return "cooldown"
        if self._discount_until_ms is not None and bucket_start_ms < self._discount_until_ms:
            return "discount"
        return None

    # --- Flink state ------------------------------------------------------------------------

    def to_state(self) -> bytes:
        """A compact JSON snapshot (a few hundred bytes) for Flink's ``ValueState``."""
        state = {
            "v": STATE_VERSION,
            "id": self.broadcaster_id,
            "next": self._next_bucket_ms,
            "last": self._last_detection_ms,
            "disc": self._discount_until_ms,
            "w": [_compact(x) for x in self._window],
        }
        return json.dumps(state, separators=(",", ":")).encode()

    @classmethod
    def from_state(cls, data: bytes, params: DetectorParams) -> "SpikeDetector":
        """Rebuild a detector from :meth:`to_state` output (params come from the settings).

        If ``baseline_buckets`` shrank since the snapshot, the newest buckets are kept.
        """
        state = json.loads(data)
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported detector state version {state.get('v')!r}")
        detector = cls(int(state["id"]), params)
        detector._window.extend(state["w"])
        detector._next_bucket_ms = state["next"]
        detector._last_detection_ms = state["last"]
        detector._discount_until_ms = state["disc"]
        return detector


def _compact(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    return float(ordered[middle]) if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _median_and_sigma_mad(values: Iterable[float]) -> tuple[float, float]:
    values = list(values)
    median = _median(values)
    mad = _median([abs(x - median) for x in values])
    return median, MAD_TO_SIGMA * mad


def _nbinom_critical_count(mean: float, variance: float, alpha: float) -> int:
    """Smallest count c with P(X >= c) < alpha, X negative binomial fitted by moments.

    Poisson when the variance does not exceed the mean (under-dispersed windows are treated as
    Poisson rather than fitting a binomial). Probabilities come from log-pmfs, so large means do
    not underflow.
    """
    if mean <= 0:
        return 1  # a silent window: any message is improbable; the excess floor decides
    if variance > mean:
        r = mean * mean / (variance - mean)
        p = r / (r + mean)

        def log_pmf(x: int) -> float:
            return math.lgamma(x + r) - math.lgamma(r) - math.lgamma(x + 1) + r * math.log(p) + x * math.log1p(-p)

    else:

        def log_pmf(x: int) -> float:
            return -mean + x * math.log(mean) - math.lgamma(x + 1)

    # Upper bound for termination: far beyond any plausible tail of the fitted distribution.
    limit = int(mean + 100 * math.sqrt(max(variance, mean)) + 100)
    cdf = 0.0
    for x in range(limit):
        cdf += math.exp(log_pmf(x))
        if 1.0 - cdf < alpha:
            return x + 1
    return limit
