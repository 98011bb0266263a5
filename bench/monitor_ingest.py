"""How fast one monitor process moves chat from the simulator's chat server into Kafka.

    .venv/bin/python bench/monitor_ingest.py            # ~3 minutes, writes bench/results/monitor.json

Runs (each bounded in time):

* ``throughput-lz4`` / ``throughput-gzip``: 10 channels offering ~25,000 messages/s in total;
  the monitor's received and published rates, CPU (share of one core) and peak RSS, with the
  default lz4 and with gzip compression.
* ``ceiling-lz4``: the same with ~40,000 messages/s offered, to see where one process tops out.
* ``channels-1000``: 1,000 joined channels at realistic rates (log-uniform viewers, 0.05-2
  messages/s each, plus ten busy channels at 20-40 messages/s).

The simulator runs in this process; the monitor runs in a child process (this file with
``--child``) so its CPU and memory are its own. The child is the real service
(:func:`streamscout.monitor.wiring.build_monitor`) on the stack's Kafka, Redis and Postgres,
with unique topics that are deleted afterwards. The simulator's and pyTwitchAPI's join limits
are raised to a verified bot's 2,000 per 10 s, or joining 1,000 channels would take 8 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "monitor.json"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the monitor child ------------------------------------------------------------------
async def child_main(config: dict) -> None:
    from prometheus_client import CollectorRegistry
    from twitchAPI.twitch import Twitch
    from twitchAPI.type import AuthScope

    from streamscout.common.config import load_settings
    from streamscout.common.logging import configure_logging
    from streamscout.monitor.wiring import build_monitor, run_monitor

    configure_logging("WARNING", service="monitor-bench")
    settings = load_settings({}).with_overrides(**config["settings"])
    twitch = Twitch(config["client_id"], config["client_secret"], authenticate_app=False,
                    base_url=settings.twitch_helix_url, auth_base_url=settings.twitch_auth_url)
    await twitch.set_user_authentication(config["access_token"], [AuthScope.CHAT_READ, AuthScope.CLIPS_EDIT],
                                         config["refresh_token"], validate=False)
    registry = CollectorRegistry()
    monitor = build_monitor(settings, twitch, registry, verified_bot=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await run_monitor(monitor, registry, stop)
    await twitch.close()


# --- the parent -------------------------------------------------------------------------
def scrape(port: int) -> dict[str, float]:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        if line.startswith("streamscout_monitor_") and " " in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_case(name: str, scenario: dict, *, channels: int, compression: str, measure_s: float,
             join_timeout: float) -> dict:
    import streamscout.sim.chat as sim_chat
    from kafka.admin import KafkaAdminClient, NewTopic

    from streamscout.common.config import load_settings
    from streamscout.sim import start_simulator

    sim_chat.JOIN_LIMIT = 2000  # a verified bot's join limit (see the module docstring)
    base = load_settings({k: v for k, v in os.environ.items() if k.startswith("STREAMSCOUT_")})
    tag = uuid.uuid4().hex[:8]
    port = free_port()
    topics = (f"bench-chat-{tag}", f"bench-lifecycle-{tag}")
    admin = KafkaAdminClient(bootstrap_servers=base.kafka_bootstrap.split(","), request_timeout_ms=10_000)
    admin.create_topics([NewTopic(t, base.kafka_partitions, 1) for t in topics])
    result: dict = {"case": name, "channels_offered": channels, "compression": compression,
                    "load_average_1m_before": round(os.getloadavg()[0], 1)}
    with start_simulator(scenario, tick=0.1) as sim:
        token = sim.issue_user_token(["chat:read", "clips:edit"])
        config = {
            "client_id": sim.info["client_id"], "client_secret": sim.info["client_secret"],
            "access_token": token["access_token"], "refresh_token": token["refresh_token"],
            "settings": {
                "twitch_helix_url": sim.info["helix_url"], "twitch_auth_url": sim.info["auth_url"],
                "twitch_chat_url": sim.info["chat_url"], "topic_chat": topics[0], "topic_lifecycle": topics[1],
                "monitor_port": port, "monitor_poll_seconds": 60.0, "monitor_liveness_ttl_seconds": 90.0,
                "monitor_kafka_compression": compression, "monitor_join_rank": channels, "monitor_leave_rank": channels,
            },
        }
        child = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(config)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + join_timeout
            joined_at = None
            while time.monotonic() < deadline:
                m = scrape(port)
                if m.get("streamscout_monitor_streams_monitored", 0) >= channels:
                    joined_at = time.monotonic()
                    break
                time.sleep(0.5)
            m = scrape(port)
            result["channels_joined"] = int(m.get("streamscout_monitor_streams_monitored", 0))
            result["join_seconds"] = round(joined_at - (deadline - join_timeout), 1) if joined_at else None
            time.sleep(3)  # warm-up
            first, cpu0, t0 = scrape(port), cpu_seconds(child.pid), time.monotonic()
            peak_rss = rss_mb(child.pid)
            while time.monotonic() - t0 < measure_s:
                time.sleep(1)
                peak_rss = max(peak_rss, rss_mb(child.pid))
            last, cpu1, t1 = scrape(port), cpu_seconds(child.pid), time.monotonic()
            elapsed = t1 - t0

            def rate(metric: str) -> float:
                return round((last.get(metric, 0) - first.get(metric, 0)) / elapsed, 1)

            result.update(
                measured_seconds=round(elapsed, 1),
                received_per_s=rate("streamscout_monitor_messages_received_total"),
                published_per_s=rate("streamscout_monitor_messages_published_total"),
                publish_errors=last.get("streamscout_monitor_publish_errors_total", 0),
                backlog_at_end=last.get("streamscout_monitor_publish_backlog", 0),
                cpu_percent_of_one_core=round(100 * (cpu1 - cpu0) / elapsed, 1),
                peak_rss_mb=round(peak_rss, 1),
                kafka_send_mean_ms=round(
                    1000 * (last.get("streamscout_monitor_kafka_send_seconds_sum", 0)
                            - first.get("streamscout_monitor_kafka_send_seconds_sum", 0))
                    / max(1.0, last.get("streamscout_monitor_kafka_send_seconds_count", 0)
                          - first.get("streamscout_monitor_kafka_send_seconds_count", 0)), 1),
            )
            result["load_average_1m_after"] = round(os.getloadavg()[0], 1)
            stop_started = time.monotonic()
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=20)
            result["exit_code"] = child.returncode
            result["stop_seconds"] = round(time.monotonic() - stop_started, 1)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            try:
                admin.delete_topics(list(topics))
            finally:
                admin.close()
    print(json.dumps(result), flush=True)
    return result


def busy(count: int, rate: float) -> dict:
    return {"name": "busy", "seed": 3, "channels": [
        {"login": f"busy{i:02d}", "id": str(500000 + i), "viewers": 100000 - i, "chat": {"rate": rate, "burstiness": 0.2}}
        for i in range(count)
    ]}


def realistic_1000() -> dict:
    top = [{"login": f"top{i:02d}", "id": str(600000 + i), "viewers": 90000 - 1000 * i,
            "chat": {"rate": 40 - 2 * i}} for i in range(10)]
    return {"name": "thousand", "seed": 5, "channels": top,
            "generate": {"count": 990, "prefix": "filler", "viewers": [10, 20000], "chat_rate": [0.05, 2.0]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=float, default=20.0, help="seconds measured per case")
    args = parser.parse_args()
    if args.child:
        asyncio.run(child_main(json.loads(args.child)))
        return
    results = [
        run_case("throughput-lz4", busy(10, 2500), channels=10, compression="lz4", measure_s=args.measure,
                 join_timeout=30),
        run_case("ceiling-lz4", busy(10, 4000), channels=10, compression="lz4", measure_s=args.measure,
                 join_timeout=30),
        run_case("throughput-gzip", busy(10, 2500), channels=10, compression="gzip", measure_s=args.measure,
                 join_timeout=30),
        run_case("channels-1000", realistic_1000(), channels=1000, compression="lz4", measure_s=args.measure,
                 join_timeout=90),
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "monitor_ingest",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "note": "simulator, Kafka, Redis, Postgres and other work share the same cores",
        "results": results,
    }, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
