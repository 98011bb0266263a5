"""`streamscout stack up | down | status | logs`: the local stack for development, demo and tests."""

from __future__ import annotations

import json
import logging
import sys
import time

import click

from streamscout.cli import get_settings
from streamscout.stack import stack
from streamscout.stack.components import StackContext, StackError
from streamscout.stack.ports import PortInUseError


def _ctx(ctx: click.Context) -> StackContext:
    return StackContext.from_settings(get_settings(ctx))


@click.group("stack")
def stack_group() -> None:
    """Local Postgres, Redis, Kafka (KRaft), Flink, Prometheus and Alertmanager under the state dir."""
    # Health checks expect refused connections while a broker starts; kafka-python logs each one.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


@stack_group.command()
@click.argument("components", nargs=-1)
@click.pass_context
def up(ctx: click.Context, components: tuple[str, ...]) -> None:
    """Start every component (or the named ones) and wait until each is healthy."""
    try:
        stack.up(_ctx(ctx), components, echo=click.echo)
    except (StackError, PortInUseError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@stack_group.command()
@click.argument("components", nargs=-1)
@click.pass_context
def down(ctx: click.Context, components: tuple[str, ...]) -> None:
    """Stop every component (or the named ones) cleanly; data stays in the state dir."""
    try:
        stack.down(_ctx(ctx), components, echo=click.echo)
    except StackError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@stack_group.command()
@click.argument("components", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print state and address of each component as JSON.")
@click.pass_context
def status(ctx: click.Context, components: tuple[str, ...], as_json: bool) -> None:
    """Show each component's state and address; exits 1 if any is not running and healthy."""
    try:
        report = stack.status(_ctx(ctx), components)
    except StackError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for name, entry in report.items():
            click.echo(f"{name:<18} {entry['state']:<10} {entry['address']}")
    if any(entry["state"] != "running" for entry in report.values()):
        sys.exit(1)


@stack_group.command()
@click.argument("component", required=False)
@click.option("-n", "--lines", default=50, show_default=True, help="Lines to show from the end of each log.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (one component only).")
@click.pass_context
def logs(ctx: click.Context, component: str | None, lines: int, follow: bool) -> None:
    """Show the end of a component's log (every component's when none is named)."""
    try:
        selected = stack.select(_ctx(ctx), [component] if component else [])
    except StackError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if follow and len(selected) != 1:
        raise click.UsageError("--follow needs one component")
    for item in selected:
        if len(selected) > 1:
            click.echo(f"==> {item.log_file} <==")
        click.echo(item.daemon.log_tail(lines))
    if follow:
        _follow(selected[0].log_file)


def _follow(path) -> None:
    with open(path, errors="replace") as log:
        log.seek(0, 2)
        try:
            while True:
                line = log.readline()
                if line:
                    click.echo(line, nl=False)
                else:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            pass
