"""The whole pipeline on one machine, supervised: what `make demo` and `make run` start.

Order matters and mirrors the systemd units' ``After=``: the stack (Postgres, Redis, Kafka,
Flink, Prometheus, Alertmanager), the schema, then — for the demo — the Twitch simulator and a
token seeded against it without a prompt, then the monitor and the API (supervised, restarted
when they die), then the Flink job (submitted once; Flink restarts it on its own).
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click

from streamscout.common.config import Settings, env_name
from streamscout.supervisor.process import ProcessSpec, Supervisor

log = logging.getLogger(__name__)


def streamscout_argv(*args: str) -> list[str]:
    """Run a sub-command with the same interpreter (works from a venv without PATH set up)."""
    return [sys.executable, "-m", "streamscout", *args]


def run_step(description: str, argv: list[str], env: dict[str, str]) -> None:
    """Run one set-up step to completion; stop the pipeline with its output when it fails."""
    click.echo(f"· {description}")
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise click.ClickException(f"{description} failed (exit {result.returncode}):\n{output}")


def fetch_json(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def wait_for(what: str, probe: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except OSError as exc:
            if time.monotonic() > deadline:
                raise click.ClickException(f"{what} did not come up within {timeout:.0f} s ({exc})") from None
            time.sleep(0.3)


def simulator_env(info: dict, token_file: Path) -> dict[str, str]:
    """The settings that point every service at the simulator described by ``/sim/info``."""
    return {
        env_name("twitch_helix_url"): info["helix_url"],
        env_name("twitch_auth_url"): info["auth_url"],
        env_name("twitch_chat_url"): info["chat_url"],
        env_name("twitch_client_id"): info["client_id"],
        env_name("twitch_client_secret"): info["client_secret"],
        env_name("token_file"): str(token_file),
    }


@dataclass
class Pipeline:
    """Starts and stops everything; ``env`` is the environment every child gets."""

    settings: Settings
    env: dict[str, str]
    supervisor: Supervisor
    keep_stack: bool = False

    def start_stack(self) -> None:
        run_step("starting the local stack (Postgres, Redis, Kafka, Flink, Prometheus, Alertmanager)",
                 streamscout_argv("stack", "up"), self.env)
        run_step("migrating the database schema", streamscout_argv("db", "migrate"), self.env)

    def start_simulator(self, scenario: str, ground_truth: Path) -> dict:
        port = self.settings.sim_port
        self.supervisor.start(ProcessSpec("sim", streamscout_argv(
            "sim", "--scenario", scenario, "--port", str(port), "--ground-truth", str(ground_truth)), self.env))
        info = wait_for("the Twitch simulator", lambda: fetch_json(f"http://127.0.0.1:{port}/sim/info"), 30)
        click.echo(f"· Twitch simulator: http://127.0.0.1:{port}/sim/info (scenario {scenario})")
        return info

    def seed_tokens(self, approve_url: str) -> None:
        run_step("seeding the Twitch user token against the simulator",
                 streamscout_argv("seed-tokens", "--force", "--auto-approve-url", approve_url), self.env)

    def start_services(self) -> None:
        run_step("checking the Twitch token", streamscout_argv("tokens", "check"), self.env)
        for name in ("monitor", "api"):
            self.supervisor.start(ProcessSpec(name, streamscout_argv(name), self.env))
        run_step("submitting the clip-detector job to Flink", streamscout_argv("detector", "submit"), self.env)

    def heal(self) -> None:
        """Do for the stack and the Flink job what systemd's Restart= and the submit unit do:
        restart stack components that died, resubmit the job (from its newest checkpoint) if
        the cluster lost it. Both commands are no-ops when everything runs."""
        status = subprocess.run(streamscout_argv("stack", "status"), env=self.env, capture_output=True)
        if status.returncode != 0:
            log.warning("a stack component is down; restarting it")
            subprocess.run(streamscout_argv("stack", "up"), env=self.env, capture_output=True)
        submit = subprocess.run(streamscout_argv("detector", "submit"), env=self.env, capture_output=True, text=True)
        if submit.returncode != 0:
            log.warning("detector job not running and could not be submitted yet",
                        extra={"output": (submit.stdout + submit.stderr)[-500:]})

    def stop(self) -> None:
        click.echo("· stopping")
        subprocess.run(streamscout_argv("detector", "cancel"), env=self.env, capture_output=True)
        self.supervisor.stop_all()
        if not self.keep_stack:
            subprocess.run(streamscout_argv("stack", "down"), env=self.env, capture_output=True)


def warmup_message(elapsed: float, baseline_seconds: float) -> str | None:
    """The countdown line while the detector's baseline fills; None once it is full."""
    left = baseline_seconds - elapsed
    if left <= 0:
        return None
    return f"baseline warming up: {int(left) // 60}:{int(left) % 60:02d} left before the first clip can fire"


