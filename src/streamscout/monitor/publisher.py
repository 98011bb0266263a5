"""At-least-once publishing to Kafka that never blocks the chat reader and never gives up.

kafka-python's ``send()`` blocks (up to ``max_block_ms``) while it has no metadata, its
accumulator is unbounded, and a record whose delivery times out is simply failed. So the chat
thread only appends to a bounded in-memory backlog (:meth:`Publisher.publish`, a deque append);
one publisher thread creates the producer (retrying while no broker answers), moves records
from the backlog into the producer while fewer than ``max_in_flight`` are unacknowledged, and
puts every failed record back into the backlog. Acknowledgements are not callbacks: the thread
keeps the in-flight records in send order and settles the finished ones from the front, which
costs a deque append per record instead of two callbacks and a lock (this is the hot path at
20,000 records/s). A broker outage therefore fills the backlog,
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
from kafka.partitioner.default import murmur2

from streamscout.monitor.metrics import MonitorMetrics

log = logging.getLogger(__name__)

Item = tuple[str, bytes, bytes]  # topic, key, value
PARTITION_CACHE_SECONDS = 60.0


def producer_config(bootstrap: str, compression: str = "lz4", linger_ms: int = 20) -> dict[str, Any]:
    """kafka-python settings tuned for many small chat records.

    acks=all with retries, larger batches and a short linger so records travel in batches;
    ``compression`` is a codec name or "none"; lz4 by default, the cheapest in CPU (gzip costs
    kafka-python a third more per record, see docs/monitor.md).
    """
    return {
        "bootstrap_servers": bootstrap.split(","),
        "acks": "all",
        # Idempotence off: kafka-python's idempotent producer was seen to stay stuck after its
        # batches expired during a broker outage. Duplicates are allowed (at-least-once).
        "enable_idempotence": False,
        "retries": 2**31 - 1,
        "compression_type": None if compression == "none" else compression,
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
        max_in_flight: int = 20_000,
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
        # (future, item, handed-over time) per record on the current producer, in send order;
        # only the publisher thread touches it (and close(), after that thread ended)
        self._in_flight: deque[tuple[Any, Item, float]] = deque()
        self._created_at = clock()
        self._partitions: dict[tuple[str, bytes], int] = {}  # (topic, key) -> partition
        self._partitions_at = clock()
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
        return len(self._backlog) + len(self._in_flight)

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
            self._settle()
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
                    self._wake.wait(0.01 if self._in_flight else 0.1)  # settle acks promptly
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
        self._settle()
        old, self._producer = self._producer, None
        self._partitions.clear()
        taken = [item for _future, item, _started in self._in_flight]
        self._in_flight.clear()
        self._backlog.extendleft(reversed(taken))
        self._metrics.kafka_connected.set(0)
        log.warning("replacing the kafka producer", extra={"records_taken_back": len(taken)})
        threading.Thread(target=_close_quietly, args=(old,), name="kafka-producer-close", daemon=True).start()

    def _drain(self) -> int:
        """Hand backlog records to the producer; returns how many records moved or settled."""
        moved = self._settle()
        producer = self._producer
        in_flight = self._in_flight
        backlog = self._backlog
        now = self._clock()
        if now - self._partitions_at > PARTITION_CACHE_SECONDS or len(self._partitions) > 100_000:
            self._partitions.clear()  # picks up partitions added to a topic
            self._partitions_at = now
        while backlog and len(in_flight) < self._max_in_flight:
            item = backlog.popleft()
            topic, key, value = item
            try:
                future = producer.send(topic, key=key, value=value, partition=self._partition(producer, topic, key))
            except MessageSizeTooLargeError as exc:  # retrying cannot help: drop it, loudly
                self._metrics.messages_dropped.inc()
                self._note_error(f"record dropped: {exc}")
                continue
            except Exception as exc:  # metadata unavailable (broker down at start), closed, ...
                backlog.appendleft(item)
                self._note_error(f"send failed: {exc}")
                self._stopping.wait(0.5)
                return moved
            in_flight.append((future, item, now))
            moved += 1
        return moved

    def _partition(self, producer: Any, topic: str, key: bytes) -> int:
        """The partition kafka-python's default partitioner would pick (murmur2 of the key, as
        Java's), cached per key: hashing in pure Python on every record costs ~2 µs."""
        partition = self._partitions.get((topic, key))
        if partition is None:
            partitions = sorted(producer.partitions_for(topic))  # waits for metadata, bounded
            partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
            self._partitions[(topic, key)] = partition
        return partition

    def _settle(self) -> int:
        """Settle the finished records at the front of the in-flight queue, in send order.

        A success counts as published; a failure goes back into the backlog (at-least-once).
        A record still in flight stops the scan: the ones behind it are settled on a later pass.
        The send latency is observed once per pass, for the newest record settled.
        """
        in_flight = self._in_flight
        acked = failed = 0
        last_started = None
        while in_flight and in_flight[0][0].is_done:
            future, item, started = in_flight.popleft()
            if future.exception is None:
                acked += 1
                last_started = started
            else:
                failed += 1
                self._backlog.append(item)
                error = future.exception
        if acked:
            now = self._clock()
            self._last_ack = now
            self._metrics.messages_published.inc(acked)
            self._metrics.kafka_send_seconds.observe(now - last_started)
        if failed:
            self._note_error(f"delivery failed, sent again: {error}", records=failed)
            self._wake.set()
        return acked + failed

    def _note_error(self, message: str, records: int = 1) -> None:
        self._metrics.publish_errors.inc(records)
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
