"""The world on a fake clock: ranks over time, clip readiness, fault matching."""

from __future__ import annotations

import pytest

from streamscout.sim.scenario import load_scenario, parse_fault
from streamscout.sim.world import World

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def ranking_at(world: World, clock: Clock, t: float) -> list[str]:
    clock.now = world.started + t / world.speed
    return [s["user_login"] for s in world.live_streams()]


def test_ranking_scenario_moves_channels_in_and_out_of_the_top():
    clock = Clock()
    world = World(load_scenario("ranking"), clock=clock, speed=2.0)
    start = ranking_at(world, clock, 0)
    assert start[:5] == ["rank_anchor1", "rank_anchor2", "rank_anchor3", "rank_faller", "rank_blinker"]
    assert "rank_late" not in start and "rank_climber" in start[5:]
    mid = ranking_at(world, clock, 250)
    assert "rank_blinker" not in mid  # offline between 180 and 360
    assert "rank_climber" in mid[:5] and "rank_late" in mid[:5]
    assert ranking_at(world, clock, 300).index("rank_flicker") >= 10  # 8,000 viewers: below the top 10
    late = ranking_at(world, clock, 400)
    assert "rank_blinker" in late[:7]  # back online
    assert late.index("rank_faller") >= 10
    assert late.index("rank_flicker") < 10


def test_streams_carry_helix_fields_and_started_at_of_the_session():
    clock = Clock()
    world = World(load_scenario("ranking"), clock=clock)
    clock.now = world.started + 400
    stream = next(s for s in world.live_streams() if s["user_login"] == "rank_blinker")
    assert stream["type"] == "live" and stream["viewer_count"] > 0
    assert stream["started_at"] == "2023-11-14T22:19:20Z"  # started + 360 s: the second session


def test_clip_is_ready_after_the_delay_and_never_with_the_fault():
    clock = Clock()
    scenario = load_scenario({"channels": [{"login": "a", "id": "1"}],
                              "faults": [{"type": "clip_never_ready", "count": 1}]})
    world = World(scenario, clock=clock, clip_delay=15)
    never = world.create_clip(world.channel("a"), "9", "bot")
    clip = world.create_clip(world.channel("a"), "9", "bot")
    clock.now += 14.9
    assert world.ready_clips() == []
    clock.now += 0.2
    assert world.ready_clips() == [clip]
    clock.now += 3600
    assert never not in world.ready_clips()
    assert [c["ready_ms"] is None for c in world.truth.clips] == [True, False]


def test_fault_windows_counts_and_matching():
    clock = Clock()
    world = World(load_scenario({"channels": [{"login": "a", "id": "1"}]}), clock=clock, speed=10)
    world.add_fault(parse_fault({"type": "status", "at": 10, "duration": 10, "path": "/helix/clips",
                                 "method": "POST", "count": 2}))
    take = lambda: world.take_fault("status", method="POST", path="/helix/clips")  # noqa: E731
    assert take() is None  # not yet: starts 10 scenario seconds = 1 wall second from now
    clock.now += 1.0
    assert world.take_fault("status", method="GET", path="/helix/clips") is None
    assert world.take_fault("status", method="POST", path="/helix/streams") is None
    assert take() is not None and take() is not None
    assert take() is None  # count used up
    assert world.truth.faults[-1]["source"] == "runtime"
