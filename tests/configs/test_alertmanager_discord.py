"""configs/alertmanager.yml delivers to Discord: a private Alertmanager posts to a local receiver.

The Alertmanager is the stack's own component (real binary, committed config rendered as `stack up`
renders it) on a private state dir and port, so the shared stack's Alertmanager is never re-pointed.
"""

from __future__ import annotations

import json
import queue
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import free_port
from streamscout.stack.components import Alertmanager, StackContext
from streamscout.stack.stack import wait_healthy

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
def alertmanager(tmp_path, settings, discord):
    """The stack's Alertmanager component on a private state dir and a free port, pointed at `discord`."""
    url, _ = discord
    ctx = StackContext.from_settings(settings.with_overrides(state_dir=tmp_path, alertmanager_port=free_port()))
    component = Alertmanager(ctx)
    component.start()
    try:
        wait_healthy(component, timeout=30)
        component.point_webhook(url)  # re-renders the config and reloads the running Alertmanager
        yield component.address()
    finally:
        component.stop()


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
