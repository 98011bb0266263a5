"""Chat -> per-broadcast bucket counts, exactly as the Flink job counts them.

A :class:`Broadcast` is what the detector sees of one channel's recording: non-command messages
per epoch-aligned bucket, and flood events (raids, gift-sub floods) per bucket. Commands are
dropped with :func:`~streamscout.detector.stats.is_command`, buckets come from
:func:`~streamscout.detector.stats.bucket_start_ms` -- the same functions the job uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from streamscout.detector.stats import bucket_start_ms, is_command, is_flood_event


@dataclass(frozen=True)
class Burst:
    """A moment that should be detected (ground truth): [start_ms, end_ms)."""

    start_ms: int
    end_ms: int
    multiplier: float
    cause: str = "injected"
    extra_messages: int = 0
    """Messages the injection added (0 for simulator bursts)."""


@dataclass(frozen=True)
class Broadcast:
    """One channel's chat over one recording, as bucket counts."""

    name: str
    source: str
    bucket_ms: int
    counts: dict[int, int]
    """Bucket start (epoch ms) -> non-command messages; empty buckets are absent."""
    events: dict[int, int] = field(default_factory=dict)
    """Bucket start -> raid / gift-sub flood events."""
    messages: int = 0
    """Chat messages read, commands included (injected ones excluded)."""
    commands: int = 0
    truth: tuple[Burst, ...] | None = None
    """Ground truth when known (simulator bursts or injected ones); None for plain real chat."""
    floods: tuple[Burst, ...] = ()
    """Chat surges that are not highlights (raid and gift-sub surges of a scenario)."""

    @property
    def start_ms(self) -> int:
        return min(self.counts.keys() | self.events.keys())

    @property
    def end_ms(self) -> int:
        """End of the last bucket."""
        return max(self.counts.keys() | self.events.keys()) + self.bucket_ms

    @property
    def hours(self) -> float:
        return (self.end_ms - self.start_ms) / 3_600_000

    def buckets(self) -> range:
        """Every bucket start from the first to the last, empty ones included."""
        return range(self.start_ms, self.end_ms, self.bucket_ms)

    def with_counts(self, counts: dict[int, int], truth: tuple[Burst, ...]) -> "Broadcast":
        return replace(self, counts=counts, truth=truth)


class SeriesBuilder:
    """Accumulates chat lines of any number of channels into :class:`Broadcast` objects.

        >>> b = SeriesBuilder(5000)
        >>> b.add_message("#a", 1000, "hi"); b.add_message("#a", 4000, "!uptime"); b.add_message("#a", 6000, "yo")
        >>> [(x.name, x.counts, x.commands) for x in b.broadcasts("f.txt")]
        [('#a', {0: 1, 5000: 1}, 1)]
    """

    def __init__(self, bucket_ms: int) -> None:
        self.bucket_ms = bucket_ms
        self._counts: dict[str, dict[int, int]] = {}
        self._events: dict[str, dict[int, int]] = {}
        self._messages: dict[str, int] = {}
        self._commands: dict[str, int] = {}

    def add_message(self, channel: str, timestamp_ms: int, text: str) -> None:
        self._messages[channel] = self._messages.get(channel, 0) + 1
        if is_command(text):
            self._commands[channel] = self._commands.get(channel, 0) + 1
            return
        counts = self._counts.setdefault(channel, {})
        bucket = bucket_start_ms(timestamp_ms, self.bucket_ms)
        counts[bucket] = counts.get(bucket, 0) + 1

    def add_event(self, channel: str, timestamp_ms: int, event_type: str) -> None:
        if not is_flood_event(event_type):
            return
        events = self._events.setdefault(channel, {})
        bucket = bucket_start_ms(timestamp_ms, self.bucket_ms)
        events[bucket] = events.get(bucket, 0) + 1

    def add_count(self, channel: str, timestamp_ms: int, count: int) -> None:
        """Pre-counted input (per-second message counts, no text: commands cannot be dropped)."""
        counts = self._counts.setdefault(channel, {})
        bucket = bucket_start_ms(timestamp_ms, self.bucket_ms)
        counts[bucket] = counts.get(bucket, 0) + count
        self._messages[channel] = self._messages.get(channel, 0) + count

    def broadcasts(self, source: str, name_prefix: str = "") -> list[Broadcast]:
        """One broadcast per channel that had any countable message or event."""
        out = []
        for channel in sorted(self._counts.keys() | self._events.keys()):
            counts = self._counts.get(channel, {})
            events = self._events.get(channel, {})
            if not counts and not events:
                continue
            out.append(Broadcast(
                name=f"{name_prefix}{channel}",
                source=source,
                bucket_ms=self.bucket_ms,
                counts=dict(sorted(counts.items())),
                events=dict(sorted(events.items())),
                messages=self._messages.get(channel, 0),
                commands=self._commands.get(channel, 0),
            ))
        return out
