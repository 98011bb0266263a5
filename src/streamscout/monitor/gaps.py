"""How much chat the monitor missed when it stopped reading a channel it should have been reading.

A monitor restart (crash, deploy, SIGKILL) or a rebuilt chat connection leaves a hole in a
channel's chat: the detector then sees a few empty buckets. The hole cannot be measured from
what was missed, only bounded from what was seen: the gap is the time between the last message
published before the interruption and the first one after it. That is an upper bound on the
missed chat (a quiet channel adds its own silence), and exactly what the detector experiences.

The last-seen times survive a restart because the service writes them to Redis every few
seconds (:meth:`ChatGaps.changed`); a restart therefore reports at most that interval too much.
A deliberate leave (rank drop, offline) forgets the channel, so joining it again later is not a
gap; a shutdown does not, so the next process reports the gap a restart causes.

    >>> gaps = ChatGaps()
    >>> gaps.seen(7, 1_000)
    >>> gaps.resume(7, 1_000, "rebuild")
    >>> gaps.seen(7, 13_500)
    ('rebuild', 12.5)
"""

from __future__ import annotations

from typing import Optional

Gap = tuple[str, float]  # (cause, seconds)


class ChatGaps:
    """Per-channel last message times and the channels waiting for their first message back.

    :meth:`seen` runs on the chat thread for every record; the rest on the service's loop.
    Each call is a single dict operation, safe across the two threads under the GIL.
    """

    def __init__(self) -> None:
        self.last_ms: dict[int, int] = {}
        self._resuming: dict[int, tuple[int, str]] = {}  # broadcaster -> (last before, cause)
        self._changed: set[int] = set()

    def seen(self, broadcaster_id: int, timestamp_ms: int) -> Optional[Gap]:
        """Record a message; returns (cause, seconds) when it is the first after a gap."""
        self.last_ms[broadcaster_id] = timestamp_ms
        self._changed.add(broadcaster_id)
        if broadcaster_id in self._resuming:
            resumed = self._resuming.pop(broadcaster_id, None)
            if resumed is not None and timestamp_ms >= resumed[0]:
                return resumed[1], (timestamp_ms - resumed[0]) / 1000
        return None

    def resume(self, broadcaster_id: int, last_before_ms: Optional[int], cause: str) -> None:
        """The channel is read again after an interruption whose last message was at
        ``last_before_ms`` (None: never read before, so there is no gap to report)."""
        if last_before_ms is not None:
            self._resuming[broadcaster_id] = (last_before_ms, cause)

    def forget(self, broadcaster_id: int) -> None:
        """A deliberate leave: a later join is a new start, not a gap."""
        self.last_ms.pop(broadcaster_id, None)
        self._resuming.pop(broadcaster_id, None)
        self._changed.discard(broadcaster_id)

    def changed(self) -> dict[int, int]:
        """Last message times that changed since the previous call (to persist them)."""
        ids, self._changed = self._changed, set()
        return {bid: self.last_ms[bid] for bid in ids if bid in self.last_ms}
