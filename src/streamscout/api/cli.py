"""``streamscout api``: serve the clip API and the page with waitress."""

from __future__ import annotations

import logging
import signal
import sys

import click

from streamscout.cli import get_settings

log = logging.getLogger(__name__)


@click.command("api")
@click.option("--cache-seconds", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Answer an identical /v1.0/clip query from memory this long (0: always ask Postgres).")
@click.pass_context
def api(ctx: click.Context, cache_seconds: float) -> None:
    """Serve GET /, /v1.0/clip, /health, /metrics and /static/* (STREAMSCOUT_API_*)."""
    import waitress
    from prometheus_client import CollectorRegistry

    from streamscout.api.app import create_app
    from streamscout.api.store import ClipStore, pool_from_settings

    settings = get_settings(ctx)
    pool = pool_from_settings(settings)
    app = create_app(ClipStore(pool), registry=CollectorRegistry(), cache_seconds=cache_seconds)
    # systemd stops with SIGTERM: turn it into SystemExit, which waitress answers by finishing the
    # requests in flight before serve() returns.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("api listening", extra={"host": settings.api_host, "port": settings.api_port,
                                     "threads": settings.api_threads})
    try:
        waitress.serve(app, host=settings.api_host, port=settings.api_port, threads=settings.api_threads,
                       ident="streamscout", _quiet=True)
    finally:
        pool.close()
        log.info("api stopped")
