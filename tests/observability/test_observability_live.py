"""The observability configs proven on the running stack with the real pipeline.

The pipeline runs on the ports `configs/prometheus.yml` scrapes (monitor 9100, API 8080): the
Twitch simulator, a seeded token, `streamscout monitor` and `streamscout api` as processes, and
the detector job on the stack's Flink, all on this module's own topics and database. Then:

1. Prometheus shows every target of `configs/prometheus.yml` up;
2. every PromQL expression of the Grafana dashboard returns data;
3. stopping the monitor fires StreamMonitoringDown through the stack's Alertmanager into a
   Discord-compatible webhook receiver started here, and the Discord JSON is checked.

The tests share one pipeline and run in file order (the last one stops the monitor). The
shared Alertmanager is pointed at the receiver only for the alert test and restored after.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import shutil
import signal
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT
from streamscout.common.config import Settings, env_name, load_settings
from streamscout.detector.submit import job_name
from streamscout.sim import start_simulator
from streamscout.stack.components import Alertmanager, StackContext
from streamscout.stack.ports import Endpoint, port_in_use
from streamscout.supervisor.pipeline import Pipeline, simulator_env
from streamscout.supervisor.process import Supervisor

pytestmark = pytest.mark.integration

CONFIGS = REPO_ROOT / "configs"
DASHBOARD = CONFIGS / "grafana" / "dashboards" / "streamscout-overview.json"
LOGS = REPO_ROOT / "test-output" / "observability"

# Three channels, one of which refuses clipping; bursts once the 20 s baseline has filled.
SCENARIO = {
    "name": "observability",
    "seed": 11,
    "channels": [
        {"login": "obs_alpha", "id": "930001", "viewers": 50000, "chat": {"rate": 8, "burstiness": 0.2}},
        {"login": "obs_bravo", "id": "930002", "viewers": 40000, "chat": {"rate": 5, "burstiness": 0.2}},
        {"login": "obs_noclip", "id": "930003", "viewers": 30000, "clipping": False,
         "chat": {"rate": 5, "burstiness": 0.2}},
    ],
    "events": [
        {"type": "burst", "channel": "obs_alpha", "at": 50, "duration": 12, "multiplier": 8},
        {"type": "burst", "channel": "obs_noclip", "at": 70, "duration": 12, "multiplier": 8},
    ],
}


# --- small HTTP helpers ---------------------------------------------------------------------


def get_json(url: str, timeout: float = 10.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


class Prometheus:
    def __init__(self, settings: Settings) -> None:
        self.url = f"http://127.0.0.1:{settings.prometheus_port}"

    def query(self, expr: str) -> list[dict]:
        body = get_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert body["status"] == "success", body
        return body["data"]["result"]

    def targets(self) -> list[dict]:
        return get_json(f"{self.url}/api/v1/targets?state=active")["data"]["activeTargets"]

    def alerts(self, name: str) -> list[dict]:
        return [a for a in get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
                if a["labels"].get("alertname") == name]


def remaining_problems(deadline_seconds: float, find_problems, interval: float = 3.0) -> list[str]:
    """Call ``find_problems()`` until it returns nothing or the deadline passes; returns what was
    still wrong at the end (the caller asserts it is empty, so a timeout says what is missing)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        problems = find_problems()
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(interval)


# --- the pipeline on the default ports ------------------------------------------------------


@dataclass
class LivePipeline:
    pipeline: Pipeline
    api_url: str
    job: str


def stack_state_dir(settings: Settings) -> Path:
    """The running stack's state directory (a relative setting is relative to the repository)."""
    return settings.state_dir if settings.state_dir.is_absolute() else REPO_ROOT / settings.state_dir


def scraped_endpoints() -> list[tuple[str, str]]:
    """(job, host:port) of every static target in configs/prometheus.yml."""
    config = yaml.safe_load((CONFIGS / "prometheus.yml").read_text())
    return [(job["job_name"], target) for job in config["scrape_configs"]
            for static in job["static_configs"] for target in static["targets"]]


@pytest.fixture(scope="module")
def live(settings, postgres_dsn, tmp_path_factory):
    """Simulator, token, monitor, API and detector job, on the ports Prometheus scrapes."""
    for name, port in (("monitor", settings.monitor_port), ("API", settings.api_port)):
        if port_in_use(Endpoint("127.0.0.1", port)):
            pytest.fail(f"port {port} (the {name}'s, scraped by configs/prometheus.yml) is taken by another "
                        f"process: stop it (e.g. a running `streamscout demo`) before this test")

    suffix = uuid.uuid4().hex[:8]
    run_dir = tmp_path_factory.mktemp("observability")
    with pytest.MonkeyPatch.context() as mp:
        # Children get os.environ plus our settings: no stray STREAMSCOUT_* of the caller may leak in.
        for key in [k for k in os.environ if k.startswith("STREAMSCOUT_")]:
            mp.delenv(key)
        sim = start_simulator(SCENARIO, clip_delay=2)
        pipeline = None
        try:
            env = dict(os.environ)
            env.update(simulator_env(sim.info, run_dir / "tokens.json"))
            env.update({
                env_name("postgres_dsn"): postgres_dsn,
                env_name("topic_chat"): f"obs-chat-{suffix}",
                env_name("topic_lifecycle"): f"obs-lifecycle-{suffix}",
                env_name("detector_bucket_seconds"): "1",
                env_name("detector_baseline_buckets"): "20",
                env_name("detector_min_excess"): "12",
                env_name("monitor_poll_seconds"): "10",
                env_name("state_dir"): str(stack_state_dir(settings)),
            })
            run_settings = load_settings(env)
            shutil.rmtree(LOGS, ignore_errors=True)  # monitor.log and api.log of this run only
            LOGS.mkdir(parents=True)
            pipeline = Pipeline(run_settings, env, Supervisor(LOGS, stop_grace_seconds=15), keep_stack=True)
            pipeline.seed_tokens(f"{sim.base_url}/sim/device/approve")
            pipeline.start_services()  # tokens check, monitor + API (never restarted: we do not poll), job
            yield LivePipeline(pipeline, f"http://127.0.0.1:{run_settings.api_port}", job_name(run_settings))
        finally:
            if pipeline is not None:
                pipeline.stop()  # cancels this topic's job, stops monitor and API
            sim.stop()


# --- 1. every target up ---------------------------------------------------------------------


def test_prometheus_shows_every_configured_target_up(live, settings):
    prometheus = Prometheus(settings)
    expected = set(scraped_endpoints())

    def not_up() -> list[str]:
        health = {(t["labels"]["job"], t["labels"]["instance"]): t for t in prometheus.targets()}
        problems = []
        for job, instance in sorted(expected):
            target = health.get((job, instance))
            if target is None:
                problems.append(f"{job} {instance}: not a target of the running Prometheus")
            elif target["health"] != "up":
                problems.append(f"{job} {instance}: {target['health']} ({target['lastError']})")
        return problems

    still_down = remaining_problems(90, not_up)
    assert not still_down, f"targets not up after 90 s: {still_down}"


# --- 2. every dashboard query returns data --------------------------------------------------


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] if p["type"] != "row" for t in p["targets"]]


def has_data(result: list[dict]) -> bool:
    """At least one series with a real number (histogram_quantile of no requests is NaN)."""
    return any(not math.isnan(float(series["value"][1])) for series in result)


def test_every_dashboard_query_returns_data(live, settings):
    prometheus = Prometheus(settings)
    queries = dashboard_queries()
    assert len(queries) >= 20

    # This run's own job must be feeding the Flink panels (not only some other test's job): its
    # messages, the anomalies of the two bursts, obs_alpha's clip and obs_noclip's refusal.
    # Flink's reporter turns every character Prometheus does not allow into "_", values too.
    own_job = re.sub(r"[^a-zA-Z0-9:_]", "_", live.job)
    own = [f'sum(flink_taskmanager_job_task_operator_streamscout_{name}{{job_name="{own_job}"}}) > 0'
           for name in ("messages_processed", "anomalies_detected", "clips_created", "reason_clip_failures")]

    def empty():
        # API traffic, so the latency and status panels have requests to show.
        for path in ("/", "/v1.0/clip?limit=10"):
            try:
                urllib.request.urlopen(live.api_url + path, timeout=10).read()
            except OSError:
                pass  # not up yet: the "up" and API panels then stay empty and say so
        missing = [f"{title}: {expr}" for title, expr in queries if not has_data(prometheus.query(expr))]
        missing += [f"this run's job: {expr}" for expr in own if not prometheus.query(expr)]
        return missing

    still_empty = remaining_problems(180, empty, interval=5)
    assert not still_empty, "dashboard queries without data after 180 s:\n" + "\n".join(still_empty)
    (LOGS / "dashboard-queries.json").write_text(json.dumps(
        [{"panel": title, "expr": expr, "result": prometheus.query(expr)} for title, expr in queries], indent=1))


# --- 3. StreamMonitoringDown reaches a Discord webhook ------------------------------------


