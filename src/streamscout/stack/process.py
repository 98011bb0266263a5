"""Detached daemons owned by a state directory: start, find again by pid file, stop.

Each component runs as one foreground process started in its own session (so it outlives the
`streamscout stack up` that launched it), with stdout and stderr appended to
``<state>/log/<name>.log`` and its pid in ``<state>/run/<name>.pid``. A pid file only counts
while that process is alive and its command line still mentions the expected markers, so a
recycled pid never passes for a running component.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Daemon:
    name: str
    pid_file: Path
    log_file: Path
    markers: tuple[str, ...]  # strings the process's command line must contain (e.g. its data dir)

    def pid(self) -> int | None:
        """The pid of the running process started from this state directory, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if alive_with_markers(pid, self.markers) else None

    def running(self) -> bool:
        return self.pid() is not None

    def spawn(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} starting {self.name}\n".encode())
            log.flush()
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
                user=user,
                group=user,
                extra_groups=[] if user else None,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        return process.pid

    def exited(self) -> bool:
        """True once a spawned process is gone (reaps it when it is our child)."""
        pid = self._pid_from_file()
        if pid is None:
            return True
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return True
        except ChildProcessError:
            pass
        # Not the markers: a launcher script (Flink's) only shows them once it has exec'd java.
        return not alive_with_markers(pid, ())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> bool:
        """Signal the process and wait for it to exit; SIGKILL after ``timeout``. True if it ran."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive_with_markers(pid, self.markers):
            _reap(pid)
            time.sleep(0.2)
        if alive_with_markers(pid, self.markers):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _pid_from_file(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def alive_with_markers(pid: int, markers: tuple[str, ...]) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie (state Z) has exited; it only waits for its parent to reap it.
    if status.rpartition(")")[2].split()[0] == "Z":
        return False
    return all(marker.encode() in cmdline for marker in markers)
