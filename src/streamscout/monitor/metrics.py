"""The monitor's Prometheus metrics, registered on an injected registry (tests pass their own).

The names are an interface: the alert rules and the Grafana dashboard query them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_PREFIX = "streamscout_monitor_"


class MonitorMetrics:
    """All metrics of one monitor process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str) -> Counter:
            return Counter(_PREFIX + name, doc, registry=registry)

        self.streams_monitored = Gauge(
            _PREFIX + "streams_monitored", "Channels whose chat is joined now.", registry=registry
        )
        self.chat_connected = Gauge(
            _PREFIX + "chat_connected", "1 while the chat connection is up and delivering.", registry=registry
        )
        self.kafka_connected = Gauge(
            _PREFIX + "kafka_connected", "1 while the Kafka producer is connected.", registry=registry
        )
        self.publish_backlog = Gauge(
            _PREFIX + "publish_backlog", "Records waiting for Kafka (queued + unacknowledged).", registry=registry
        )
        # Counter names get `_total` appended by the client library.
        self.messages_received = counter("messages_received", "Chat lines turned into records.")
        self.messages_published = counter("messages_published", "Records acknowledged by Kafka.")
        self.publish_errors = counter("publish_errors", "Failed Kafka sends or deliveries (retried).")
        self.messages_dropped = counter("messages_dropped", "Records dropped because the backlog was full.")
        self.malformed_lines = counter("malformed_lines", "Chat lines that named no broadcaster.")
        self.joins = counter("joins", "Chat channels joined.")
        self.leaves = counter("leaves", "Chat channels left.")
        self.join_failures = counter("join_failures", "Channel joins that timed out or failed.")
        self.chat_rebuilds = counter("chat_rebuilds", "Chat connections rebuilt after a stall or close.")
        self.poll_errors = counter("poll_errors", "Ranking rounds that failed (Twitch, Redis or Postgres).")
        self.poll_seconds = Histogram(
            _PREFIX + "poll_seconds",
            "Duration of one ranking round.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.chat_gap_seconds = Histogram(
            _PREFIX + "chat_gap_seconds",
            "Chat not read for a channel the monitor was reading, from its last message before a "
            "monitor restart or chat rebuild to the first after (an upper bound of what was missed).",
            ["cause"],
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=registry,
        )
        self.kafka_send_seconds = Histogram(
            _PREFIX + "kafka_send_seconds",
            "Time from handing a record to the producer until Kafka acknowledged it.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
