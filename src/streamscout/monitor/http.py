"""``/metrics`` and ``/health`` of the monitor, served on the service's own event loop.

``/health`` answers 200 with every component's state when chat, Kafka, Redis and Postgres are
all fine, 503 with the same body otherwise, so systemd, Prometheus and a human read one thing.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthCheck = Callable[[], Awaitable[tuple[bool, dict]]]


def build_app(registry: CollectorRegistry, health: HealthCheck) -> web.Application:
    async def metrics(_request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_request: web.Request) -> web.Response:
        ok, components = await health()
        return web.json_response(
            {"status": "ok" if ok else "unhealthy", "components": components}, status=200 if ok else 503
        )

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics), web.get("/health", healthz)])
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start listening; the caller awaits ``runner.cleanup()`` to stop."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner
