"""A Kafka outage of 30 s loses no chat record, and the monitor recovers by itself.

The stack's shared broker must not be stopped, so this starts a throwaway KRaft broker of its
own on free ports (the stack's Kafka component with a temporary state directory that borrows
the stack's broker jars), SIGKILLs it for 30 s, and starts it again on the same data.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from conftest import free_port
from monitor_harness import RunningMonitor, consume, create_topics, monitor_settings, wait_for

from streamscout.common.schemas import validate_chat_message
from streamscout.stack.components import Kafka, StackContext
from streamscout.stack.stack import wait_healthy

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 30


@pytest.fixture(scope="module")
def own_kafka(settings, tmp_path_factory):
    jars = settings.state_dir.resolve() / "jars"
    if not any((jars / "kafka").glob("kafka_2.13-*.jar")):
        pytest.skip(f"no Kafka broker jars in {jars / 'kafka'} (run `make setup`)")
    state = tmp_path_factory.mktemp("kafka-state")
    (state / "jars").symlink_to(jars)
    ctx = StackContext(
        settings.with_overrides(kafka_bootstrap=f"127.0.0.1:{free_port()}", kafka_controller_port=free_port()),
        state,
    )
    kafka = Kafka(ctx)
    kafka.start()
    try:
        wait_healthy(kafka, timeout=120)
        yield kafka
    finally:
        kafka.daemon.stop(signal.SIGKILL, timeout=5)


def health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_kafka_outage_loses_nothing_and_recovers_unattended(sim, settings, postgres_dsn, own_kafka):
    s = sim({"name": "steady", "channels": [
        {"login": "busy", "id": "2001", "viewers": 5000, "chat": {"rate": 60}},
        {"login": "calm", "id": "2002", "viewers": 4000, "chat": {"rate": 20}},
    ]})
    cfg = monitor_settings(settings, s, postgres_dsn, free_port(), kafka_bootstrap=own_kafka.address())
    create_topics(cfg)
    with RunningMonitor(cfg, s) as run:
        received = lambda: run.metric("streamscout_monitor_messages_received_total")  # noqa: E731
        published = lambda: run.metric("streamscout_monitor_messages_published_total")  # noqa: E731
        wait_for(lambda: received() > 200 and published() > 200, 30, "records flowing")
        assert health(cfg.monitor_port)[0] == 200

        own_kafka.daemon.stop(signal.SIGKILL, timeout=5)
        killed_at = time.monotonic()
        status, body = wait_for(lambda: (lambda h: h if h[0] == 503 else None)(health(cfg.monitor_port)),
                                25, "/health to report Kafka down")
        assert body["components"]["kafka"]["ok"] is False and body["components"]["chat"]["ok"] is True
        during = received()
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - killed_at)))
        assert received() > during + 500  # chat kept being read into the backlog
        assert run.monitor.publisher.pending > 500
        assert run.error is None and run._thread.is_alive()

        own_kafka.start()
        wait_healthy(own_kafka, timeout=120)
        wait_for(lambda: run.monitor.publisher.pending < 50 and published() >= received() - 50, 90,
                 "the backlog to drain")
        wait_for(lambda: health(cfg.monitor_port)[0] == 200, 30, "/health back to 200")
    total_received = received()
    records = [validate_chat_message(v) for _, v in consume(cfg, cfg.topic_chat, idle_seconds=8)]
    counts = Counter(r["message_id"] for r in records)
    # at-least-once: every record the monitor read is in Kafka (duplicates would be allowed)
    assert len(counts) == total_received
    print(f"received {total_received:.0f}, in Kafka {len(records)} ({len(records) - len(counts)} duplicates)")
