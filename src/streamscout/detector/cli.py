"""``streamscout detector submit|status|cancel``: the clip-detector job on the Flink cluster."""

from __future__ import annotations

import json
import sys

import click

from streamscout.cli import get_settings


@click.group()
def detector() -> None:
    """The PyFlink clip-detector job (submit is idempotent; the systemd oneshot runs it)."""


@detector.command()
@click.option(
    "--startup",
    type=click.Choice(["group-offsets", "earliest", "latest"]),
    default="group-offsets",
    show_default=True,
    help="Where to start reading when no checkpoint is restored (group-offsets falls back to earliest).",
)
@click.option("--fresh", is_flag=True, help="Do not resume from the newest retained checkpoint.")
@click.pass_context
def submit(ctx: click.Context, startup: str, fresh: bool) -> None:
    """Submit the job unless it already runs; resume from the newest retained checkpoint."""
    from streamscout.detector.submit import SubmitError, submit as run_submit

    try:
        job, submitted = run_submit(get_settings(ctx), startup=startup, resume=not fresh)
    except SubmitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{'submitted' if submitted else 'already running'}: {job.id} ({job.state})")


@detector.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Print the running job, its checkpoints and the checkpoint a submit would resume from."""
    from streamscout.detector.submit import SubmitError, status as job_status

    try:
        report = job_status(get_settings(ctx))
    except SubmitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(report, indent=2))
    if report["job"] is None:
        sys.exit(3)


@detector.command()
@click.pass_context
def cancel(ctx: click.Context) -> None:
    """Cancel the running job (its checkpoints are retained for the next submit)."""
    from streamscout.detector.submit import SubmitError, cancel as cancel_jobs

    try:
        cancelled = cancel_jobs(get_settings(ctx))
    except SubmitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo("cancelled: " + ", ".join(cancelled) if cancelled else "no job was running")
