"""The at-least-once publisher, with a scripted stand-in for kafka-python's producer."""

from __future__ import annotations

import threading
import time

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, KafkaConnectionError
from prometheus_client import CollectorRegistry

from streamscout.monitor.metrics import MonitorMetrics
from streamscout.monitor.publisher import Publisher, producer_config

pytestmark = pytest.mark.unit


class FakeFuture:
    """kafka-python's future as the publisher reads it: ``is_done`` and ``exception``."""

    def __init__(self) -> None:
        self.is_done = False
        self.exception = None

    def succeed(self):
        self.is_done = True

    def fail(self, exc):
        self.exception = exc
        self.is_done = True


class FakeProducer:
    """Keeps every send; the test acknowledges or fails them."""

    def __init__(self, reject=None) -> None:
        self.sent: list[tuple[str, bytes, bytes, FakeFuture]] = []
        self.lock = threading.Lock()
        self.reject = reject  # exception send() raises for a value, or None
        self.closed_with = None

    def partitions_for(self, topic):
        return {0, 1, 2}

    def send(self, topic, key=None, value=None, partition=None):
        error = self.reject(value) if self.reject else None
        if error is not None:
            raise error
        future = FakeFuture()
        with self.lock:
            self.sent.append((topic, key, value, future))
        return future

    def ack_all(self):
        with self.lock:
            batch, self.sent = self.sent, []
        for *_, future in batch:
            future.succeed()
        return [v for _, _, v, _ in batch]

    def fail_all(self, exc):
        with self.lock:
            batch, self.sent = self.sent, []
        for *_, future in batch:
            future.fail(exc)

    def flush(self, timeout=None):
        self.ack_all()

    def close(self, timeout=None):
        self.closed_with = timeout
        self.fail_all(KafkaTimeoutError("closed"))  # as kafka-python does with unsent batches


def until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    raise AssertionError("condition not reached")


def make(factory, **kw):
    registry = CollectorRegistry()
    return Publisher(factory, MonitorMetrics(registry), **kw), registry


def sample(registry, name):
    return registry.get_sample_value(name) or 0.0


def test_records_wait_while_no_broker_answers_then_all_arrive():
    producers: list[FakeProducer] = []
    broker_up = threading.Event()

    def factory():
        if not broker_up.is_set():
            raise KafkaConnectionError()
        producers.append(FakeProducer())
        return producers[-1]

    pub, registry = make(factory)
    pub.start()
    for i in range(100):
        pub.publish("t", b"k", b"%d" % i)
    time.sleep(0.3)
    assert pub.pending == 100
    assert pub.healthy()[0] is False and "cannot connect" in pub.healthy()[1]
    broker_up.set()
    until(lambda: producers and len(producers[0].sent) == 100)
    assert producers[0].ack_all() == [b"%d" % i for i in range(100)]  # order kept
    assert until(lambda: pub.pending == 0) and pub.healthy()[0]
    assert sample(registry, "streamscout_monitor_messages_published_total") == 100
    assert pub.close(timeout=2) == 0


def test_failed_deliveries_are_sent_again():
    producer = FakeProducer()
    pub, registry = make(lambda: producer)
    pub.start()
    for i in range(10):
        pub.publish("t", b"k", b"%d" % i)
    until(lambda: len(producer.sent) == 10)
    producer.fail_all(KafkaTimeoutError("expired"))
    until(lambda: len(producer.sent) == 10)  # re-sent
    assert sorted(producer.ack_all()) == sorted(b"%d" % i for i in range(10))
    assert sample(registry, "streamscout_monitor_publish_errors_total") == 10
    assert until(lambda: pub.pending == 0)
    pub.close(timeout=1)


def test_unacknowledged_records_make_it_unhealthy():
    now = [1000.0]
    producer = FakeProducer()
    pub, _ = make(lambda: producer, stall_seconds=10, recreate_seconds=1e9, clock=lambda: now[0])
    pub.start()
    pub.publish("t", b"k", b"v")
    until(lambda: len(producer.sent) == 1)
    assert pub.healthy()[0]
    now[0] += 11
    ok, detail = pub.healthy()
    assert not ok and "1 records unacknowledged" in detail
    producer.ack_all()
    assert until(lambda: pub.healthy()[0])
    pub.close(timeout=1)


def test_a_wedged_producer_is_replaced_and_its_records_resent():
    now = [0.0]
    producers: list[FakeProducer] = []

    def factory():
        producers.append(FakeProducer())
        return producers[-1]

    pub, _ = make(factory, recreate_seconds=60, clock=lambda: now[0])
    pub.start()
    for i in range(5):
        pub.publish("t", b"k", b"%d" % i)
    until(lambda: producers and len(producers[0].sent) == 5)
    now[0] += 61  # nothing acknowledged for a minute
    until(lambda: len(producers) == 2 and len(producers[1].sent) == 5)
    until(lambda: producers[0].closed_with is not None)
    assert producers[1].ack_all() == [b"%d" % i for i in range(5)]  # taken back in order
    until(lambda: pub.pending == 0)
    # a late answer from the abandoned producer changes nothing
    assert pub.pending == 0
    pub.close(timeout=1)


def test_backlog_overflow_drops_the_oldest_and_counts_it():
    pub, registry = make(lambda: (_ for _ in ()).throw(KafkaConnectionError()), max_backlog=3)
    for i in range(5):
        pub.publish("t", b"k", b"%d" % i)
    assert [v for _, _, v in pub._backlog] == [b"2", b"3", b"4"]
    assert sample(registry, "streamscout_monitor_messages_dropped_total") == 2


def test_a_record_too_large_for_kafka_is_dropped_not_retried_forever():
    producer = FakeProducer(reject=lambda v: MessageSizeTooLargeError("big") if v == b"big" else None)
    pub, registry = make(lambda: producer)
    pub.start()
    for v in (b"a", b"big", b"b"):
        pub.publish("t", b"k", v)
    until(lambda: len(producer.sent) == 2)
    assert producer.ack_all() == [b"a", b"b"]
    assert sample(registry, "streamscout_monitor_messages_dropped_total") == 1
    pub.close(timeout=1)


def test_close_flushes_what_is_queued():
    producer = FakeProducer()
    pub, registry = make(lambda: producer)
    pub.start()
    for i in range(50):
        pub.publish("t", b"k", b"%d" % i)
    assert pub.close(timeout=2) == 0
    assert sample(registry, "streamscout_monitor_messages_published_total") == 50


def test_producer_config_is_acks_all_with_retries():
    config = producer_config("a:1,b:2")
    assert config["bootstrap_servers"] == ["a:1", "b:2"]
    assert config["acks"] == "all" and config["retries"] > 1000


def test_records_go_to_the_partition_kafka_pythons_default_partitioner_picks():
    from kafka.partitioner.default import DefaultPartitioner

    class Cluster:  # the metadata view DefaultPartitioner reads
        def topics(self):
            return {"t"}

        def partitions_for_topic(self, topic):
            return {0, 1, 2}

        def available_partitions_for_topic(self, topic):
            return {0, 1, 2}

    producer = FakeProducer()
    sent_partitions = {}
    original_send = producer.send

    def send(topic, key=None, value=None, partition=None):
        sent_partitions.setdefault(key, set()).add(partition)
        return original_send(topic, key=key, value=value, partition=partition)

    producer.send = send
    pub, _ = make(lambda: producer)
    pub.start()
    keys = [str(71092938 + i).encode() for i in range(30)]
    for key in keys * 3:
        pub.publish("t", key, b"v")
    until(lambda: len(producer.sent) == 90)
    pub.close(timeout=1)
    expected = {k: {DefaultPartitioner().partition("t", k, k, b"v", b"v", Cluster())} for k in keys}
    assert sent_partitions == expected
    assert {p for parts in expected.values() for p in parts} == {0, 1, 2}
