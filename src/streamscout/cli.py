"""The ``streamscout`` command: one entry point, one sub-command per service or tool.

Sub-commands live beside the code they run (``streamscout.<package>.cli``) and are imported
only when used, so ``streamscout api`` never pays for PyFlink's import.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys

import click

from streamscout.common.config import ConfigError, Settings, env_name, load_settings
from streamscout.common.logging import configure_logging

# name -> "module:attribute" of a click command; imported on first use.
LAZY_COMMANDS: dict[str, str] = {
    "db": "streamscout.cli:db",
    "config": "streamscout.cli:show_config",
    "backtest": "streamscout.backtest.cli:backtest",
    "sim": "streamscout.sim.cli:sim",
    "api": "streamscout.api.cli:api",
    "stack": "streamscout.stack.cli:stack_group",
    "seed-tokens": "streamscout.auth.cli:seed_tokens",
    "tokens": "streamscout.auth.cli:tokens",
    "monitor": "streamscout.monitor.cli:monitor",
    "detector": "streamscout.detector.cli:detector",
    "demo": "streamscout.supervisor.cli:demo",
    "run": "streamscout.supervisor.cli:run",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module_name, attribute = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, name)


def get_settings(ctx: click.Context) -> Settings:
    """The settings loaded by the root command (sub-commands call this, never os.environ)."""
    return ctx.find_root().obj


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="streamscout")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """StreamScout: watch top Twitch streams, detect chat spikes, clip them, show the clips.

    Every setting is an environment variable STREAMSCOUT_*; see `streamscout config`.
    """
    if ctx.resilient_parsing:  # shell completion needs no settings
        return
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.UsageError(f"bad setting: {exc}") from None
    configure_logging(settings.log_level, service=ctx.invoked_subcommand)
    ctx.obj = settings


@click.group()
def db() -> None:
    """Database schema management."""


@db.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Create or update the Postgres schema (a no-op when it is current)."""
    from streamscout.common.db import migrate as run_migrations

    applied = run_migrations(get_settings(ctx).postgres_dsn)
    if applied:
        click.echo("applied: " + ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
    else:
        click.echo("schema is up to date")


@click.command("config")
@click.pass_context
def show_config(ctx: click.Context) -> None:
    """Print the effective settings (secrets masked) with their variable names."""
    settings = get_settings(ctx)
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.metadata["secret"] and value:
            value = "********"
        click.echo(f"{env_name(f.name)}={value}")


def main() -> None:
    try:
        cli(prog_name="streamscout")
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
