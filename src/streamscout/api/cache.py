"""A tiny time-bounded cache of serialized answers ("micro-caching").

Nearly every visitor asks the same question: the first page of the last 7 days. Answering it
from memory for one second turns a burst of identical requests into one query, at the price
of a page that can lag the database by at most ``ttl`` seconds. Later pages carry a cursor and
a fixed window, so caching them cannot reorder or repeat clips.

    >>> now = [0.0]
    >>> cache = TtlCache(ttl=1.0, max_entries=2, clock=lambda: now[0])
    >>> cache.put("limit=24", b"{}")
    >>> cache.get("limit=24"), cache.get("limit=5")
    (b'{}', None)
    >>> now[0] = 1.0
    >>> cache.get("limit=24") is None
    True
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Thread-safe; keeps at most ``max_entries`` (least recently stored go first); ttl 0 = off."""

    def __init__(self, ttl: float, max_entries: int = 256, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() >= entry[0]:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: str, value: V) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self.clock() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
