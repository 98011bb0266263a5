"""The generated configs of the local stack (pure functions, no processes)."""

import base64
from pathlib import Path

import pytest
import yaml

from streamscout.stack import render
from streamscout.stack.ports import Endpoint

pytestmark = pytest.mark.unit


def _properties(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    return dict(pairs)


def test_postgres_listens_only_where_told():
    conf = render.postgres_conf(Endpoint("127.0.0.1", 55432), Path("/s/run"))
    assert "listen_addresses = '127.0.0.1'" in conf
    assert "port = 55432" in conf
    assert "unix_socket_directories = '/s/run'" in conf


def test_postgres_trusts_loopback_only():
    rules = [line.split() for line in render.postgres_hba().splitlines() if line and not line.startswith("#")]
    addresses = {rule[3] for rule in rules if rule[0] == "host"}
    assert addresses == {"127.0.0.1/32", "::1/128"}


def test_redis_persists_under_its_dir():
    argv = render.redis_argv("redis-server", Endpoint("127.0.0.1", 56379), Path("/s/redis"))
    options = dict(zip(argv[1::2], argv[2::2]))
    assert options["--port"] == "56379"
    assert options["--bind"] == "127.0.0.1"
    assert options["--dir"] == "/s/redis"
    assert options["--appendonly"] == "yes"


def test_kafka_cluster_id_is_a_base64_uuid():
    cluster_id = render.kafka_cluster_id()
    assert len(cluster_id) == 22
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    assert render.kafka_cluster_id(b"x" * 16) == render.kafka_cluster_id(b"x" * 16)


def test_kafka_is_one_kraft_node_with_a_separate_controller_port():
    props = _properties(render.kafka_server_properties(Endpoint("127.0.0.1", 59092), 59093, Path("/s/k"), 4))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:59093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:59092,CONTROLLER://127.0.0.1:59093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:59092"
    assert props["log.dirs"] == "/s/k"
    assert props["num.partitions"] == "4"
    assert props["offsets.topic.replication.factor"] == "1"
    assert "zookeeper.connect" not in props


def test_kafka_argv_puts_every_jar_on_the_classpath():
    argv = render.kafka_argv("java", Path("/s/jars/kafka"), Path("/s/conf"), ["kafka.Kafka", "/s/p"])
    assert argv[argv.index("-cp") + 1] == "/s/jars/kafka/*"
    assert argv[-2:] == ["kafka.Kafka", "/s/p"]
    assert "-Dlog4j2.configurationFile=/s/conf/log4j2.properties" in argv


def test_flink_config_targets_the_stack():
    base = {"env": {"java": {"opts": {"all": "--add-opens=java.base/java.util=ALL-UNNAMED"}}}, "rest": {"port": 8081}}
    config = render.flink_config(
        base=base,
        rest=Endpoint("127.0.0.1", 58081), python=Path("/repo/.venv/bin/python"),
        checkpoint_dir=Path("/s/flink/checkpoints"), tmp_dir=Path("/s/flink/tmp"),
    )
    assert config["rest.port"] == 58081
    assert config["env.java.opts.all"] == "--add-opens=java.base/java.util=ALL-UNNAMED"
    assert config["rest.bind-address"] == "127.0.0.1"
    assert config["taskmanager.numberOfTaskSlots"] == 4
    assert config["python.executable"] == "/repo/.venv/bin/python"
    assert config["execution.checkpointing.dir"] == "file:///s/flink/checkpoints"
    assert config["metrics.reporter.prom.factory.class"].endswith("PrometheusReporterFactory")
    # One file for both processes: each gets its reporter port on its command line instead.
    assert "metrics.reporter.prom.port" not in config
    assert yaml.safe_load(render.flink_config_yaml(config)) == config


def test_flatten_joins_nested_keys():
    assert render.flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": [1]}) == {"a.b": 1, "a.c.d": "x", "e": [1]}


def test_flink_memory_fits_the_machine():
    def mebibytes(size: str) -> int:
        assert size.endswith("m")
        return int(size[:-1])

    total = mebibytes(render.FLINK_JOBMANAGER_MEMORY) + mebibytes(render.FLINK_TASKMANAGER_MEMORY)
    assert total <= 6 * 1024  # a quarter of the 24 GiB box, leaving the rest to Kafka and the services


def test_node_exporter_and_prometheus_listen_on_loopback():
    assert "--web.listen-address=127.0.0.1:9101" in render.node_exporter_argv("ne", Endpoint("127.0.0.1", 9101))
    argv = render.prometheus_argv("prom", Path("/c/p.yml"), Endpoint("127.0.0.1", 9090), Path("/s/prom"))
    assert "--web.listen-address=127.0.0.1:9090" in argv
    assert "--config.file=/c/p.yml" in argv


def test_alertmanager_runs_without_a_cluster_port():
    argv = render.alertmanager_argv("am", Path("/s/am.yml"), Endpoint("127.0.0.1", 9093), Path("/s/am"))
    assert "--cluster.listen-address=" in argv
    assert "--web.listen-address=127.0.0.1:9093" in argv


@pytest.mark.parametrize(
    "output, version",
    [("alertmanager, version 0.25.0 (branch: debian/sid)", (0, 25)), ("alertmanager, version 0.28.1 (x)", (0, 28))],
)
def test_alertmanager_version_is_read(output, version):
    assert render.alertmanager_version(output) == version


def test_alertmanager_version_garbage_is_an_error():
    with pytest.raises(ValueError, match="version"):
        render.alertmanager_version("command not found")


TEMPLATE = """receivers:
  - name: discord
    discord_configs:
      - webhook_url_file: /run/credentials/alertmanager.service/discord-webhook-url
        send_resolved: true
"""


def test_alertmanager_keeps_the_url_in_a_file_when_it_can():
    text = render.render_alertmanager_config(
        TEMPLATE, webhook_url_file=Path("/s/am/url"), webhook_url="http://secret", version=(0, 26)
    )
    config = yaml.safe_load(text)["receivers"][0]["discord_configs"][0]
    assert config == {"webhook_url_file": "/s/am/url", "send_resolved": True}
    assert "secret" not in text


def test_alertmanager_025_gets_the_url_inline():
    url = 'http://127.0.0.1:9/a b"c'
    text = render.render_alertmanager_config(
        TEMPLATE, webhook_url_file=Path("/s/am/url"), webhook_url=url, version=(0, 25)
    )
    config = yaml.safe_load(text)["receivers"][0]["discord_configs"][0]
    assert config == {"webhook_url": url, "send_resolved": True}


def test_alertmanager_template_without_the_file_line_is_refused():
    with pytest.raises(ValueError, match="webhook_url_file"):
        render.render_alertmanager_config(
            "route: {}\n", webhook_url_file=Path("/x"), webhook_url="http://x", version=(0, 25)
        )
