"""``streamscout monitor``: run the stream monitor until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading

import click

from streamscout.cli import get_settings

log = logging.getLogger(__name__)


@click.command("monitor")
@click.pass_context
def monitor(ctx: click.Context) -> None:
    """Rank live streams, keep the top channels' chats joined, publish chat to Kafka.

    /metrics and /health listen on STREAMSCOUT_MONITOR_HOST:STREAMSCOUT_MONITOR_PORT.
    Exits 0 on SIGTERM after leaving the chats and flushing Kafka; exits 2 at once when the
    stored Twitch tokens are missing or invalid (re-seed them with `streamscout seed-tokens`).
    """
    settings = get_settings(ctx)
    code = asyncio.run(_main(settings))
    # pyTwitchAPI's chat thread is not a daemon; one wedged in a dead socket must not keep a
    # stopped service alive, so leave without waiting for stray threads.
    logging.shutdown()
    sys.stdout.flush()
    if threading.active_count() > 1:
        os._exit(code)
    sys.exit(code)


async def _main(settings) -> int:
    from prometheus_client import REGISTRY

    from streamscout.auth.errors import TokenError
    from streamscout.auth.runtime import authenticated_twitch
    from streamscout.monitor.wiring import build_monitor, run_monitor

    try:
        twitch = await authenticated_twitch(settings, registry=REGISTRY)
    except TokenError as exc:
        log.error("cannot authenticate with Twitch", extra={"error": str(exc)})
        click.echo(f"error: {exc}", err=True)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    monitor = build_monitor(settings, twitch, REGISTRY)
    try:
        await run_monitor(monitor, REGISTRY, stop)
    finally:
        await twitch.close()
    return 0
