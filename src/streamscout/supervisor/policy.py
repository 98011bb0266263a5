"""When to restart a process that died: the decision, without processes.

It mirrors what the systemd units do (``Restart=always`` with ``RestartSec`` and a start
limit): a process that dies is restarted after a delay that doubles on each quick failure,
capped; a process that stayed up for ``stable_seconds`` has its failure count reset; a process
that fails ``burst_limit`` times within ``burst_window_seconds`` is given up on, so a broken
configuration does not spin forever.

    >>> policy = RestartPolicy(base_delay=1.0, max_delay=8.0)
    >>> tracker = RestartTracker(policy)
    >>> tracker.on_exit(now=10.0, started_at=9.5)
    1.0
    >>> tracker.on_exit(now=12.0, started_at=11.0)
    2.0
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    base_delay: float = 1.0
    max_delay: float = 30.0
    stable_seconds: float = 60.0
    burst_limit: int = 10
    burst_window_seconds: float = 300.0


@dataclass
class RestartTracker:
    """Failure history of one supervised process."""

    policy: RestartPolicy
    consecutive_failures: int = 0
    _recent_exits: deque = field(default_factory=deque)

    def on_exit(self, now: float, started_at: float) -> float | None:
        """Seconds to wait before restarting, or None when the process should stay down."""
        if now - started_at >= self.policy.stable_seconds:
            self.consecutive_failures = 0
        self.consecutive_failures += 1
        self._recent_exits.append(now)
        while self._recent_exits and now - self._recent_exits[0] > self.policy.burst_window_seconds:
            self._recent_exits.popleft()
        if len(self._recent_exits) > self.policy.burst_limit:
            return None
        return min(self.policy.base_delay * 2 ** (self.consecutive_failures - 1), self.policy.max_delay)
