"""`streamscout sim`: serves until SIGTERM, writes the ground truth, rejects bad scenarios."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import free_port

from streamscout.cli import cli

pytestmark = pytest.mark.unit
STREAMSCOUT = Path(sys.executable).with_name("streamscout")


def test_malformed_scenario_is_rejected_with_the_field_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels:\n  - {login: a, viewers: lots}\n")
    result = CliRunner().invoke(cli, ["sim", "--scenario", str(bad)])
    assert result.exit_code != 0
    assert "channels[0].viewers: expected a number, got 'lots'" in result.output


def test_serves_info_and_writes_ground_truth_on_sigterm(tmp_path):
    port = free_port()
    truth = tmp_path / "truth.json"
    process = subprocess.Popen([str(STREAMSCOUT), "sim", "--scenario", "bursts", "--port", str(port), "--speed", "5",
                                "--seed", "99", "--ground-truth", str(truth)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        info = None
        deadline = time.monotonic() + 20
        while info is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/sim/info", timeout=1) as response:
                    info = json.load(response)
            except OSError:
                time.sleep(0.1)
        assert info is not None, "simulator did not come up"
        assert info["chat_url"] == f"ws://127.0.0.1:{port}/chat" and info["seed"] == 99 and info["speed"] == 5
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    assert process.returncode == 0
    data = json.loads(truth.read_text())
    assert data["scenario"] == "bursts" and data["seed"] == 99
    assert len(data["bursts"]) == 10  # 8 scheduled bursts + the raid's and the gift flood's surges
