"""configs/alertmanager.yml delivers to Discord: a private Alertmanager posts to a local receiver.

The Alertmanager here is the real binary on free ports with the committed config rendered the way
`stack up` renders it, so the shared stack's Alertmanager is never re-pointed.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import free_port
from streamscout.stack import render
from streamscout.stack.components import ALERTMANAGER_BIN, CONFIGS_DIR
from streamscout.stack.ports import Endpoint

pytestmark = pytest.mark.integration


@pytest.fixture
def discord():
    """A Discord-compatible webhook: records each JSON body, answers 204 like Discord."""
    received: queue.Queue = queue.Queue()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((self.path, json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/webhooks/1/test", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def alertmanager(tmp_path, discord):
    url, _ = discord
    version = subprocess.run([ALERTMANAGER_BIN, "--version"], capture_output=True, text=True)
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        render.render_alertmanager_config(
            (CONFIGS_DIR / "alertmanager.yml").read_text(),
            webhook_url_file=tmp_path / "url", webhook_url=url,
            version=render.alertmanager_version(version.stdout + version.stderr),
        )
    )
    (tmp_path / "url").write_text(url + "\n")
    endpoint = Endpoint("127.0.0.1", free_port())
    log = open(tmp_path / "alertmanager.log", "wb")
    process = subprocess.Popen(
        render.alertmanager_argv(ALERTMANAGER_BIN, config, endpoint, tmp_path / "data"), stdout=log, stderr=log
    )
    base = f"http://{endpoint}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/-/ready", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail((tmp_path / "alertmanager.log").read_text())
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(10)
    log.close()


def test_critical_alert_reaches_discord_with_title_severity_and_description(alertmanager, discord):
    _, received = discord
    alert = [{
        "labels": {"alertname": "StreamMonitoringDown", "severity": "critical", "job": "stream-monitoring",
                   "instance": "127.0.0.1:9100"},
        "annotations": {"summary": "Stream monitoring service 127.0.0.1:9100 is down",
                        "description": "Prometheus has not reached the stream monitoring service for 2 minutes."},
    }]
    request = urllib.request.Request(
        alertmanager + "/api/v2/alerts", data=json.dumps(alert).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10)

    path, payload = received.get(timeout=60)  # critical: group_wait 10 s
    assert path == "/api/webhooks/1/test"
    [embed] = payload["embeds"]
    assert embed["title"] == "[FIRING:1] CRITICAL StreamMonitoringDown"
    assert "**Stream monitoring service 127.0.0.1:9100 is down**" in embed["description"]
    assert "Prometheus has not reached the stream monitoring service for 2 minutes." in embed["description"]
    assert "severity: critical" in embed["description"]
