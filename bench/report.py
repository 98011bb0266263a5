"""Writes the README's benchmark table from bench/results/*.json (the benchmarks' own output).

    .venv/bin/python bench/report.py          # rewrites the table between the README markers

Each row names its result file and the time it was measured, so a stale number is visible.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rows() -> list[tuple[str, str, str, str]]:
    """(what, target, measured, source) per benchmark that has results."""
    out = []
    if sim := load("sim_push"):
        out.append(("simulator chat push over loopback WebSocket", "≥ 50,000 msg/s",
                    f"{sim['messages_per_second']:,.0f} msg/s ({sim['messages_per_server_cpu_second']:,.0f} per server CPU-second)",
                    f"sim_push.json, {sim['measured_at']}"))
    if mon := load("monitor"):
        for case in mon["results"]:
            label = {"channels-1000": "monitor with 1,000 joined channels",
                     "ceiling-lz4": "monitor ingest, ~40,000 msg/s offered (lz4)"}.get(
                case["case"], f"monitor ingest, chat → Kafka ({case['compression']})")
            target = "≥ 20,000 msg/s" if case["case"].startswith("throughput") else "—"
            out.append((label, target,
                        f"{case['published_per_s']:,.0f} msg/s published ({case['received_per_s']:,.0f} received), "
                        f"{case['cpu_percent_of_one_core']:.0f} % of a core, RSS {case['peak_rss_mb']:.0f} MB",
                        f"monitor.json, {mon['when']}"))
    if det := load("detector"):
        t = det["throughput"]
        out.append(("detector: Kafka → Flink job → detection", "≥ 250,000 msg/s, ≥ 3× the loop",
                    f"{t['flink_job']['rate_excluding_startup_per_s']:,.0f} msg/s sustained "
                    f"({t['flink_job']['rate_per_s']:,.0f} incl. start-up; first pass on a cold JIT "
                    f"{t['flink_job']['first_pass_rate_per_s']:,.0f}) vs kafka-python loop "
                    f"{t['kafka_python_loop']['rate_per_s']:,.0f} msg/s ({t['speedup_vs_kafka_python_excluding_startup']:.1f}×, "
                    f"{t['speedup_vs_kafka_python']:.1f}× incl. start-up); "
                    f"state {t['state_per_broadcaster']['value_state_pickled_bytes']} B per broadcaster",
                    f"detector.json, {t['measured_at']}"))
        if lat := det.get("latency"):
            ms = lat["bucket_end_to_detection_ms"]
            out.append(("detection latency (bucket end → detection)", "—",
                        f"p50 {ms['p50']:.0f} ms, p99 {ms['p99']:.0f} ms ({lat['detections']} detections, "
                        f"watermark delay {lat['out_of_orderness_seconds']} s)", f"detector.json, {lat['measured_at']}"))
    if api := load("api"):
        for name, run in api["runs"].items():
            wrk, fixed = run["throughput_wrk"], run["fixed_rate_open_loop"]
            out.append((f"API `/v1.0/clip?limit=24`, 1M clips ({name.replace('_', ' ')})", "≥ 2,000 req/s; p99 ≤ 20 ms at 500 req/s",
                        f"{wrk['requests_per_second']:,.0f} req/s (wrk); at {fixed['offered_rate']:.0f} req/s p99 {fixed['p99_ms']:.0f} ms",
                        "api.json"))
    if rss := load("rss"):
        for component in sorted(set(rss["idle_mb"]) | set(rss["load_mb"])):
            idle_mb, busy_mb = rss["idle_mb"].get(component), rss["load_mb"].get(component)
            measured = ", ".join(f"{label} {mb:.0f} MB" for label, mb in (("idle", idle_mb), ("demo running", busy_mb))
                                 if mb is not None)
            out.append((f"RSS {component}", "—", measured, f"rss.json, {rss['measured_at']}"))
    return out


def table() -> str:
    lines = ["| benchmark | target | measured | result file |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows()]
    return "\n".join(lines)


def main() -> int:
    text = README.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        print(f"README.md has no {START} … {END} markers", file=sys.stderr)
        return 1
    README.write_text(pattern.sub(lambda _: f"{START}\n{table()}\n{END}", text))
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
