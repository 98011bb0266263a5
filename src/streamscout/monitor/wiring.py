"""Builds a :class:`Monitor` from settings with real dependencies, and runs it with its HTTP port.

Kept apart from the service so tests and the benchmark build the same thing the command does,
with their own registry, topics and Twitch client.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from streamscout.common.config import Settings
from streamscout.monitor import http
from streamscout.monitor.chat import MonitorChat
from streamscout.monitor.metrics import MonitorMetrics
from streamscout.monitor.publisher import Publisher, producer_config
from streamscout.monitor.service import Monitor


def build_monitor(
    settings: Settings,
    twitch: Any,
    registry: CollectorRegistry,
    *,
    verified_bot: bool = False,
    max_backlog: int = 300_000,
) -> Monitor:
    """A monitor on ``settings``' Kafka, Redis and Postgres, reading chat as ``twitch``'s user.

    ``verified_bot`` raises pyTwitchAPI's join limit from 20 to 2,000 per 10 s (a verified bot
    account on Twitch; the benchmark's 1,000 channels need it).
    """
    metrics = MonitorMetrics(registry)
    config = producer_config(settings.kafka_bootstrap, compression=settings.monitor_kafka_compression)
    config["bootstrap_timeout_ms"] = 5000
    publisher = Publisher(lambda: KafkaProducer(**config), metrics, max_backlog=max_backlog)
    redis = aioredis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=3)
    pool = AsyncConnectionPool(
        settings.postgres_dsn,
        min_size=1,
        max_size=3,
        open=False,
        kwargs={"options": "-c TimeZone=UTC", "autocommit": True, "connect_timeout": 3},
        timeout=5,
    )

    def chat_factory(on_record, channel_ids) -> MonitorChat:
        return MonitorChat(
            twitch,
            on_record,
            metrics,
            connection_url=settings.twitch_chat_url,
            channel_ids=channel_ids,
            is_verified_bot=verified_bot,
        )

    return Monitor(
        settings,
        twitch=twitch,
        chat_factory=chat_factory,
        publisher=publisher,
        redis=redis,
        pool=pool,
        metrics=metrics,
    )


async def run_monitor(monitor: Monitor, registry: CollectorRegistry, stop: asyncio.Event) -> None:
    """Serve ``/metrics`` + ``/health`` and run the monitor until ``stop`` is set."""
    await monitor.pool.open(wait=False)
    runner = await http.serve(
        http.build_app(registry, monitor.health), monitor.settings.monitor_host, monitor.settings.monitor_port
    )
    try:
        await monitor.run(stop)
    finally:
        await runner.cleanup()
