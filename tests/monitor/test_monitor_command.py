"""`streamscout monitor` as the service runs it: real process, SIGTERM, exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port
from monitor_harness import consume, create_topics, monitor_settings, wait_for

from streamscout.auth.store import TokenFile, TokenStore, utc_now
from streamscout.common.config import env_name
from streamscout.common.schemas import validate_lifecycle_event

pytestmark = pytest.mark.integration

SCENARIO = {"name": "two", "channels": [
    {"login": "one", "id": "3001", "viewers": 900, "chat": {"rate": 30}},
    {"login": "two", "id": "3002", "viewers": 800, "chat": {"rate": 30}},
]}


def scrape(port: int) -> str:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3).read().decode()
    except (urllib.error.URLError, OSError):
        return ""


def test_sigterm_leaves_chats_flushes_and_exits_0_within_10s(sim, settings, postgres_dsn, tmp_path):
    s = sim(SCENARIO)
    issued = s.issue_user_token(["chat:read", "clips:edit"])
    now = utc_now()
    token_file = tmp_path / "tokens.json"
    TokenStore(token_file).save(TokenFile(
        client_id=s.info["client_id"], user_id=str(s.info["bot_user_id"]), user_login=s.info["bot_login"],
        scopes=("chat:read", "clips:edit"), access_token=issued["access_token"],
        refresh_token=issued["refresh_token"], issued_at=now, obtained_at=now,
    ))
    cfg = monitor_settings(settings, s, postgres_dsn, free_port())
    create_topics(cfg)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSCOUT_")}
    for name in ("postgres_dsn", "twitch_helix_url", "twitch_auth_url", "twitch_chat_url", "topic_chat",
                 "topic_lifecycle", "monitor_poll_seconds", "monitor_port", "kafka_bootstrap", "redis_url"):
        env[env_name(name)] = str(getattr(cfg, name))
    env[env_name("token_file")] = str(token_file)
    env[env_name("twitch_client_id")] = s.info["client_id"]
    env[env_name("twitch_client_secret")] = s.info["client_secret"]
    exe = Path(sys.executable).with_name("streamscout")
    process = subprocess.Popen([str(exe), "monitor"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "streamscout_monitor_streams_monitored 2.0" in scrape(cfg.monitor_port), 40,
                 "both channels joined")
        wait_for(lambda: "streamscout_monitor_messages_published_total" in scrape(cfg.monitor_port)
                 and _value(scrape(cfg.monitor_port), "streamscout_monitor_messages_published_total") > 50, 20,
                 "messages published")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
        output = process.stdout.read().decode(errors="replace")
    assert code == 0, output[-3000:]
    assert took < 10, f"stopped in {took:.1f}s"
    assert '"unsent_records": 0' in output
    events = [validate_lifecycle_event(v) for _, v in consume(cfg, cfg.topic_lifecycle)]
    assert sorted((e["broadcaster_login"], e["event_type"], e.get("reason")) for e in events) == [
        ("one", "offline", "shutdown"), ("one", "online", None),
        ("two", "offline", "shutdown"), ("two", "online", None),
    ]


def _value(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
