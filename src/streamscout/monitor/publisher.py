"""At-least-once publishing to Kafka that never blocks the chat reader and never gives up.

kafka-python's ``send()`` blocks (up to ``max_block_ms``) while it has no metadata, its
accumulator is unbounded, and a record whose delivery times out is simply failed. So the chat
thread only appends to a bounded in-memory backlog (:meth:`Publisher.publish`, a deque append);
one publisher thread creates the producer (retrying while no broker answers), moves records
from the backlog into the producer while fewer than ``max_in_flight`` are unacknowledged, and
puts every failed record back into the backlog. A broker outage therefore fills the backlog,
makes :meth:`healthy` false, and drains by itself when Kafka returns; a producer that has
acknowledged nothing for ``recreate_seconds`` while records wait is closed (its batches come
back as failures) and replaced, because kafka-python's idempotent producer can stay wedged after
its batches expired in an outage. Nothing is lost unless the
backlog overflows (``max_backlog`` records, oldest dropped and counted as publish errors).
Records can be delivered twice (a retried batch that had in fact been written): at-least-once.

    pub = Publisher(lambda: KafkaProducer(**producer_config("127.0.0.1:59092")), metrics)
    pub.start()
    pub.publish("chat-messages", b"71092938", b'{"broadcaster_id": ...}')
    pub.close(timeout=5)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Optional

from kafka.errors import MessageSizeTooLargeError

from streamscout.monitor.metrics import MonitorMetrics

log = logging.getLogger(__name__)

Item = tuple[str, bytes, bytes]  # topic, key, value


class _Generation:
    """The records in flight on one producer instance, by sequence number.

    When a producer is replaced its records are taken back (re-queued); callbacks that still
    arrive from it then find nothing to settle and are ignored.
    """

    __slots__ = ("items", "next_seq")

    def __init__(self) -> None:
        self.items: dict[int, Item] = {}
        self.next_seq = 0

    @property
    def in_flight(self) -> int:
        return len(self.items)


def producer_config(bootstrap: str, compression: Optional[str] = "gzip", linger_ms: int = 20) -> dict[str, Any]:
    """kafka-python settings tuned for many small chat records.

    acks=all with retries, larger batches
    and a short linger so records travel in batches; gzip because it is the codec available
    without extra native packages (see docs/monitor.md for the measurement).
    """
    return {
        "bootstrap_servers": bootstrap.split(","),
        "acks": "all",
        # Idempotence off: kafka-python's idempotent producer was seen to stay stuck after its
        # batches expired during a broker outage. Duplicates are allowed (at-least-once).
        "enable_idempotence": False,
        "retries": 2**31 - 1,
        "compression_type": compression,
        "linger_ms": linger_ms,
        "batch_size": 256 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        # Bounded waits: the publisher thread re-queues what fails, so nothing waits forever.
        "max_block_ms": 2000,
        "request_timeout_ms": 10_000,
        "delivery_timeout_ms": 30_000,
        "reconnect_backoff_max_ms": 2000,
        "retry_backoff_ms": 200,
        "metadata_max_age_ms": 30_000,
    }


class Publisher:
    """See the module docstring. Thread-safe :meth:`publish`; one background thread."""

    def __init__(
        self,
        producer_factory: Callable[[], Any],
        metrics: MonitorMetrics,
        *,
        max_backlog: int = 300_000,
        max_in_flight: int = 100_000,
        stall_seconds: float = 10.0,
        recreate_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = producer_factory
        self._metrics = metrics
        self._max_backlog = max_backlog
        self._max_in_flight = max_in_flight
        self._stall_seconds = stall_seconds
        self._recreate_seconds = recreate_seconds
        self._clock = clock
        self._backlog: deque[Item] = deque()
        self._generation = _Generation()  # the current producer's in-flight count
        self._created_at = clock()
        self._lock = threading.Lock()  # guards the in-flight counts and the ack bookkeeping
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._producer: Any = None
        self._last_ack = clock()
        self._last_error: Optional[str] = None
        self._thread = threading.Thread(target=self._run, name="kafka-publisher", daemon=True)

    # --- called from any thread ---------------------------------------------------------
    def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Queue one record; never blocks. Overflow drops the oldest record (counted)."""
        if len(self._backlog) >= self._max_backlog:
            try:
                self._backlog.popleft()
            except IndexError:
                pass
            self._metrics.messages_dropped.inc()
            self._last_error = "backlog full: oldest record dropped"
        self._backlog.append((topic, key, value))
        if len(self._backlog) == 1:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Records not yet acknowledged by Kafka (backlog + in flight)."""
        return len(self._backlog) + self._generation.in_flight

    def healthy(self) -> tuple[bool, str]:
        """(ok, detail): a producer exists and unacknowledged records are being acknowledged."""
        if self._producer is None:
            return False, self._last_error or "not connected"
        idle = self._clock() - self._last_ack
        if self.pending and idle > self._stall_seconds:
            return False, f"{self.pending} records unacknowledged for {idle:.0f}s"
        return True, f"{self.pending} pending"

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> int:
        """Send what is queued, flush, close; returns how many records were left unsent."""
        deadline = self._clock() + timeout
        self._stopping.set()
        self._wake.set()
        self._thread.join(max(0.0, deadline - self._clock()))
        producer = self._producer
        if producer is not None:
            try:
                producer.flush(timeout=max(0.1, deadline - self._clock()))
            except Exception as exc:  # a timeout here means records stay unsent: reported below
                log.warning("kafka flush did not complete", extra={"error": str(exc)})
            try:
                producer.close(timeout=max(0.1, deadline - self._clock()))
            except Exception as exc:
                log.warning("kafka close failed", extra={"error": str(exc)})
        left = self.pending
        if left:
            log.error("records left unsent at shutdown", extra={"records": left})
        return left

    # --- the publisher thread -----------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.2
        while True:
            if self._producer is None:
                if self._stopping.is_set():
                    return
                try:
                    self._producer = self._factory()
                except Exception as exc:  # NoBrokersAvailable and friends: retry forever
                    self._last_error = f"cannot connect: {exc}"
                    self._metrics.kafka_connected.set(0)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                self._generation = _Generation()
                self._created_at = self._last_ack = self._clock()
                self._metrics.kafka_connected.set(1)
                log.info("kafka producer connected")
                backoff = 0.2
            moved = self._drain()
            if self._stopping.is_set() and not self._backlog:
                return  # close() flushes what is in flight
            if self._wedged():
                self._replace_producer()
                continue
            if not moved:
                self._wake.clear()
                if not self._backlog:
                    self._wake.wait(0.1)
                else:
                    time.sleep(0.005)  # in-flight window full or sends failing: let acks arrive

    def _wedged(self) -> bool:
        """Records wait and nothing was acknowledged for ``recreate_seconds`` on this producer."""
        now = self._clock()
        return (
            self.pending > 0
            and now - self._last_ack > self._recreate_seconds
            and now - self._created_at > self._recreate_seconds
        )

    def _replace_producer(self) -> None:
        """Take back the producer's unacknowledged records, abandon it and build a new one.

        A producer that lived through a broker outage can stay stuck; a fresh one starts clean.
        Its records go back to the front of the backlog (they may be delivered twice: that is
        at-least-once). kafka-python's ``close(timeout=0)`` raises while records are pending, so
        the old producer is closed on a daemon thread, forcibly if it has to be.
        """
        old, self._producer = self._producer, None
        generation = self._generation
        with self._lock:
            taken = list(generation.items.values())
            generation.items.clear()
        self._backlog.extendleft(reversed(taken))
        self._metrics.kafka_connected.set(0)
        log.warning("replacing the kafka producer", extra={"records_taken_back": len(taken)})
        threading.Thread(target=_close_quietly, args=(old,), name="kafka-producer-close", daemon=True).start()

    def _drain(self) -> int:
        moved = 0
        producer = self._producer
        generation = self._generation
        while self._backlog and generation.in_flight < self._max_in_flight:
            item = self._backlog.popleft()
            topic, key, value = item
            started = self._clock()
            try:
                future = producer.send(topic, key=key, value=value)
            except MessageSizeTooLargeError as exc:  # retrying cannot help: drop it, loudly
                self._metrics.messages_dropped.inc()
                self._note_error(f"record dropped: {exc}")
                continue
            except Exception as exc:  # metadata unavailable (broker down at start), closed, ...
                self._backlog.appendleft(item)
                self._note_error(f"send failed: {exc}")
                self._stopping.wait(0.5)
                return moved
            with self._lock:
                seq = generation.next_seq
                generation.next_seq += 1
                generation.items[seq] = item
            future.add_callback(self._on_ack, generation, seq, started)
            future.add_errback(self._on_error, generation, seq)
            moved += 1
        return moved

    def _on_ack(self, generation: "_Generation", seq: int, started: float, _metadata: Any) -> None:
        now = self._clock()
        with self._lock:
            if generation.items.pop(seq, None) is None:
                return  # taken back from a replaced producer: its copy is counted when it lands
            self._last_ack = now
        self._metrics.messages_published.inc()
        self._metrics.kafka_send_seconds.observe(now - started)

    def _on_error(self, generation: "_Generation", seq: int, exc: BaseException) -> None:
        with self._lock:
            item = generation.items.pop(seq, None)
        if item is None:
            return  # taken back already
        self._backlog.append(item)  # at-least-once: try again
        self._note_error(f"delivery failed: {exc}")
        self._wake.set()

    def _note_error(self, message: str) -> None:
        self._metrics.publish_errors.inc()
        if message != self._last_error:
            log.warning("kafka publish problem", extra={"error": message})
        self._last_error = message


def _close_quietly(producer: Any) -> None:
    try:
        producer.close(timeout=2)
    except Exception:
        sender = getattr(producer, "_sender", None)  # close() gave up at its flush: force it
        if sender is not None:
            sender.force_close()
