"""Running a real monitor against the simulator and the stack's Kafka, Redis and Postgres."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any, Callable, Optional

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry
from twitchAPI.twitch import Twitch
from twitchAPI.type import AuthScope

from streamscout.common.config import Settings
from streamscout.monitor.service import Monitor
from streamscout.monitor.wiring import build_monitor, run_monitor


def monitor_settings(settings: Settings, sim: Any, postgres_dsn: str, port: int, **overrides: Any) -> Settings:
    """Short intervals, unique topics, the simulator's Twitch, a test database."""
    tag = uuid.uuid4().hex[:10]
    values = dict(
        postgres_dsn=postgres_dsn,
        twitch_helix_url=sim.info["helix_url"],
        twitch_auth_url=sim.info["auth_url"],
        twitch_chat_url=sim.info["chat_url"],
        topic_chat=f"test-chat-{tag}",
        topic_lifecycle=f"test-lifecycle-{tag}",
        monitor_poll_seconds=1.0,
        monitor_liveness_ttl_seconds=3.0,
        monitor_stall_seconds=5.0,
        monitor_port=port,
    )
    values.update(overrides)
    return settings.with_overrides(**values)


def create_topics(settings: Settings, partitions: int = 2) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","), request_timeout_ms=10_000)
    try:
        admin.create_topics(
            [NewTopic(t, partitions, 1) for t in (settings.topic_chat, settings.topic_lifecycle)]
        )
    finally:
        admin.close()


async def sim_twitch(sim: Any) -> Twitch:
    """A pyTwitchAPI client authenticated as the simulator's bot user (chat:read, clips:edit)."""
    token = sim.issue_user_token(["chat:read", "clips:edit"])
    twitch = Twitch(
        sim.info["client_id"],
        sim.info["client_secret"],
        authenticate_app=False,
        base_url=sim.info["helix_url"],
        auth_base_url=sim.info["auth_url"],
    )
    await twitch.set_user_authentication(
        token["access_token"], [AuthScope.CHAT_READ, AuthScope.CLIPS_EDIT], token["refresh_token"], validate=False
    )
    return twitch


class RunningMonitor:
    """A monitor running on its own event loop in a thread; ``call`` runs a coroutine there."""

    def __init__(self, settings: Settings, sim: Any, **build: Any) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.monitor: Optional[Monitor] = None
        self._sim = sim
        self._build = build
        self._loop = asyncio.new_event_loop()
        self._stop: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self.error: Optional[BaseException] = None
        self.stopped_in: Optional[float] = None
        self._thread = threading.Thread(target=self._main, name="monitor-under-test", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._run())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
            self._ready.set()

    async def _run(self) -> None:
        twitch = await sim_twitch(self._sim)
        self.monitor = build_monitor(self.settings, twitch, self.registry, **self._build)
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            await run_monitor(self.monitor, self.registry, self._stop)
        finally:
            await twitch.close()

    def __enter__(self) -> "RunningMonitor":
        self._thread.start()
        self._ready.wait(30)
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            started = time.monotonic()
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(20)
            self.stopped_in = time.monotonic() - started
        if self.error:
            raise self.error

    def call(self, coro_fn: Callable[[], Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro_fn(), self._loop).result(timeout)

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value

    def joined_logins(self) -> set[str]:
        assert self.monitor is not None
        return {j.stream.login for j in list(self.monitor.joined.values())}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def consume(settings: Settings, topic: str, idle_seconds: float = 5.0) -> list[tuple[bytes, dict]]:
    """Every record of ``topic`` (key, decoded value), reading until it has been idle a while."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(idle_seconds * 1000),
        group_id=None,
    )
    try:
        return [(m.key, json.loads(m.value)) for m in consumer]
    finally:
        consumer.close()