def watch(pipeline: Pipeline, page_url: str, stop: Callable[[], bool], heal_every: float = 15.0) -> None:
    """Supervise until Ctrl-C, printing the warm-up countdown, then the clip count."""
    settings = pipeline.settings
    baseline_seconds = settings.detector_bucket_seconds * settings.detector_baseline_buckets
    started = last_heal = time.monotonic()
    last_report = -1e9
    while not stop():
        pipeline.supervisor.poll()
        now = time.monotonic()
        if now - last_heal >= heal_every:
            pipeline.heal()
            last_heal = time.monotonic()
        if now - last_report >= 30:
            last_report = now
            line = warmup_message(now - started, baseline_seconds)
            if line is None:
                try:
                    clips = fetch_json(f"{page_url}v1.0/clip?limit=100")["clips"]
                    line = f"{len(clips)} clip(s) so far — open {page_url}"
                except (OSError, KeyError, ValueError):
                    line = f"the API at {page_url} is not answering yet"
            click.echo(f"· {line}")
        time.sleep(0.5)


def run_pipeline(settings: Settings, base_env: dict[str, str], scenario: str | None, keep_stack: bool) -> None:
    """Bring everything up, supervise until Ctrl-C / SIGTERM, then stop everything."""
    run_dir = settings.state_dir / ("demo" if scenario else "run")
    run_dir.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline(settings, dict(base_env), Supervisor(run_dir / "logs"), keep_stack)
    stopping = {"now": False}

    def request_stop(signum, frame):
        stopping["now"] = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        pipeline.start_stack()
        if scenario:
            info = pipeline.start_simulator(scenario, run_dir / "ground-truth.json")
            pipeline.env.update(simulator_env(info, run_dir / "tokens.json"))
            pipeline.seed_tokens(f"http://127.0.0.1:{settings.sim_port}/sim/device/approve")
        pipeline.start_services()
        page_url = f"http://{settings.api_host}:{settings.api_port}/"
        click.echo(f"\nStreamScout is running. Open {page_url}")
        click.echo(f"Logs: {run_dir / 'logs'}  ·  Prometheus: http://127.0.0.1:{settings.prometheus_port}/  ·  Ctrl-C stops everything.\n")
        watch(pipeline, page_url, lambda: stopping["now"])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        pipeline.stop()


def require_twitch_credentials(settings: Settings) -> None:
    """`make run` talks to real Twitch: say plainly what is missing instead of failing later."""
    if not settings.twitch_client_id:
        raise click.ClickException(f"{env_name('twitch_client_id')} is not set (your Twitch application's client id)")
    if not settings.client_secret():
        raise click.ClickException(
            f"set {env_name('twitch_client_secret_file')} to a file holding your Twitch client secret")
    if not settings.resolved_token_file().exists():
        raise click.ClickException(
            f"no token file at {settings.resolved_token_file()}: run `streamscout seed-tokens` once first")
    if shutil.which("java") is None:
        raise click.ClickException("java is not installed: run `make setup`")
