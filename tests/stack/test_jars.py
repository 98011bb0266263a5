"""The pinned JVM pieces: pom, lock file and the paths the stack hands out agree."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from streamscout.common.config import load_settings
from streamscout.stack import FLINK_KAFKA_CONNECTOR, flink_kafka_connector_jar

REPO = Path(__file__).resolve().parents[2]
POM = REPO / "tools" / "jvm" / "pom.xml"
LOCK = REPO / "tools" / "jvm" / "jars.lock"
NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def pom_property(name: str) -> str:
    return ET.parse(POM).getroot().find(f"m:properties/m:{name}", NS).text


def lock_entries() -> dict[str, str]:
    entries = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            digest, path = line.split()
            assert re.fullmatch(r"[0-9a-f]{64}", digest), line
            entries[path] = digest
    return entries


@pytest.mark.unit
def test_lock_pins_the_versions_of_the_pom():
    entries = lock_entries()
    assert f"kafka/kafka_2.13-{pom_property('kafka.version')}.jar" in entries
    assert f"kafka/kafka-clients-{pom_property('kafka.version')}.jar" in entries
    assert f"flink/{FLINK_KAFKA_CONNECTOR}" in entries
    assert FLINK_KAFKA_CONNECTOR == f"flink-sql-connector-kafka-{pom_property('flink.kafka.connector.version')}.jar"
    # One version of each artifact: two on a classpath would pick one by accident.
    names = [re.sub(r"-\d[\w.+-]*\.jar$", "", Path(p).name) for p in entries]
    assert len(names) == len(set(names))


@pytest.mark.unit
def test_connector_path_without_setup_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="make setup"):
        flink_kafka_connector_jar(load_settings({"STREAMSCOUT_STATE_DIR": str(tmp_path)}))


@pytest.mark.integration
def test_connector_jar_after_setup_is_the_locked_one(settings):
    import hashlib

    jar = flink_kafka_connector_jar(settings)
    assert hashlib.sha256(jar.read_bytes()).hexdigest() == lock_entries()[f"flink/{FLINK_KAFKA_CONNECTOR}"]
