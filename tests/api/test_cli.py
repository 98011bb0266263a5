"""`streamscout api` as systemd runs it: settings from the environment, JSON logs, clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port

pytestmark = pytest.mark.integration

STREAMSCOUT = Path(sys.executable).with_name("streamscout")


def test_serves_on_the_configured_port_and_stops_on_sigterm(postgres_dsn):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSCOUT_")}
    env.update(STREAMSCOUT_POSTGRES_DSN=postgres_dsn, STREAMSCOUT_API_HOST="127.0.0.1",
               STREAMSCOUT_API_PORT=str(port), STREAMSCOUT_API_THREADS="2")
    process = subprocess.Popen([str(STREAMSCOUT), "api"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        status = None
        while status != 200 and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    status = answer.status
            except OSError:
                time.sleep(0.2)
        assert status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1.0/clip", timeout=5) as answer:
            assert json.loads(answer.read())["clips"] == []
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    messages = [line["message"] for line in lines if line["logger"] == "streamscout.api.cli"]
    assert messages == ["api listening", "api stopped"]
    assert lines[0]["service"] == "api" and any(line.get("port") == port for line in lines)
