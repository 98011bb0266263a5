"""Each component of the running local stack is real (`make test` starts it first)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from streamscout.common.db import migrate
from streamscout.stack import flink_conf_dir, flink_kafka_connector_jar
from streamscout.stack.components import pyflink_home

pytestmark = pytest.mark.integration

STREAMSCOUT = str(Path(sys.prefix) / "bin" / "streamscout")
HERE = Path(__file__).parent


def cli_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "STREAMSCOUT_TEST_DATASETS"}
    env.update(overrides)
    return env


def http_json(url: str, data: bytes | None = None) -> object:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def test_status_json_lists_every_component_running(settings):
    result = subprocess.run([STREAMSCOUT, "stack", "status", "--json"], env=cli_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert {name: entry["state"] for name, entry in report.items()} == {
        name: "running"
        for name in ["postgres", "redis", "kafka", "flink-jobmanager", "flink-taskmanager",
                     "node-exporter", "prometheus", "alertmanager"]
    }
    assert report["postgres"]["address"] == settings.postgres_dsn
    assert report["redis"]["address"] == settings.redis_url
    assert report["kafka"]["address"] == settings.kafka_bootstrap
    assert report["flink-jobmanager"]["address"] == settings.flink_rest_url
    assert report["prometheus"]["address"] == f"http://127.0.0.1:{settings.prometheus_port}"
    assert report["alertmanager"]["address"] == f"http://127.0.0.1:{settings.alertmanager_port}"


def test_postgres_row_written_and_read_back(postgres_dsn):
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE stack_probe (id SERIAL PRIMARY KEY, note TEXT NOT NULL)")
        conn.execute("INSERT INTO stack_probe (note) VALUES (%s)", ("written by tests/stack",))
        assert conn.execute("SELECT note FROM stack_probe").fetchall() == [("written by tests/stack",)]


def test_migrate_twice_is_a_no_op(postgres_dsn):
    assert migrate(postgres_dsn) == []  # the fixture migrated already
    env = cli_env(STREAMSCOUT_POSTGRES_DSN=postgres_dsn)
    result = subprocess.run([STREAMSCOUT, "db", "migrate"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "schema is up to date"
    with psycopg.connect(postgres_dsn) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == sorted(set(versions)) and versions[:2] == [1, 2]


def test_redis_key_with_ttl(settings):
    client = redis.Redis.from_url(settings.redis_url)
    key = f"stack-test:{uuid.uuid4().hex}"
    client.set(key, "alive", ex=30)
    try:
        assert client.get(key) == b"alive"
        assert 0 < client.ttl(key) <= 30
    finally:
        client.delete(key)


@pytest.fixture
def topics(settings):
    """Two throw-away topics, deleted afterwards."""
    names = [f"stack-test-{uuid.uuid4().hex[:8]}-{suffix}" for suffix in ("in", "out")]
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1) for name in names])
    yield names
    admin.delete_topics(names)
    admin.close()


def test_stack_created_the_streamscout_topics(settings):
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics([settings.topic_chat, settings.topic_lifecycle])}
    finally:
        admin.close()
    for topic in (settings.topic_chat, settings.topic_lifecycle):
        assert described[topic]["error_code"] == 0
        assert len(described[topic]["partitions"]) == settings.kafka_partitions


def test_kafka_record_produced_and_consumed(settings, topics):
    topic = topics[0]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    sent = [(b"12345", b"first"), (b"12345", b"second"), (b"678", b"third")]
    for key, value in sent:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10000
    )
    received = []
    for record in consumer:
        received.append((record.key, record.value))
        if len(received) == len(sent):
            break
    consumer.close()
    assert received == sent


def test_pyflink_job_on_the_cluster_reads_kafka_through_the_connector(settings, topics):
    source, sink = topics
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for line in (b"pog", b"kekw"):
        producer.send(source, line)
    producer.flush()
    producer.close()

    env = cli_env(FLINK_CONF_DIR=str(flink_conf_dir(settings)))
    submit = subprocess.run(
        [str(pyflink_home() / "bin" / "flink"), "run",
         "--python", str(HERE / "flink_kafka_job.py"),
         "--jarfile", str(flink_kafka_connector_jar(settings)),
         settings.kafka_bootstrap, source, sink],
        env=env, capture_output=True, text=True, timeout=420,
    )
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
    assert "Job has been submitted" in submit.stdout

    consumer = KafkaConsumer(
        sink, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=30000
    )
    lines = []
    for record in consumer:
        lines.append(record.value)
        if len(lines) == 2:
            break
    consumer.close()
    assert sorted(lines) == [b"KEKW!", b"POG!"]


def _query(settings, promql: str) -> list:
    url = f"http://127.0.0.1:{settings.prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    body = http_json(url)
    assert body["status"] == "success"
    return body["data"]["result"]


@pytest.mark.parametrize("job", ["prometheus", "flink-jobmanager", "flink-taskmanager", "node"])
def test_prometheus_scrapes_the_stack(settings, job):
    # A freshly started Prometheus scrapes every 15 s; wait for the first one (not a timing claim).
    deadline = time.monotonic() + 60
    while True:
        result = _query(settings, f'up{{job="{job}"}}')
        if result or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert [sample["value"][1] for sample in result] == ["1"]


def test_prometheus_loaded_the_alert_rules(settings):
    groups = http_json(f"http://127.0.0.1:{settings.prometheus_port}/api/v1/rules")["data"]["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"StreamMonitoringDown", "KafkaConsumerLagHigh", "FlinkTaskManagerDown"} <= names


def test_alertmanager_api_answers_and_holds_an_alert(settings):
    base = f"http://127.0.0.1:{settings.alertmanager_port}/api/v2"
    status = http_json(f"{base}/status")
    assert status["cluster"]["status"] == "disabled"
    assert "discord_configs" in status["config"]["original"]

    marker = uuid.uuid4().hex
    alert = [{"labels": {"alertname": "StackSelfTest", "severity": "info", "probe": marker},
              "annotations": {"summary": "tests/stack probe"}}]
    http_json(f"{base}/alerts", data=json.dumps(alert).encode())
    held = http_json(f"{base}/alerts?" + urllib.parse.urlencode({"filter": f'probe="{marker}"'}))
    assert [a["labels"]["alertname"] for a in held] == ["StackSelfTest"]