class DiscordReceiver:
    """A Discord-compatible webhook on a free loopback port: records (time, path, JSON), answers 204."""

    def __init__(self) -> None:
        self.received: queue.Queue = queue.Queue()
        received = self.received

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.put((time.time(), self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/webhooks/4242/observability"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def alertmanager_to_receiver(settings):
    """Point the stack's Alertmanager at a local receiver; restore its webhook afterwards."""
    ctx = StackContext.from_settings(settings.with_overrides(state_dir=stack_state_dir(settings)))
    alertmanager = Alertmanager(ctx)
    assert alertmanager.running(), "the stack's Alertmanager is not running: `streamscout stack up`"
    previous = alertmanager.webhook_url_file.read_text().strip()
    receiver = DiscordReceiver()
    try:
        yield alertmanager, receiver
    finally:
        alertmanager.point_webhook(previous)
        receiver.close()


def am_active(settings: Settings, name: str) -> list[dict]:
    query = urllib.parse.urlencode({"filter": f'alertname="{name}"', "active": "true"})
    return get_json(f"http://127.0.0.1:{settings.alertmanager_port}/api/v2/alerts?{query}")


def test_stopping_the_monitor_fires_stream_monitoring_down_into_discord(live, settings, alertmanager_to_receiver):
    alertmanager, receiver = alertmanager_to_receiver
    prometheus = Prometheus(settings)

    # Alertmanager groups by (alertname, severity) and remembers what it sent per group. On the
    # shared stack StreamMonitoringDown has a history (it fires whenever nothing serves 9100), so
    # the test first makes that history "resolved": the monitor runs (the tests above), both
    # Prometheus and Alertmanager show the alert resolved, and re-pointing the webhook (a reload)
    # lets Alertmanager deliver that resolution to the receiver.
    def still_active():
        return ([f"Prometheus: {a['state']} since {a['activeAt']}" for a in prometheus.alerts("StreamMonitoringDown")]
                + [f"Alertmanager: {a['status']['state']} since {a['startsAt']}"
                   for a in am_active(settings, "StreamMonitoringDown")])

    active = remaining_problems(90, still_active)
    assert not active, f"StreamMonitoringDown still active 90 s into a running monitor: {active}"
    alertmanager.point_webhook(receiver.url)

    pid = live.pipeline.supervisor.pid("monitor")
    assert pid is not None, "the monitor is not running"
    os.kill(pid, signal.SIGTERM)
    running = remaining_problems(20, lambda: ["running"] if live.pipeline.supervisor.pid("monitor") else [], 0.5)
    assert not running, "the monitor did not stop within 20 s of SIGTERM"
    stopped_at = time.time()

    # for: 2m, plus up to a scrape (15 s) and an evaluation (15 s): firing in Prometheus, then
    # sent to Alertmanager.
    def not_firing():
        firing = [a for a in prometheus.alerts("StreamMonitoringDown") if a["state"] == "firing"]
        return [] if firing and am_active(settings, "StreamMonitoringDown") else [
            f"Prometheus: {prometheus.alerts('StreamMonitoringDown')}",
            f"Alertmanager: {am_active(settings, 'StreamMonitoringDown')}"]

    pending = remaining_problems(200, not_firing)
    assert not pending, f"StreamMonitoringDown not firing 200 s after stopping the monitor: {pending}"
    firing_at = time.time()
    # The resolved alert may still sit in an already-flushed group (Prometheus re-sends resolved
    # alerts each minute, which keeps Alertmanager from dropping the group), which would hold the
    # firing back until that group's 5-minute group_interval. A reload gives the alert a fresh
    # group, as a first outage has; it is then sent after the critical group_wait (10 s).
    alertmanager.point_webhook(receiver.url)

    def firing_notification() -> tuple[float, str, dict] | None:
        """The first FIRING StreamMonitoringDown posted after the stop, within 60 s of firing."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                at, path, payload = receiver.received.get(timeout=5)
            except queue.Empty:
                continue
            title = (payload.get("embeds") or [{}])[0].get("title", "")
            if at >= stopped_at and title.startswith("[FIRING") and "StreamMonitoringDown" in title:
                return at, path, payload
        return None

    found = firing_notification()
    assert found, ("no FIRING StreamMonitoringDown notification within 60 s of the alert firing; "
                   f"Prometheus: {prometheus.alerts('StreamMonitoringDown')}, "
                   f"Alertmanager: {am_active(settings, 'StreamMonitoringDown')}")
    received_at, path, payload = found
    # Kept for docs/observability-verification.md: what Discord would get, and how long it took.
    (LOGS / "discord-notification.json").write_text(json.dumps(
        {"seconds_from_monitor_stop_to_firing": round(firing_at - stopped_at, 1),
         "seconds_from_firing_to_post": round(received_at - firing_at, 1), "path": path, "payload": payload},
        indent=2))
    assert path == urllib.parse.urlsplit(receiver.url).path
    [embed] = payload["embeds"]
    instance = f"127.0.0.1:{settings.monitor_port}"
    assert embed["title"] == "[FIRING:1] CRITICAL StreamMonitoringDown"
    assert f"**Stream monitoring service {instance} is down**" in embed["description"]
    assert (f"Prometheus has not reached the stream monitoring service at {instance} for 2 minutes: "
            "no chat is being collected.") in embed["description"]
    assert "severity: critical" in embed["description"]
    assert f"instance: {instance}" in embed["description"]
