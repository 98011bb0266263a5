"""Daemon bookkeeping: pid files only count for the process they name."""

import os
import subprocess
import sys
import time

import pytest

from streamscout.stack.process import Daemon

pytestmark = pytest.mark.unit


@pytest.fixture
def daemon(tmp_path):
    marker = f"streamscout-test-{os.getpid()}-{time.monotonic_ns()}"
    d = Daemon("sleeper", tmp_path / "run" / "sleeper.pid", tmp_path / "log" / "sleeper.log", (marker,))
    yield d, marker
    d.stop()


def test_spawned_daemon_is_running_and_stops(daemon):
    d, marker = daemon
    pid = d.spawn([sys.executable, "-c", f"import time; print('{marker}', flush=True); time.sleep(60)", marker])
    # The kernel fills in /proc/<pid>/cmdline a moment after exec returns control to us.
    deadline = time.monotonic() + 10
    while d.pid() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert d.pid() == pid
    assert not d.exited()
    assert d.stop(timeout=10)
    assert not d.running()
    assert not d.pid_file.exists()
    assert "starting sleeper" in d.log_tail()


def test_pid_file_of_another_process_does_not_count(daemon, tmp_path):
    d, _ = daemon
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        d.pid_file.parent.mkdir(parents=True)
        d.pid_file.write_text(f"{other.pid}\n")
        assert d.pid() is None
        assert not d.stop()  # never signals a process it does not own
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_exit_during_start_up_is_noticed(daemon):
    d, marker = daemon
    d.spawn([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)", marker])
    deadline = time.monotonic() + 10
    while not d.exited() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.exited()
    assert "boom" in d.log_tail()


def test_missing_or_garbled_pid_file_means_not_running(daemon):
    d, _ = daemon
    assert d.pid() is None
    d.pid_file.parent.mkdir(parents=True)
    d.pid_file.write_text("not a pid\n")
    assert d.pid() is None
    assert d.exited()
