"""``streamscout backtest``: the detector's statistics over recorded or simulated chat."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from streamscout.backtest import engine, report
from streamscout.backtest.inject import InjectSpec, InjectSpecError, inject
from streamscout.backtest.series import Broadcast
from streamscout.backtest.sources import FORMATS, InputError, load
from streamscout.cli import get_settings
from streamscout.detector.stats import DetectorParams, variant_names

PROGRESS_MIN_BYTES = 2 << 20  # show a progress bar from 2 MB of input on


def evaluate(broadcasts: list[Broadcast], params: DetectorParams, spec: InjectSpec | None, seed: int,
             progress: Any = None) -> dict[str, Any]:
    """Run (and score) every broadcast; the report the command prints and ``bench/`` stores."""
    runs, scores = [], []
    for index, broadcast in enumerate(broadcasts):
        if spec is not None:
            broadcast = inject(broadcast, spec, seed, warmup_ms=params.baseline_buckets * params.bucket_ms)
        result = engine.run(broadcast, params, broadcaster_id=index + 1)
        runs.append(result)
        scores.append(engine.score(result))
    return {
        "detector": params.variant,
        "params": dataclasses.asdict(params),
        "inject": spec.describe() if spec else None,
        "seed": seed,
        "broadcasts": [report.broadcast_dict(r, s) for r, s in zip(runs, scores)],
        "summary": report.summary_dict(runs, scores),
        "_runs": runs,
    }


def load_all(files: list[Path], fmt: str, bucket_ms: int) -> list[Broadcast]:
    """Every broadcast of every file; a bad file stops the run with every error named."""
    total = sum(f.stat().st_size for f in files if f.is_file())
    broadcasts: list[Broadcast] = []
    errors: list[str] = []
    show = total >= PROGRESS_MIN_BYTES
    with click.progressbar(length=total, label="reading chat", file=sys.stderr, hidden=not show) as bar:
        for path in files:
            done = 0

            def advance(n: int) -> None:
                nonlocal done
                done += n
                bar.update(n)

            try:
                broadcasts.extend(load(path, fmt, bucket_ms, progress=advance))
            except InputError as exc:
                errors.append(str(exc))
            if path.is_file():
                bar.update(max(0, path.stat().st_size - done))
    if errors:
        for error in errors:
            click.echo(f"error: {error}", err=True)
        raise SystemExit(1)
    return broadcasts


@click.command("backtest")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Input format; auto goes by the name (.yaml scenario, .csv counts, .json[.gz] VOD comments) "
                   "and the first line (IRC or 'time ;;; line' log).")
@click.option("--detector", "variant", type=click.Choice(variant_names()), default=None,
              help="Detector variant (default: STREAMSCOUT_DETECTOR_VARIANT, i.e. spec).")
@click.option("--k", type=float, default=None, help="Override STREAMSCOUT_DETECTOR_K.")
@click.option("--min-excess", type=float, default=None, help="Override STREAMSCOUT_DETECTOR_MIN_EXCESS.")
@click.option("--floor-excess", type=float, default=None, help="Minimum excess of floor/robust/nbinom (default 5).")
@click.option("--inject", "inject_text", default=None, metavar="SPEC",
              help="Add seeded ground-truth bursts: MULTIPLIERS[:MIN-MAX][@EVERY], e.g. 2x,3x,5x:5-20@600.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of --inject.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--plot", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write a PNG: chat rate, baseline band and detections per broadcast.")
@click.pass_context
def backtest(ctx: click.Context, files: tuple[Path, ...], fmt: str, variant: str | None, k: float | None,
             min_excess: float | None, floor_excess: float | None, inject_text: str | None, seed: int,
             as_json: bool, plot: Path | None) -> None:
    """Replay chat FILEs through the Flink job's own spike statistics.

    Inputs: raw IRC transcripts, VOD-comment JSON (.json/.json.gz), 'time ;;; IRC line' logs,
    per-second count CSVs, or simulator scenarios (YAML). Prints each broadcast's detections,
    detections per channel-hour and, with ground truth (scenario bursts or --inject),
    recall, precision and delay.
    """
    overrides = {name: value for name, value in
                 (("variant", variant), ("k", k), ("min_excess", min_excess), ("floor_excess", floor_excess))
                 if value is not None}
    try:
        params = DetectorParams.from_settings(get_settings(ctx), **overrides)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        spec = InjectSpec.parse(inject_text) if inject_text else None
    except InjectSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--inject") from None
    broadcasts = load_all(list(files), fmt, params.bucket_ms)
    result = evaluate(broadcasts, params, spec, seed)
    runs = result.pop("_runs")
    if plot is not None:
        report.plot(runs, plot, title=f"detector {params.variant}")
    if as_json:
        click.echo(json.dumps(result, indent=1))
    else:
        click.echo(report.table(result))
        if plot is not None:
            click.echo(f"\nplot written to {plot}")
