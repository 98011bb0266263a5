"""Scenario loading and validation: shipped scenarios load, bad ones name the bad field."""

from __future__ import annotations

import pytest

from streamscout.sim.scenario import SCENARIO_DIR, ScenarioError, load_scenario, parse_fault

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
def test_shipped_scenarios_load(name):
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.channels


def test_many_has_more_than_250_live_streams():
    scenario = load_scenario("many")
    assert sum(ch.live_at(0) for ch in scenario.channels) >= 250


def test_demo_has_a_no_clipping_channel_and_bursts_after_the_baseline():
    scenario = load_scenario("demo")
    assert any(not ch.clipping for ch in scenario.channels)
    bursts = [e for e in scenario.events if e.type == "burst"]
    assert bursts and min(e.at for e in bursts) > 300 and min(e.at for e in bursts) < 420


BAD = [
    ({"channels": [{"login": "a"}, {"login": "b"}, {"login": "c", "chat": {"rate": "fast"}}]},
     "channels[2].chat.rate: expected a number, got 'fast'"),
    ({"channels": [{"login": "a", "viewers": [[0, 10], [0, 20]]}]}, "channels[0].viewers: expected points with increasing times"),
    ({"channels": [{"login": "a", "viewers": [[0, "x"]]}]}, "channels[0].viewers[0][1]: expected a number"),
    ({"channels": [{"id": "1"}]}, "channels[0].login: required"),
    ({"channels": [{"login": "a", "colour": "red"}]}, "channels[0].colour: unknown field"),
    ({"channels": [{"login": "a", "clipping": "no"}]}, "channels[0].clipping: expected true or false"),
    ({"channels": [{"login": "a"}], "events": [{"type": "burst", "channel": "b", "at": 1}]},
     "events[0].channel: expected the login of a channel of this scenario"),
    ({"channels": [{"login": "a"}], "events": [{"type": "burst", "channel": "a", "at": 1, "multiplier": 3}]},
     "events[0].duration: required for a burst"),
    ({"channels": [{"login": "a"}], "events": [{"type": "party", "channel": "a", "at": 1}]}, "events[0].type: expected burst"),
    ({"channels": [{"login": "a"}], "faults": [{"type": "status", "rate": 2}]}, "faults[0].rate: expected a number <= 1"),
    ({"channels": [{"login": "a"}, {"login": "a"}]}, "channels[1]: login/id 'a' already used"),
    ({"channels": []}, "channels: a scenario needs at least one channel"),
    ({"channels": [{"login": "a"}], "generate": {"count": -1}}, "generate.count: expected an integer >= 0"),
]


@pytest.mark.parametrize("data,message", BAD)
def test_malformed_scenario_names_the_field(data, message):
    with pytest.raises(ScenarioError) as excinfo:
        load_scenario(data)
    assert str(excinfo.value).startswith(message)


def test_malformed_yaml_file_names_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("channels:\n  - login: a\n  - login: b\n  - login: c\n    chat: {rate: fast}\n")
    with pytest.raises(ScenarioError, match=r"^channels\[2\]\.chat\.rate: expected a number"):
        load_scenario(path)


def test_unknown_scenario_name_lists_the_shipped_ones():
    with pytest.raises(ScenarioError, match="demo"):
        load_scenario("nosuchscenario")


def test_viewers_interpolate_and_offline_events_cut_live_intervals():
    scenario = load_scenario({
        "channels": [{"login": "a", "viewers": [[100, 1000], [200, 3000]]}],
        "events": [{"type": "offline", "channel": "a", "at": 50, "duration": 20},
                   {"type": "offline", "channel": "a", "at": 300}],
    })
    ch = scenario.channels[0]
    assert (ch.viewers_at(0), ch.viewers_at(150), ch.viewers_at(999)) == (1000, 2000, 3000)
    assert [ch.live_at(t) for t in (0, 49, 50, 69, 70, 299, 300, 5000)] == [True, True, False, False, True, True, False, False]
    assert ch.session_start(100) == 70
    assert scenario.events == ()  # offline events are folded into `live`


def test_parse_fault_defaults_and_errors():
    fault = parse_fault({"type": "status", "path": "/helix/clips", "method": "post", "count": 3})
    assert (fault.status, fault.method, fault.count, fault.rate) == (503, "POST", 3, 1.0)
    with pytest.raises(ScenarioError, match=r"^fault\.type: expected status"):
        parse_fault({"type": "explode"})
