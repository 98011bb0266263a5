"""The local stack (`streamscout stack ...`) and where its pieces live on disk.

Other packages need two paths from here: the Flink Kafka connector jar (for
``pipeline.jars`` / ``flink run --jarfile``) and the Flink ``bin/flink`` launcher.
"""

from __future__ import annotations

from pathlib import Path

from streamscout.common.config import Settings

# Pinned in tools/jvm/pom.xml; `make setup` downloads it and checks its sha256 (tools/jvm/jars.lock).
FLINK_KAFKA_CONNECTOR = "flink-sql-connector-kafka-5.0.0-2.2.jar"


def flink_kafka_connector_jar(settings: Settings) -> Path:
    """Absolute path of the Flink Kafka SQL connector jar; raises if `make setup` has not run."""
    path = (settings.state_dir / "jars" / "flink" / FLINK_KAFKA_CONNECTOR).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `make setup` (it fetches the connector)")
    return path


def flink_conf_dir(settings: Settings) -> Path:
    """The conf dir `stack up` generated; `flink run` with FLINK_CONF_DIR set to it targets the stack."""
    return (settings.state_dir / "flink" / "conf").resolve()
