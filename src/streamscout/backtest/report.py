"""Backtest output: JSON-ready dicts, a readable table, and the chat-rate plot."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from streamscout.backtest.engine import Run, Score

TABLE_DETECTIONS = 15  # detections listed per broadcast in the table (JSON has all)
PLOT_BROADCASTS = 6


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def broadcast_dict(result: Run, score: Score | None) -> dict[str, Any]:
    b = result.broadcast
    out: dict[str, Any] = {
        "broadcast": b.name,
        "file": b.source,
        "start": iso(b.start_ms),
        "end": iso(b.end_ms),
        "hours": _round(b.hours, 4),
        "messages": b.messages,
        "commands": b.commands,
        "flood_events": sum(b.events.values()),
        "buckets": len(result.verdicts),
        "detections": [
            {"time": iso(d.bucket_start_ms), "bucket_start_ms": d.bucket_start_ms, "count": d.count,
             "mean": _round(d.mean), "stddev": _round(d.stddev), "score": _round(d.score), "threshold": _round(d.threshold)}
            for d in result.detections
        ],
        "detections_per_hour": _round(result.per_hour),
        "ground_truth": None,
    }
    if score is not None:
        out["ground_truth"] = {
            "bursts": score.bursts,
            "detected": score.detected,
            "recall": _round(score.recall),
            "precision": _round(score.precision),
            "median_delay_s": _round(score.median_delay_s),
            "flood_detections": score.flood_detections,
            "by_multiplier": score.by_multiplier,
            "truth": [dict(asdict(t), start=iso(t.start_ms)) for t in b.truth or ()],
        }
    return out


def summary_dict(results: list[Run], scores: list[Score | None]) -> dict[str, Any]:
    hours = sum(r.broadcast.hours for r in results)
    detections = sum(len(r.detections) for r in results)
    out: dict[str, Any] = {
        "broadcasts": len(results),
        "hours": _round(hours, 4),
        "messages": sum(r.broadcast.messages for r in results),
        "detections": detections,
        "detections_per_hour": _round(detections / hours if hours else 0.0),
    }
    scored = [s for s in scores if s is not None]
    if scored:
        bursts = sum(s.bursts for s in scored)
        detected = sum(s.detected for s in scored)
        dets = sum(s.detections for s in scored)
        delays = [d for s in scored for d in s.delays_s]
        by_mult: dict[str, dict[str, Any]] = {}
        for s in scored:
            for key, row in s.by_multiplier.items():
                acc = by_mult.setdefault(key, {"bursts": 0, "detected": 0})
                acc["bursts"] += row["bursts"]
                acc["detected"] += row["detected"]
        out["ground_truth"] = {
            "bursts": bursts,
            "detected": detected,
            "recall": _round(detected / bursts) if bursts else None,
            "precision": _round(sum(s.true_detections for s in scored) / dets) if dets else None,
            "median_delay_s": _round(statistics.median(delays)) if delays else None,
            "flood_detections": sum(s.flood_detections for s in scored),
            "recall_by_multiplier": {k: _round(v["detected"] / v["bursts"]) for k, v in
                                     sorted(by_mult.items(), key=lambda kv: float(kv[0][:-1]))},
        }
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def table(report: dict[str, Any]) -> str:
    """The human-readable report: one row per broadcast, its detections, then the totals."""
    lines = [f"detector: {report['detector']}  params: {_params_text(report['params'])}"]
    if report.get("inject"):
        lines.append(f"injected bursts: {report['inject']} (seed {report['seed']})")
    header = f"{'broadcast':<44} {'hours':>6} {'msgs':>8} {'det':>5} {'det/h':>6} {'recall':>7} {'prec':>6} {'delay':>6}"
    lines += ["", header, "-" * len(header)]
    for b in report["broadcasts"]:
        lines.append(_row(b["broadcast"], b["hours"], b["messages"], len(b["detections"]),
                          b["detections_per_hour"], b["ground_truth"]))
    s = report["summary"]
    lines.append("-" * len(header))
    lines.append(_row("total", s["hours"], s["messages"], s["detections"], s["detections_per_hour"], s.get("ground_truth")))
    gt = s.get("ground_truth")
    if gt:
        per = "  ".join(f"{k}: {_pct(v)}" for k, v in gt["recall_by_multiplier"].items())
        lines.append(f"recall by burst size: {per}")
        if gt["flood_detections"]:
            lines.append(f"detections during raid / gift-sub surges: {gt['flood_detections']}")
    for b in report["broadcasts"]:
        if not b["detections"]:
            continue
        lines += ["", f"{b['broadcast']}: {len(b['detections'])} detections"]
        lines.append(f"  {'time (UTC)':<24} {'count':>6} {'mean':>8} {'sigma':>8} {'score':>7}")
        for d in b["detections"][:TABLE_DETECTIONS]:
            lines.append(f"  {d['time']:<24} {d['count']:>6} {d['mean']:>8.2f} {d['stddev']:>8.2f} {d['score']:>7.2f}")
        if len(b["detections"]) > TABLE_DETECTIONS:
            lines.append(f"  ... {len(b['detections']) - TABLE_DETECTIONS} more (see --json)")
    return "\n".join(lines)


def _row(name: str, hours: float, messages: int, detections: int, per_hour: float, gt: dict | None) -> str:
    recall = _pct(gt["recall"]) if gt else "-"
    precision = _pct(gt["precision"]) if gt else "-"
    delay = f"{gt['median_delay_s']:.1f}s" if gt and gt["median_delay_s"] is not None else "-"
    name = name if len(name) <= 44 else name[:41] + "..."
    return f"{name:<44} {hours:>6.2f} {messages:>8} {detections:>5} {per_hour:>6.1f} {recall:>7} {precision:>6} {delay:>6}"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def plot(results: list[Run], path: Path, title: str = "") -> None:
    """Chat rate per bucket with the baseline band (mean .. threshold) and detections marked."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # keep --json output clean
    import matplotlib.pyplot as plt

    shown = results[:PLOT_BROADCASTS]
    fig, axes = plt.subplots(len(shown), 1, figsize=(12, 2.6 * len(shown) + 0.6), squeeze=False)
    for ax, result in zip(axes[:, 0], shown):
        _plot_one(ax, result)
    if title or len(results) > len(shown):
        extra = f" (first {len(shown)} of {len(results)} broadcasts)" if len(results) > len(shown) else ""
        fig.suptitle(f"{title}{extra}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_one(ax: Any, result: Run) -> None:
    b = result.broadcast
    start = b.start_ms
    bucket_ms = b.bucket_ms

    def hours(ms: int) -> float:
        return (ms - start) / 3_600_000

    xs = [hours(v.bucket_start_ms) for v in result.verdicts]
    ax.step(xs, [v.count for v in result.verdicts], where="post", lw=0.6, color="#555555", label="messages / bucket")
    judged = [(hours(v.bucket_start_ms), v.baseline) for v in result.verdicts if v.baseline is not None]
    if judged:
        jx = [x for x, _ in judged]
        ax.fill_between(jx, [bl.mean for _, bl in judged], [bl.threshold for _, bl in judged], step="post",
                        color="#4c72b0", alpha=0.25, lw=0, label="baseline mean .. threshold")
        ax.step(jx, [bl.mean for _, bl in judged], where="post", color="#4c72b0", lw=0.8)
    for i, burst in enumerate(b.truth or ()):
        ax.axvspan(hours(burst.start_ms), hours(burst.end_ms), color="#55a868", alpha=0.35, lw=0,
                   label=None if i else "ground-truth burst")
    for i, flood in enumerate(b.floods):
        ax.axvspan(hours(flood.start_ms), hours(flood.end_ms), color="#dd8452", alpha=0.35, lw=0,
                   label=None if i else "raid / gift-sub surge")
    if result.detections:
        ax.plot([hours(d.bucket_start_ms + bucket_ms // 2) for d in result.detections],
                [d.count for d in result.detections], "v", color="#c44e52", ms=5, label="detection")
    ax.set_title(f"{b.name} — {result.params.variant}: {len(result.detections)} detections "
                 f"({result.per_hour:.1f}/h)", fontsize=9, loc="left")
    ax.set_xlabel("hours since first message", fontsize=8)
    ax.set_ylabel(f"msgs / {bucket_ms // 1000}s", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper right")
