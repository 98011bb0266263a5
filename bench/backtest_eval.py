"""Detection quality of every detector variant on real chat and injected bursts.

Runs the backtest command's own evaluation (``streamscout.backtest.cli.evaluate``, what
``streamscout backtest --json`` prints) over the shared real chat in ``../shared/datasets``:

* small channels: the 22 bocru-twitch-chats broadcasts (VOD-comment JSON);
* busy channels: #xqcow 2019-05-03 (per-second counts, 4 h) and #admiralbulldog 2019-04-30
  (timestamped IRC log, 3 h);
* simulator scenarios ``bursts`` and ``demo`` (scheduled bursts, raids and gift floods).

For each variant: detections per channel-hour on plain real chat, recall of bursts of 2x/3x/5x
the 5-minute rate lasting 5-20 s injected on top (seeds 1 and 2, pooled), median delay, and the
scenario scores; plus a k sweep for the trade-off plot. Writes ``bench/results/backtest.json``,
``docs/evaluation.png`` and the table between the markers in ``docs/evaluation.md``.

    .venv/bin/python bench/backtest_eval.py            # ~4 minutes on 2 cores
    .venv/bin/python bench/backtest_eval.py --render   # table and plot again from the JSON
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from streamscout.backtest.cli import evaluate
from streamscout.backtest.inject import InjectSpec
from streamscout.backtest.sources import load
from streamscout.detector.stats import DetectorParams, SpikeDetector

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
SCENARIOS = ROOT / "src" / "streamscout" / "sim" / "scenarios"
RESULTS = ROOT / "bench" / "results" / "backtest.json"
DOC = ROOT / "docs" / "evaluation.md"
PLOT = ROOT / "docs" / "evaluation.png"

VARIANTS = ("spec", "floor", "robust", "nbinom")
# The table's rows: every variant at the default k, and the recommended setting.
CONFIGS = {name: {"variant": name} for name in VARIANTS} | {"floor, k=4": {"variant": "floor", "k": 4.0}}
# A known moment: neppienep's New Year's Eve countdown (chat peaks 22:50-22:57 and 00:00:05 UTC).
NYE = "bocru-twitch-chats/data/neppienep/2025-12-31_18-07-12_2657721531/verbose_chat.json.gz"
NYE_WINDOW_MS = (1_767_221_100_000, 1_767_225_900_000)  # 22:45 .. 00:05 UTC
SEEDS = (1, 2)
INJECT = "2x,3x,5x:5-20@600"
SWEEP_K = (2.5, 3.0, 4.0, 5.0)
TABLE_START, TABLE_END = "<!-- backtest-table:start -->", "<!-- backtest-table:end -->"
FEED_START, FEED_END = "<!-- feed-table:start -->", "<!-- feed-table:end -->"
# Does a spike feed the baseline? Each feed with the spec rule and the recommended setting.
FEED_CONFIGS = {"spec": {"variant": "spec"}, "floor, k=4": {"variant": "floor", "k": 4.0}}
FEEDS = ("clip", "raw", "mean")
# A sustained level shift: 10 calm minutes (2-3 messages a bucket), then 50 minutes of 20.
LEVEL_SHIFT = [2, 3] * 60 + [20] * 600


def inputs() -> dict[str, list[Path]]:
    return {
        "small": sorted(DATASETS.glob("bocru-twitch-chats/data/*/*/verbose_chat.json.gz")),
        "busy": [DATASETS / "dsteffan-admiralbulldog/data/formatted/xqcow_5_03_mps.csv",
                 DATASETS / "dsteffan-admiralbulldog/data/logs/chat_admiralbulldog_4_30.log"],
        "scenarios": [SCENARIOS / "bursts.yaml", SCENARIOS / "demo.yaml"],
    }


def simulator_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("log", "-1", "--format=%h", "--", "src/streamscout/sim")
    return commit + ("+modified" if git("status", "--porcelain", "--", "src/streamscout/sim") else "")


def real_rate(broadcasts, params) -> dict:
    report = evaluate(broadcasts, params, None, 0)["summary"]
    return {"hours": report["hours"], "detections": report["detections"],
            "per_channel_hour": report["detections_per_hour"]}


def injected(broadcasts, params) -> dict:
    """Recall per multiplier and delays, pooled over the seeds."""
    spec = InjectSpec.parse(INJECT)
    per_mult: dict[str, list[int]] = {}
    delays: list[float] = []
    for seed in SEEDS:
        report = evaluate(broadcasts, params, spec, seed)
        for b in report["broadcasts"]:
            gt = b["ground_truth"]
            for key, row in gt["by_multiplier"].items():
                acc = per_mult.setdefault(key, [0, 0])
                acc[0] += row["detected"]
                acc[1] += row["bursts"]
            for truth in gt["truth"]:
                hit = [d for d in b["detections"]
                       if d["bucket_start_ms"] < truth["end_ms"] + params.bucket_ms
                       and d["bucket_start_ms"] + params.bucket_ms > truth["start_ms"]]
                if hit:
                    delays.append((hit[0]["bucket_start_ms"] + params.bucket_ms - truth["start_ms"]) / 1000)
    return {
        "recall": {k: round(d / n, 3) for k, (d, n) in sorted(per_mult.items(), key=lambda kv: float(kv[0][:-1]))},
        "bursts": {k: n for k, (_, n) in per_mult.items()},
        "median_delay_s": round(statistics.median(delays), 2) if delays else None,
    }


def scenario_scores(broadcasts, params) -> dict:
    gt = evaluate(broadcasts, params, None, 0)["summary"]["ground_truth"]
    return {k: gt[k] for k in ("bursts", "detected", "recall", "precision", "median_delay_s", "flood_detections")}


def main() -> int:
    if "--render" in sys.argv[1:]:
        results = json.loads(RESULTS.read_text())
        update_doc(markdown_table(results), TABLE_START, TABLE_END)
        update_doc(feed_table(results), FEED_START, FEED_END)
        plot(results)
        print(markdown_table(results))
        return 0
    if not DATASETS.is_dir():
        print(f"datasets not found at {DATASETS}", file=sys.stderr)
        return 1
    started = time.monotonic()
    bucket_ms = DetectorParams().bucket_ms
    groups = {name: [b for path in paths for b in load(path, "auto", bucket_ms)] for name, paths in inputs().items()}
    results: dict = {
        "generated_by": "bench/backtest_eval.py",
        # scenario chat comes from the simulator's chat model: its version matters
        "simulator_commit": simulator_commit(),
        "inject": INJECT,
        "seeds": list(SEEDS),
        "inputs": {name: {"files": [str(p.relative_to(ROOT if name == "scenarios" else DATASETS)) for p in paths],
                          "broadcasts": len(groups[name]),
                          "hours": round(sum(b.hours for b in groups[name]), 2),
                          "messages": sum(b.messages for b in groups[name])}
                   for name, paths in inputs().items()},
        "variants": {},
        "sweep": [],
    }
    nye = [b for b in groups["small"] if b.source.endswith(NYE)]
    for name, values in CONFIGS.items():
        params = DetectorParams(**values)
        discount = DetectorParams(**{**values, "variant": values["variant"] + "+discount"})
        row = {
            "params": values,
            "real": {g: real_rate(groups[g], params) for g in ("small", "busy")},
            "injected": {g: injected(groups[g], params) for g in ("small", "busy")},
            "scenarios": scenario_scores(groups["scenarios"], params),
            "scenarios_discount": scenario_scores(groups["scenarios"], discount),
            "new_years_eve": [d["time"][11:19] for d in evaluate(nye, params, None, 0)["broadcasts"][0]["detections"]
                              if NYE_WINDOW_MS[0] <= d["bucket_start_ms"] < NYE_WINDOW_MS[1]] if nye else None,
        }
        results["variants"][name] = row
        print(f"{name}: {json.dumps(row)}", file=sys.stderr, flush=True)
    for variant in VARIANTS:
        for k in SWEEP_K:
            params = DetectorParams(variant=variant, k=k)
            point = {"variant": variant, "k": k}
            for g in ("small", "busy"):
                point[g] = {"per_channel_hour": real_rate(groups[g], params)["per_channel_hour"],
                            "recall": injected(groups[g], params)["recall"]}
            results["sweep"].append(point)
            print(f"sweep {point}", file=sys.stderr, flush=True)
    results["spike_feed"] = {}
    for name, values in FEED_CONFIGS.items():
        for feed in FEEDS:
            params = DetectorParams(**values, spike_feed=feed)
            detector = SpikeDetector(0, params)
            shift = [i for i, n in enumerate(LEVEL_SHIFT) if detector.push(i * params.bucket_ms, n)]
            row = {
                "real": {g: real_rate(groups[g], params)["per_channel_hour"] for g in ("small", "busy")},
                "recall": {g: injected(groups[g], params)["recall"] for g in ("small", "busy")},
                "level_shift_detections": len(shift),
                "level_shift_last_s": (shift[-1] - 120) * 5 if shift else None,
            }
            results["spike_feed"][f"{name} / {feed}"] = row
            print(f"feed {name} / {feed}: {row}", file=sys.stderr, flush=True)
    results["seconds"] = round(time.monotonic() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    table = markdown_table(results)
    update_doc(table, TABLE_START, TABLE_END)
    update_doc(feed_table(results), FEED_START, FEED_END)
    plot(results)
    print(table)
    return 0


def markdown_table(results: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.0f}%"

    lines = [
        "| variant | real chat: detections / channel-hour, small | busy | injected recall small 2x / 3x / 5x "
        "| busy 2x / 3x / 5x | median delay (s) small / busy | scenarios recall / precision (+discount) | raid & gift-surge detections (plain / +discount) | New Year's Eve 22:45-00:05: detections / midnight found |",
        "|---|---:|---:|---|---|---|---|---|---|",
    ]
    for name, row in results["variants"].items():
        rs, rb = row["injected"]["small"]["recall"], row["injected"]["busy"]["recall"]
        sc, sd = row["scenarios"], row["scenarios_discount"]
        lines.append(
            f"| `{name}` | {row['real']['small']['per_channel_hour']:.1f} | {row['real']['busy']['per_channel_hour']:.1f} "
            f"| {pct(rs['2x'])} / {pct(rs['3x'])} / {pct(rs['5x'])} | {pct(rb['2x'])} / {pct(rb['3x'])} / {pct(rb['5x'])} "
            f"| {row['injected']['small']['median_delay_s']} / {row['injected']['busy']['median_delay_s']} "
            f"| {pct(sc['recall'])} / {pct(sc['precision'])} ({pct(sd['precision'])}) | {sc['flood_detections']} / {sd['flood_detections']} "
            f"| {_nye(row['new_years_eve'])} |"
        )
    return "\n".join(lines)


def _nye(times: list[str] | None) -> str:
    if times is None:
        return "-"
    midnight = any("00:00:00" <= t <= "00:00:30" for t in times)
    return f"{len(times)} / {'yes' if midnight else 'no'}"


def feed_table(results: dict) -> str:
    lines = ["| setting / spike feed | detections / channel-hour small / busy | injected recall small 2x / 3x / 5x "
             "| busy 2x / 3x / 5x | level shift: detections / last one after |",
             "|---|---|---|---|---|"]
    for name, row in results.get("spike_feed", {}).items():
        rs, rb = row["recall"]["small"], row["recall"]["busy"]
        last = row["level_shift_last_s"]
        lines.append(
            f"| `{name}` | {row['real']['small']:.1f} / {row['real']['busy']:.1f} "
            f"| {100 * rs['2x']:.0f}% / {100 * rs['3x']:.0f}% / {100 * rs['5x']:.0f}% "
            f"| {100 * rb['2x']:.0f}% / {100 * rb['3x']:.0f}% / {100 * rb['5x']:.0f}% "
            f"| {row['level_shift_detections']} / {last} s |")
    return "\n".join(lines)


def update_doc(table: str, start: str, end: str) -> None:
    if not DOC.exists():
        return
    text = DOC.read_text()
    if start in text and end in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        DOC.write_text(f"{head}{start}\n{table}\n{end}{tail}")


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, group, title in zip(axes, ("small", "busy"), ("small channels (bocru, 119 h)", "busy channels (xqcow, admiralbulldog, 7 h)")):
        for variant in VARIANTS:
            points = [p for p in results["sweep"] if p["variant"] == variant]
            xs = [p[group]["per_channel_hour"] for p in points]
            ys = [(p[group]["recall"]["3x"] + p[group]["recall"]["5x"]) / 2 for p in points]
            ax.plot(xs, ys, "o-", label=variant, ms=4)
            for p, x, y in zip(points, xs, ys):
                if p["k"] == 3.0:
                    ax.plot([x], [y], "o", ms=9, mfc="none", color="black")
                ax.annotate(f"k={p['k']:g}", (x, y), fontsize=6, xytext=(3, -8), textcoords="offset points")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("detections per channel-hour on real chat (false-alarm load)")
        ax.set_ylabel("recall of injected 3x and 5x bursts")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Detector trade-off: each line sweeps k (circled: k = 3, the default)", fontsize=10)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
