"""Pure config generation for the local stack: settings and paths in, file text or argv out.

Nothing here touches the file system or starts anything, so every generated config is unit
tested (tests/stack/test_render.py) and the components in :mod:`streamscout.stack.components`
stay thin.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path

import yaml

from streamscout.stack.ports import Endpoint

# Flink's JobManager RPC port: fixed (not Flink's 6123) so it sits in the stack's 5xxxx range.
FLINK_RPC_PORT = 56123
FLINK_TASK_SLOTS = 4
# Sized for a 2-core, 24 GiB machine that also runs Kafka, Postgres and the services.
FLINK_JOBMANAGER_MEMORY = "1024m"
FLINK_TASKMANAGER_MEMORY = "3072m"
KAFKA_HEAP = ["-Xms256m", "-Xmx768m"]
KAFKA_NODE_ID = 1


def postgres_conf(endpoint: Endpoint, socket_dir: Path) -> str:
    """``streamscout.conf`` included from the cluster's postgresql.conf."""
    return "\n".join(
        [
            "# Written by `streamscout stack up`; edits are overwritten on the next start.",
            f"listen_addresses = '{endpoint.host}'",
            f"port = {endpoint.port}",
            f"unix_socket_directories = '{socket_dir}'",
            "max_connections = 300",  # eight services and every test module's pool
            "shared_buffers = 256MB",
            "timezone = 'UTC'",
            "log_timezone = 'UTC'",
            "logging_collector = off",
            "log_min_messages = warning",
            "",
        ]
    )


def postgres_hba() -> str:
    """Trust on loopback and the socket only: a developer stack, never reachable from outside."""
    return "\n".join(
        [
            "# TYPE  DATABASE USER ADDRESS       METHOD",
            "local   all      all                trust",
            "host    all      all  127.0.0.1/32  trust",
            "host    all      all  ::1/128       trust",
            "",
        ]
    )


def redis_argv(binary: str, endpoint: Endpoint, data_dir: Path) -> list[str]:
    """redis-server in the foreground with append-only persistence, so data survives `down`."""
    return [
        binary,
        "--bind", endpoint.host,
        "--port", str(endpoint.port),
        "--dir", str(data_dir),
        "--daemonize", "no",
        "--appendonly", "yes",
        "--save", "60 1",
        "--protected-mode", "yes",
        "--logfile", "",
    ]


def kafka_cluster_id(seed: bytes | None = None) -> str:
    """A KRaft cluster id: a UUID as 22 characters of URL-safe base64, as kafka-storage prints."""
    raw = uuid.UUID(bytes=seed[:16]).bytes if seed else uuid.uuid4().bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def kafka_server_properties(
    broker: Endpoint, controller_port: int, log_dir: Path, partitions: int
) -> str:
    """One combined broker+controller node (KRaft, no ZooKeeper) on loopback."""
    controller = Endpoint(broker.host, controller_port)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(KAFKA_NODE_ID),
        "controller.quorum.voters": f"{KAFKA_NODE_ID}@{controller}",
        "listeners": f"PLAINTEXT://{broker},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{broker}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": str(partitions),
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "24",
        "log.segment.bytes": str(64 * 1024 * 1024),
    }
    lines = ["# Written by `streamscout stack up`; edits are overwritten on the next start."]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def kafka_log4j2() -> str:
    """Console logging (the stack captures stdout into var/log/kafka.log), quiet by default."""
    return "\n".join(
        [
            "status = warn",
            "appender.console.type = Console",
            "appender.console.name = STDOUT",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = [%d{ISO8601}] %p %m (%c)%n",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.stdout.ref = STDOUT",
            "logger.kafka.name = kafka",
            "logger.kafka.level = WARN",
            "logger.apache.name = org.apache.kafka",
            "logger.apache.level = WARN",
            "logger.state.name = state.change.logger",
            "logger.state.level = WARN",
            "logger.server.name = kafka.server.KafkaRaftServer",
            "logger.server.level = INFO",
            "",
        ]
    )


def kafka_argv(java: str, jars_dir: Path, config_dir: Path, main: list[str]) -> list[str]:
    return [
        java,
        *KAFKA_HEAP,
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={config_dir / 'log4j2.properties'}",
        "-cp",
        f"{jars_dir}/*",
        *main,
    ]


