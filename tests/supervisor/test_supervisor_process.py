import os
import signal
import sys
import time

import pytest

from streamscout.supervisor.policy import RestartPolicy
from streamscout.supervisor.process import ProcessSpec, Supervisor

pytestmark = pytest.mark.unit


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_killed_child_is_restarted_and_logs_to_its_file(tmp_path):
    supervisor = Supervisor(tmp_path, RestartPolicy(base_delay=0.1))
    script = "import sys, time; print('up', flush=True); time.sleep(60)"
    supervisor.start(ProcessSpec("sleeper", [sys.executable, "-c", script]))
    try:
        assert wait_for(lambda: "up" in supervisor.log_file("sleeper").read_text())
        first = supervisor.pid("sleeper")
        assert supervisor.pid_file("sleeper").read_text().strip() == str(first)
        os.kill(first, signal.SIGKILL)

        def restarted():
            supervisor.poll()
            pid = supervisor.pid("sleeper")
            return pid is not None and pid != first

        assert wait_for(restarted)
        assert supervisor.restarts("sleeper") == 1
        assert supervisor.pid_file("sleeper").read_text().strip() == str(supervisor.pid("sleeper"))
        assert wait_for(lambda: supervisor.log_file("sleeper").read_text().count("up") == 2)
    finally:
        supervisor.stop_all()
    assert supervisor.pid("sleeper") is None


def test_stop_all_kills_a_child_that_ignores_sigterm(tmp_path):
    supervisor = Supervisor(tmp_path, stop_grace_seconds=0.5)
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    supervisor.start(ProcessSpec("stubborn", [sys.executable, "-c", script]))
    assert wait_for(lambda: "ready" in supervisor.log_file("stubborn").read_text())
    started = time.monotonic()
    supervisor.stop_all()
    assert supervisor.pid("stubborn") is None
    assert time.monotonic() - started < 5


def test_one_shot_child_is_not_restarted(tmp_path):
    supervisor = Supervisor(tmp_path, RestartPolicy(base_delay=0.01))
    supervisor.start(ProcessSpec("once", [sys.executable, "-c", "pass"], restart=False))
    time.sleep(0.5)
    for _ in range(5):
        supervisor.poll()
        time.sleep(0.05)
    assert supervisor.restarts("once") == 0
