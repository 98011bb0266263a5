"""`streamscout demo` and `streamscout run`: the whole pipeline in the foreground."""

from __future__ import annotations

import os

import click

from streamscout.cli import get_settings
from streamscout.supervisor.pipeline import require_twitch_credentials, run_pipeline


@click.command()
@click.option("--scenario", default="demo", show_default=True, help="Simulator scenario (name or file).")
@click.option("--keep-stack", is_flag=True, help="Leave the stack running after Ctrl-C.")
@click.pass_context
def demo(ctx: click.Context, scenario: str, keep_stack: bool) -> None:
    """Everything against the built-in Twitch simulator: no account, no prompt.

    Starts the stack, the simulator, seeds a token, starts the monitor and the API, submits the
    detector, prints the page URL and a warm-up countdown. Ctrl-C stops everything.
    """
    run_pipeline(get_settings(ctx), dict(os.environ), scenario, keep_stack)


@click.command()
@click.option("--keep-stack", is_flag=True, help="Leave the stack running after Ctrl-C.")
@click.pass_context
def run(ctx: click.Context, keep_stack: bool) -> None:
    """Everything against real Twitch (needs a client id/secret and a seeded token file)."""
    settings = get_settings(ctx)
    require_twitch_credentials(settings)
    run_pipeline(settings, dict(os.environ), None, keep_stack)