def flatten(nested: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: Flink's config.yaml accepts either form."""
    flat = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def flink_config(
    *,
    base: dict,
    rest: Endpoint,
    python: Path,
    checkpoint_dir: Path,
    tmp_dir: Path,
    slots: int = FLINK_TASK_SLOTS,
) -> dict:
    """Flink 2.x ``config.yaml`` (flat keys) for one JobManager and one TaskManager on loopback.

    ``base`` is the distribution's own config.yaml: it carries the JVM ``--add-opens`` flags
    Flink needs on Java 17, which are kept; everything the stack cares about is overridden.

    The Prometheus reporter's port is not here: the JobManager and TaskManager share this
    file and get their own port with ``-D metrics.reporter.prom.port=...`` at start-up.
    """
    return flatten(base) | {
        "jobmanager.rpc.address": rest.host,
        "jobmanager.rpc.port": FLINK_RPC_PORT,
        "jobmanager.bind-host": rest.host,
        "taskmanager.bind-host": rest.host,
        "taskmanager.host": rest.host,
        "rest.address": rest.host,
        "rest.bind-address": rest.host,
        "rest.port": rest.port,
        "jobmanager.memory.process.size": FLINK_JOBMANAGER_MEMORY,
        "taskmanager.memory.process.size": FLINK_TASKMANAGER_MEMORY,
        # Every submitted job loads the Kafka connector and PyFlink's classes again; 256 MiB of
        # metaspace ran out after a few dozen submissions (a test suite's worth).
        "taskmanager.memory.jvm-metaspace.size": "768m",
        "taskmanager.numberOfTaskSlots": slots,
        "parallelism.default": 1,
        "jobmanager.execution.failover-strategy": "region",
        "execution.checkpointing.dir": checkpoint_dir.as_uri(),
        "execution.checkpointing.savepoint-dir": (checkpoint_dir.parent / "savepoints").as_uri(),
        "state.backend.type": "hashmap",
        "io.tmp.dirs": str(tmp_dir),
        "python.executable": str(python),
        "python.client.executable": str(python),
        "metrics.reporters": "prom",
        "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        "metrics.reporter.prom.host": rest.host,
        "web.submit.enable": True,
        "web.cancel.enable": True,
    }


def flink_config_yaml(config: dict) -> str:
    return "# Written by `streamscout stack up`; edits are overwritten on the next start.\n" + yaml.safe_dump(
        config, sort_keys=True
    )


def prometheus_argv(binary: str, config: Path, endpoint: Endpoint, data_dir: Path) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={endpoint}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=7d",
    ]


def node_exporter_argv(binary: str, endpoint: Endpoint) -> list[str]:
    return [
        binary,
        f"--web.listen-address={endpoint}",
        # Only what the dashboards and alerts use; the rest costs CPU on a 2-core box.
        "--collector.disable-defaults",
        "--collector.meminfo",
        "--collector.cpu",
        "--collector.loadavg",
        "--collector.filesystem",
        "--collector.netdev",
        "--collector.time",
    ]


def alertmanager_argv(binary: str, config: Path, endpoint: Endpoint, data_dir: Path) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.path={data_dir}",
        f"--web.listen-address={endpoint}",
        "--cluster.listen-address=",  # a single instance: no gossip port to collide with
    ]


# Alertmanager learned `webhook_url_file` for Discord in 0.26; Debian 12 ships 0.25.
_DISCORD_URL_FILE_SINCE = (0, 26)
_WEBHOOK_FILE_LINE = re.compile(r"^(?P<indent>\s*(?:-\s+)?)webhook_url_file:\s*\S+\s*$", re.MULTILINE)


def alertmanager_version(version_output: str) -> tuple[int, int]:
    """``alertmanager, version 0.25.0 (...)`` -> (0, 25)."""
    match = re.search(r"version (\d+)\.(\d+)", version_output)
    if not match:
        raise ValueError(f"cannot read Alertmanager's version from {version_output!r}")
    return int(match[1]), int(match[2])


def render_alertmanager_config(
    template: str, *, webhook_url_file: Path, webhook_url: str, version: tuple[int, int]
) -> str:
    """The committed config with the webhook pointing at this stack's secret file.

    Alertmanager >= 0.26 reads the URL from the file at notification time; older versions
    (Debian 12's 0.25) only take ``webhook_url`` inline, so the URL is written into this
    generated copy, which lives under the state directory and is never committed.
    """
    if not _WEBHOOK_FILE_LINE.search(template):
        raise ValueError("configs/alertmanager.yml has no webhook_url_file line to point at the stack's file")
    if version >= _DISCORD_URL_FILE_SINCE:
        replacement = f"webhook_url_file: {webhook_url_file}"
    else:
        replacement = f"webhook_url: {json.dumps(webhook_url)}"  # a JSON string is a YAML string
    return _WEBHOOK_FILE_LINE.sub(lambda m: m["indent"] + replacement, template)
