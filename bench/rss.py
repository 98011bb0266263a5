"""Resident memory of every component: the stack idle, then with the demo pipeline running.

    .venv/bin/python bench/rss.py [--seconds 90]

Idle = the stack alone (no job, no chat). Under load = `streamscout demo` (simulator chat into
the monitor, Kafka, the Flink job, the API) after ``--seconds``. RSS of a component includes its
child processes (Postgres backends, the Flink TaskManager's Python workers). Writes
bench/results/rss.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_LOGS = ROOT / "var" / "demo" / "logs"


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in (Path("/proc") / str(current) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        todo += children.get(current, [])
    return total / 1024


def stack_pids() -> dict[str, int]:
    out = subprocess.run([sys.executable, "-m", "streamscout", "stack", "status", "--json"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {name: info["pid"] for name, info in json.loads(out).items() if info.get("pid")}


def snapshot(extra: dict[str, int] | None = None) -> dict[str, float]:
    pids = {**stack_pids(), **(extra or {})}
    return {name: round(tree_rss_mb(pid), 1) for name, pid in sorted(pids.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="how long the demo runs before sampling")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "streamscout", "stack", "up"], cwd=ROOT, check=True, capture_output=True)
    idle = snapshot()
    demo = subprocess.Popen([sys.executable, "-m", "streamscout", "demo", "--keep-stack"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        time.sleep(args.seconds)
        supervised = {f.stem: int(f.read_text()) for f in DEMO_LOGS.glob("*.pid")}
        load = snapshot(supervised)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=120)
    result = {
        "what": f"RSS (MB, process tree) of each component: stack idle, then after {args.seconds:.0f} s of `streamscout demo`",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 1) for x in os.getloadavg()]},
        "idle_mb": idle,
        "load_mb": load,
    }
    (ROOT / "bench" / "results" / "rss.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
