"""The Grafana dashboard and provisioning, Loki and Alloy configs (structure; PromQL in the integration test)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard

pytestmark = pytest.mark.unit

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DASHBOARD = CONFIGS / "grafana" / "dashboards" / "streamscout-overview.json"
PROMETHEUS_UID = "streamscout-prometheus"
LOKI_UID = "streamscout-loki"


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def data_panels(board: dict) -> list[dict]:
    return [p for p in board["panels"] if p["type"] != "row"]


def dropped_by_schema(original: object, roundtrip: object, path: str = "") -> list[str]:
    """Paths of `original` that Grafana's schema models (foundation SDK) do not know or changed."""
    if isinstance(original, dict):
        if not isinstance(roundtrip, dict):
            return [path]
        problems = []
        for key, value in original.items():
            if key not in roundtrip:
                problems.append(f"{path}/{key}")
            else:
                problems += dropped_by_schema(value, roundtrip[key], f"{path}/{key}")
        return problems
    if isinstance(original, list):
        if not isinstance(roundtrip, list) or len(original) != len(roundtrip):
            return [path]
        return [p for i, (a, b) in enumerate(zip(original, roundtrip)) for p in dropped_by_schema(a, b, f"{path}[{i}]")]
    return [] if original == roundtrip else [path]


def schema_roundtrip(board: dict) -> object:
    model = Dashboard.from_json(board).to_json()
    return json.loads(json.dumps(model, default=lambda o: o.to_json() if hasattr(o, "to_json") else str(o)))


def test_dashboard_matches_grafanas_schema():
    board = dashboard()
    assert dropped_by_schema(board, schema_roundtrip(board)) == []


def test_schema_check_notices_an_unknown_field():
    board = dashboard()
    board["panels"][1]["gridPosition"] = {"h": 1}
    assert dropped_by_schema(board, schema_roundtrip(board)) == ["/panels[1]/gridPosition"]


def test_dashboard_identity():
    board = dashboard()
    assert board["uid"] == "streamscout-overview"
    assert board["title"] == "StreamScout Overview"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_spec_panels_and_operator_extras_are_there():
    titles = {p["title"]: p["type"] for p in data_panels(dashboard())}
    assert titles["Active Streams"] == "stat"
    assert titles["Chat Message Rate"] == "stat"
    assert titles["Chat Message Rate Over Time"] == "timeseries"
    assert titles["Flink Processing Rate"] == "timeseries"
    for extra in ["Anomalies and Clips", "Clip Failures by Reason", "Kafka Consumer Lag", "API Latency", "Component Up/Down"]:
        assert extra in titles


def test_every_panel_and_query_uses_the_prometheus_datasource_by_uid():
    for panel in data_panels(dashboard()):
        assert panel["datasource"] == {"type": "prometheus", "uid": PROMETHEUS_UID}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == PROMETHEUS_UID, panel["title"]
            assert target["expr"].strip(), panel["title"]
            assert target["refId"], panel["title"]


def test_panels_do_not_overlap():
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & taken, panel["title"]
        taken |= cells


def test_datasource_provisioning_declares_the_uids():
    provisioning = yaml.safe_load((CONFIGS / "grafana" / "provisioning" / "datasources" / "streamscout.yml").read_text())
    by_uid = {d["uid"]: d for d in provisioning["datasources"]}
    assert by_uid[PROMETHEUS_UID]["type"] == "prometheus"
    assert by_uid[PROMETHEUS_UID]["url"] == "http://127.0.0.1:9090"
    assert by_uid[LOKI_UID]["type"] == "loki"
    assert by_uid[LOKI_UID]["url"] == "http://127.0.0.1:3100"


def test_dashboard_provisioning_loads_a_folder_of_json():
    provisioning = yaml.safe_load((CONFIGS / "grafana" / "provisioning" / "dashboards" / "streamscout.yml").read_text())
    [provider] = provisioning["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]


def test_loki_listens_on_loopback_with_a_tsdb_schema():
    loki = yaml.safe_load((CONFIGS / "loki.yml").read_text())
    assert loki["server"]["http_listen_address"] == "127.0.0.1"
    assert loki["server"]["http_listen_port"] == 3100
    [schema] = loki["schema_config"]["configs"]
    assert (schema["store"], schema["schema"]) == ("tsdb", "v13")


def test_alloy_ships_the_journal_to_loki_labelled_by_unit():
    text = (CONFIGS / "alloy" / "config.alloy").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    assert code.count("{") == code.count("}")
    assert 'loki.source.journal "system"' in code
    assert 'source_labels = ["__journal__systemd_unit"]' in code
    assert 'target_label  = "unit"' in code
    assert 'url = "http://127.0.0.1:3100/loki/api/v1/push"' in code
    # Every component a block forwards to is defined in the file.
    for kind, name in [("loki.process", "streamscout"), ("loki.write", "local")]:
        assert f'{kind} "{name}"' in code
        assert re.search(rf"forward_to\s*=\s*\[{re.escape(kind)}\.{name}\.receiver\]", code)
