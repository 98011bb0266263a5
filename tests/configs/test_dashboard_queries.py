"""Every PromQL expression of the dashboard is accepted by the stack's real Prometheus."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).resolve().parents[2] / "configs" / "grafana" / "dashboards" / "streamscout-overview.json"


def expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] if p["type"] != "row" for t in p["targets"]]


@pytest.mark.parametrize("expr", expressions())
def test_expression_is_valid_promql(settings, expr):
    url = f"http://127.0.0.1:{settings.prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 400 with Prometheus's parse error
        pytest.fail(f"{expr!r}: {exc.read().decode()}")
    assert body["status"] == "success"
