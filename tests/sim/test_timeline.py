"""The shared tick loop: counts independent of listeners, lines only where wanted, events on time."""

from __future__ import annotations

import pytest

from streamscout.common.recordings import parse_irc_line
from streamscout.sim.scenario import load_scenario
from streamscout.sim.timeline import Timeline
from streamscout.sim.world import World

pytestmark = pytest.mark.unit

SCENARIO = {"seed": 4, "channels": [{"login": "a", "id": "1", "chat": {"rate": 20}},
                                    {"login": "b", "id": "2", "chat": {"rate": 20}}],
            "events": [{"type": "raid", "channel": "b", "at": 5.0, "count": 40},
                       {"type": "burst", "channel": "a", "at": 6.0, "duration": 2.0, "multiplier": 10}]}


def run(wanted, steps: int = 200) -> list[dict[str, list[str]]]:
    world = World(load_scenario(SCENARIO), clock=lambda: 1_700_000_000.0)
    timeline = Timeline(world, tick=0.05)
    return [timeline.step(step, 1_700_000_000_000 + step * 50, wanted) for step in range(1, steps + 1)]


def privmsgs(batch: dict[str, list[str]], login: str) -> int:
    return sum(" PRIVMSG " in line for line in batch.get(login, ()))


def test_channel_a_counts_do_not_depend_on_who_listens_to_b():
    both = run(lambda login: True)
    only_a = run(lambda login: login == "a")
    assert [privmsgs(b, "a") for b in both] == [privmsgs(b, "a") for b in only_a]
    assert all(privmsgs(b, "b") == 0 for b in only_a)


def test_raid_arrives_in_its_tick_and_the_burst_lifts_the_rate():
    batches = run(lambda login: True)
    raid_steps = [i for i, b in enumerate(batches, 1) if any("msg-id=raid" in l for l in b.get("b", ()))]
    assert raid_steps == [100]  # step 100 covers [4.95 s, 5.0 s); an event is due once a step reaches its time
    raid = parse_irc_line(next(l for l in batches[99]["b"] if "msg-id=raid" in l))
    assert raid.tags["msg-param-viewerCount"] == "40"
    before = sum(privmsgs(b, "a") for b in batches[80:120])   # 4-6 s
    during = sum(privmsgs(b, "a") for b in batches[120:160])  # 6-8 s: x10
    assert during > 4 * before
