"""Which channels to watch: ranking live streams and the join/leave hysteresis, as pure functions.

The Flink job needs an unbroken chat history per channel to keep its 5-minute baseline, so a
channel is joined when it enters the top ``join_rank`` and left only when it falls below
``leave_rank`` or goes offline. Channels that refused a clip (the detector got a 403) are not
ranked at all until ``recheck_after`` has passed, so the next channel takes their place.

    >>> from datetime import datetime, timezone
    >>> live = [LiveStream(1, "a", 900), LiveStream(2, "b", 800), LiveStream(3, "c", 700)]
    >>> d = decide(live, joined=set(), alive=set(), refusals={}, now=datetime.now(timezone.utc),
    ...            join_rank=2, leave_rank=3)
    >>> [s.login for s in d.to_join], d.ranks
    (['a', 'b'], {1: 1, 2: 2, 3: 3})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping, NamedTuple, Optional

class LiveStream(NamedTuple):
    """One entry of Get Streams, reduced to what ranking needs."""

    broadcaster_id: int
    login: str
    viewers: int


class Refusal(NamedTuple):
    """A channel whose ``streamers.allows_clipping`` is false.

    ``refused_at`` None means "refused, time unknown" (set by hand): never re-checked.
    """

    refused_at: Optional[datetime]


# Why a channel is left; the lifecycle record carries it next to the spec's fields.
LEAVE_RANK = "rank"
LEAVE_OFFLINE = "offline"
LEAVE_CLIPPING = "clipping_refused"
LEAVE_SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class Decision:
    """The outcome of one ranking round.

    ``ranks`` maps every ranked (live, clippable) broadcaster to its 1-based rank;
    ``to_join`` is in rank order; ``to_leave`` maps broadcaster id to a LEAVE_* reason.
    """

    ranks: dict[int, int]
    to_join: list[LiveStream]
    to_leave: dict[int, str] = field(default_factory=dict)


def is_refused(refusal: Optional[Refusal], now: datetime, recheck_after: timedelta) -> bool:
    """True while a channel's clip refusal still counts (it is re-checked after ``recheck_after``)."""
    if refusal is None:
        return False
    if refusal.refused_at is None:
        return True
    return now - refusal.refused_at < recheck_after


def rank_streams(
    live: Iterable[LiveStream],
    refusals: Mapping[int, Refusal],
    now: datetime,
    recheck_after: timedelta = timedelta(days=7),
) -> tuple[dict[int, int], list[LiveStream]]:
    """Rank clippable live streams by viewers (ties keep the API's order).

    Get Streams pages can overlap while viewer counts move, so a broadcaster seen twice keeps
    its first (better) entry. Returns (broadcaster id -> rank, streams in rank order).
    """
    seen: set[int] = set()
    unique: list[LiveStream] = []
    for stream in live:
        if stream.broadcaster_id in seen:
            continue
        seen.add(stream.broadcaster_id)
        if is_refused(refusals.get(stream.broadcaster_id), now, recheck_after):
            continue
        unique.append(stream)
    ordered = sorted(unique, key=lambda s: -s.viewers)  # stable: ties keep API order
    return {s.broadcaster_id: i for i, s in enumerate(ordered, start=1)}, ordered


def enough_ranked(
    live: Iterable[LiveStream],
    refusals: Mapping[int, Refusal],
    now: datetime,
    leave_rank: int,
    recheck_after: timedelta = timedelta(days=7),
) -> bool:
    """True once the pages read so far hold ``leave_rank`` clippable streams: stop paging."""
    ranks, _ = rank_streams(live, refusals, now, recheck_after)
    return len(ranks) >= leave_rank


def decide(
    live: Iterable[LiveStream],
    joined: set[int],
    alive: set[int],
    refusals: Mapping[int, Refusal],
    now: datetime,
    join_rank: int = 5,
    leave_rank: int = 10,
    recheck_after: timedelta = timedelta(days=7),
) -> Decision:
    """One ranking round: which channels to join and which to leave.

    ``live`` are the streams read from Get Streams (viewer order, possibly only the first
    pages); ``joined`` the channels whose chat is joined now; ``alive`` the joined channels
    whose Redis liveness key has not expired. A joined channel missing from ``live`` is kept
    while its key lives (pages can skip an entry while viewers move; the TTL is the grace
    period) and left as offline once it has expired. A joined channel that refused a clip
    since it was joined is left: its spikes could not be clipped.
    """
    if join_rank > leave_rank:
        raise ValueError(f"join_rank {join_rank} must not exceed leave_rank {leave_rank}")
    live = list(live)
    ranks, ordered = rank_streams(live, refusals, now, recheck_after)
    live_ids = {s.broadcaster_id for s in live}
    to_leave: dict[int, str] = {}
    for broadcaster_id in sorted(joined):
        rank = ranks.get(broadcaster_id)
        if rank is not None:
            if rank > leave_rank:
                to_leave[broadcaster_id] = LEAVE_RANK
        elif broadcaster_id in live_ids:
            to_leave[broadcaster_id] = LEAVE_CLIPPING
        elif broadcaster_id not in alive:
            to_leave[broadcaster_id] = LEAVE_OFFLINE
    to_join = [s for s in ordered[:join_rank] if s.broadcaster_id not in joined]
    return Decision(ranks=ranks, to_join=to_join, to_leave=to_leave)
