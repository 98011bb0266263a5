"""The chat watchdog and membership bookkeeping of the service, with stand-in chat clients."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from streamscout.common.config import Settings
from streamscout.monitor.metrics import MonitorMetrics
from streamscout.monitor.ranking import Decision, LiveStream
from streamscout.monitor.service import Joined, Monitor

pytestmark = pytest.mark.unit


class FakeChat:
    def __init__(self, fail_joins=()):
        self.connected = True
        self.last_line_at = time.monotonic()
        self.joined: list[str] = []
        self.left: list[str] = []
        self.pings = 0
        self.stopped = False
        self.fail_joins = set(fail_joins)

    async def start_connected(self, timeout):
        pass

    def is_connected(self):
        return self.connected

    async def join(self, logins, timeout):
        self.joined += logins
        return [login for login in logins if login in self.fail_joins]

    async def leave(self, logins, timeout):
        self.left += logins
        return True

    async def ping(self, timeout=2.0):
        self.pings += 1

    async def shutdown(self, timeout):
        self.stopped = True


class FakePublisher:
    def __init__(self):
        self.records = []

    def publish(self, topic, key, value):
        self.records.append((topic, key, value))


def make(stall=5.0, fail_joins=()):
    chats: list[FakeChat] = []

    def factory(on_record, channel_ids):
        chats.append(FakeChat(fail_joins))
        return chats[-1]

    registry = CollectorRegistry()
    monitor = Monitor(Settings(monitor_stall_seconds=stall), twitch=None, chat_factory=factory,
                      publisher=FakePublisher(), redis=None, pool=None, metrics=MonitorMetrics(registry))
    return monitor, chats, registry


def stream(i):
    return LiveStream(i, f"ch{i}", 100 - i)


def run(coro):
    return asyncio.run(coro)


def test_first_check_builds_the_chat():
    monitor, chats, registry = make()
    assert run(monitor.watch_chat_once()) is True
    assert monitor.chat is chats[0]
    assert registry.get_sample_value("streamscout_monitor_chat_connected") == 1
    assert run(monitor.watch_chat_once()) is False  # healthy: nothing to do


def test_silent_connection_is_pinged_then_rebuilt_and_channels_rejoined():
    monitor, chats, registry = make(stall=3.0)

    async def scenario():
        await monitor.watch_chat_once()
        monitor.joined = {1: Joined(stream(1), 1), 2: Joined(stream(2), 2)}
        chats[0].last_line_at = time.monotonic() - 1.5  # a third of the stall period: ping
        assert await monitor.watch_chat_once() is False
        assert chats[0].pings == 1
        chats[0].last_line_at = time.monotonic() - 3.5  # stalled: rebuild
        assert await monitor.watch_chat_once() is True

    run(scenario())
    assert chats[0].stopped and monitor.chat is chats[1]
    assert sorted(chats[1].joined) == ["ch1", "ch2"]
    assert registry.get_sample_value("streamscout_monitor_chat_rebuilds_total") == 1


def test_closed_connection_gets_a_grace_period_for_pytwitchapis_own_reconnect():
    monitor, chats, _ = make(stall=0.3)  # grace = min(10 s, stall)

    async def scenario():
        await monitor.watch_chat_once()
        chats[0].connected = False
        assert await monitor.watch_chat_once() is False
        await asyncio.sleep(0.35)
        assert await monitor.watch_chat_once() is True

    run(scenario())
    assert len(chats) == 2


def test_a_channel_that_cannot_be_rejoined_is_forgotten_and_reported_offline():
    monitor, chats, _ = make(fail_joins={"ch2"})

    async def scenario():
        monitor.joined = {1: Joined(stream(1), 1), 2: Joined(stream(2), 2)}
        await monitor.rebuild_chat("test")

    run(scenario())
    assert set(monitor.joined) == {1}
    (topic, key, value), = monitor.publisher.records
    assert topic == "stream-lifecycle" and key == b"2" and b'"reason":"rejoin_failed"' in value


def test_apply_joins_and_leaves_with_lifecycle_records_and_counts():
    monitor, chats, registry = make(fail_joins={"ch3"})

    async def scenario():
        await monitor.watch_chat_once()
        monitor.joined = {9: Joined(stream(9), 9)}
        await monitor.apply(Decision(ranks={1: 1, 3: 2}, to_join=[stream(1), stream(3)], to_leave={9: "rank"}))

    run(scenario())
    assert set(monitor.joined) == {1}  # ch3's join failed: retried next round
    assert chats[0].left == ["ch9"]
    kinds = [(k, b'"online"' in v) for _, k, v in monitor.publisher.records]
    assert kinds == [(b"9", False), (b"1", True)]
    assert registry.get_sample_value("streamscout_monitor_joins_total") == 1
    assert registry.get_sample_value("streamscout_monitor_leaves_total") == 1
    assert registry.get_sample_value("streamscout_monitor_join_failures_total") == 1
    assert registry.get_sample_value("streamscout_monitor_streams_monitored") == 1
