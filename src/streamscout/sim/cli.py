"""``streamscout sim``: run the Twitch simulator in the foreground."""

from __future__ import annotations

import asyncio
import json
import signal

import click

from streamscout.cli import get_settings
from streamscout.common.recordings import RecordingError
from streamscout.sim.scenario import ScenarioError
from streamscout.sim.server import create_simulator


@click.command("sim")
@click.option("--scenario", default="demo", show_default=True, help="Shipped scenario name or YAML/JSON path.")
@click.option("--port", type=int, default=None, help="Port (default: STREAMSCOUT_SIM_PORT, 8900).")
@click.option("--seed", type=int, default=None, help="Seed (default: the scenario's).")
@click.option("--speed", type=float, default=1.0, show_default=True, help="Scenario seconds per wall second.")
@click.option("--replay", "replay", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Recorded chat to replay as live chat (repeatable): raw IRC, 'ts ;;; line' log or VOD-comment JSON.")
@click.option("--replay-speed", type=float, default=None, help="Replay speed-up (default: --speed).")
@click.option("--clip-delay", type=float, default=15.0, show_default=True, help="Seconds before a created clip is visible.")
@click.option("--token-lifetime", type=float, default=14400.0, show_default=True, help="Access token lifetime, seconds.")
@click.option("--ground-truth", "ground_truth", type=click.Path(dir_okay=False), default=None,
              help="Write the ground truth JSON here (kept current every 2 s and at exit).")
@click.pass_context
def sim(ctx: click.Context, scenario: str, port: int | None, seed: int | None, speed: float, replay: tuple[str, ...],
        replay_speed: float | None, clip_delay: float, token_lifetime: float, ground_truth: str | None) -> None:
    """Serve a simulated Twitch (Helix, OAuth, chat) on one loopback port.

    Approve a device-code login with `curl -d user_code=CODE http://127.0.0.1:8900/sim/device/approve`
    (or open the verification URL). `GET /sim/info` tells clients where everything is.
    """
    settings = get_settings(ctx)
    if speed <= 0:
        raise click.BadParameter("must be positive", param_hint="--speed")
    try:
        simulator = create_simulator(scenario, port=port or settings.sim_port, seed=seed, speed=speed,
                                     clip_delay=clip_delay, token_lifetime=token_lifetime, replay=list(replay),
                                     replay_speed=replay_speed, ground_truth_path=ground_truth)
    except (ScenarioError, RecordingError) as exc:
        raise click.ClickException(str(exc)) from None

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await simulator.run_until(stop, on_ready=lambda: click.echo(json.dumps(simulator.info), err=True))

    try:
        asyncio.run(serve())
    except OSError as exc:
        raise click.ClickException(f"cannot serve on port {simulator.port}: {exc.strerror}") from None
