"""A small process supervisor for the demo and for `streamscout run`.

It does for a developer machine what systemd does on a server: starts each component as a child
process with its own log file, restarts one that dies (per :class:`RestartPolicy`), and on
Ctrl-C / SIGTERM stops them all — SIGTERM first, SIGKILL after a grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from streamscout.supervisor.policy import RestartPolicy, RestartTracker

log = logging.getLogger(__name__)


@dataclass
class ProcessSpec:
    """What to run: ``argv`` with ``env`` added to the supervisor's own environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True


@dataclass
class _Child:
    spec: ProcessSpec
    tracker: RestartTracker
    popen: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    restarts: int = 0
    gave_up: bool = False


class Supervisor:
    """Runs :class:`ProcessSpec` children, logging each to ``<log_dir>/<name>.log`` (pid in ``.pid``)."""

    def __init__(
        self,
        log_dir: Path,
        policy: RestartPolicy = RestartPolicy(),
        clock: Callable[[], float] = time.monotonic,
        stop_grace_seconds: float = 10.0,
    ) -> None:
        self.log_dir = log_dir
        self.policy = policy
        self.clock = clock
        self.stop_grace_seconds = stop_grace_seconds
        self._children: dict[str, _Child] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        """Holds the running child's pid, for operators and fault-injection tests."""
        return self.log_dir / f"{name}.pid"

    def start(self, spec: ProcessSpec) -> None:
        child = _Child(spec, RestartTracker(self.policy))
        self._children[spec.name] = child
        self._spawn(child)

    def _spawn(self, child: _Child) -> None:
        env = {**os.environ, **child.spec.env}
        with open(self.log_file(child.spec.name), "ab") as out:
            child.popen = subprocess.Popen(
                child.spec.argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops children in order
            )
        self.pid_file(child.spec.name).write_text(f"{child.popen.pid}\n")
        child.started_at = self.clock()
        child.restart_at = None
        log.info("started", extra={"component": child.spec.name, "pid": child.popen.pid})

    def pid(self, name: str) -> int | None:
        child = self._children[name]
        return child.popen.pid if child.popen and child.popen.poll() is None else None

    def restarts(self, name: str) -> int:
        return self._children[name].restarts

    def poll(self) -> None:
        """Notice children that exited and restart those whose delay has passed."""
        now = self.clock()
        for child in self._children.values():
            if child.gave_up or child.popen is None:
                continue
            if child.restart_at is None:
                code = child.popen.poll()
                if code is None:
                    continue
                if not child.spec.restart:
                    log.info("exited", extra={"component": child.spec.name, "exit_code": code})
                    child.gave_up = True
                    continue
                delay = child.tracker.on_exit(now, child.started_at)
                if delay is None:
                    child.gave_up = True
                    log.error(
                        "failing repeatedly; not restarting",
                        extra={"component": child.spec.name, "log_file": str(self.log_file(child.spec.name))},
                    )
                    continue
                child.restart_at = now + delay
                log.warning(
                    "died; restarting",
                    extra={"component": child.spec.name, "exit_code": code, "delay_seconds": delay},
                )
            elif now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)

    def run_forever(self, interval: float = 0.5, until: Callable[[], bool] = lambda: False) -> None:
        while not until():
            self.poll()
            time.sleep(interval)

    def stop_all(self) -> None:
        """SIGTERM every child (newest first), SIGKILL whatever outlives the grace period."""
        running = [c for c in reversed(self._children.values()) if c.popen and c.popen.poll() is None]
        for child in running:
            child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace_seconds
        for child in running:
            try:
                child.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("did not stop in time; killing", extra={"component": child.spec.name})
                child.popen.kill()
                child.popen.wait()
        for child in self._children.values():
            child.gave_up = True
