"""A Twitch stand-in: Helix, OAuth and IRC-over-WebSocket chat on one port, driven by scenarios.

    >>> from streamscout.sim import start_simulator
    >>> with start_simulator("demo", clip_delay=1) as sim:   # doctest: +SKIP
    ...     print(sim.info["helix_url"])
"""

from streamscout.sim.scenario import Scenario, ScenarioError, load_scenario
from streamscout.sim.server import Simulator, create_simulator, start_simulator

__all__ = ["Scenario", "ScenarioError", "Simulator", "create_simulator", "load_scenario", "start_simulator"]
