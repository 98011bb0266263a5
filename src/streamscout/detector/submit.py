"""Submit, inspect and cancel the clip-detector job on the standalone Flink cluster.

``submit`` is what the systemd oneshot runs, so it is idempotent: a running StreamScout job makes
it a no-op; otherwise it checks the token file with Twitch (refusing to submit on failure),
picks the newest retained checkpoint of this topic (the job retains checkpoints on
cancellation) and runs ``flink run -d --python job.py --jarfile <kafka connector> -pyexec <venv>``
with ``-s <checkpoint>`` when there is one, so baselines, open clips and Kafka offsets survive.
Checkpoints live under ``<state_dir>/flink/checkpoints/<job>-<topic>/``: a job reading another
topic never restores this one's Kafka offsets, and the job's name carries the topic unless it is
the default one, so submit/cancel for one topic never touch another topic's job.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from streamscout.common.config import Settings, env_name

log = logging.getLogger(__name__)

JOB_NAME = "streamscout-clip-detector"
DEFAULT_TOPIC = "chat-messages"
# The module openings Flink's own default config.yaml gives every JVM on Java 17; the client JVM of
# `flink run` needs them to build a PyFlink job graph (it fails with InaccessibleObjectException).
JAVA17_OPENS = " ".join(
    f"--add-opens=java.base/{package}=ALL-UNNAMED"
    for package in (
        "java.lang", "java.net", "java.io", "java.nio", "sun.nio.ch", "java.lang.reflect", "java.text",
        "java.time", "java.util", "java.util.concurrent", "java.util.concurrent.atomic",
        "java.util.concurrent.locks",
    )
)
ACTIVE_STATES = {"CREATED", "INITIALIZING", "RUNNING", "RESTARTING", "RECONCILING", "FAILING", "CANCELLING"}


class SubmitError(RuntimeError):
    """The job could not be submitted; the message says why."""


@dataclass(frozen=True)
class JobInfo:
    id: str
    name: str
    state: str
    start_time_ms: int


def job_name(settings: Settings) -> str:
    """The job's name on the cluster: one detector job per chat topic (tests and demos use their
    own topics, so submit/cancel of one never touches another's job)."""
    if settings.topic_chat == DEFAULT_TOPIC:
        return JOB_NAME
    return f"{JOB_NAME}-" + re.sub(r"[^A-Za-z0-9._-]", "_", settings.topic_chat)


def checkpoint_root(settings: Settings) -> Path:
    """Where the job for ``settings.topic_chat`` keeps its retained checkpoints."""
    return (settings.state_dir / "flink" / "checkpoints" / job_name(settings)).resolve()


def latest_checkpoint(settings: Settings) -> Path | None:
    """The newest complete checkpoint (a ``chk-N`` directory with ``_metadata``), if any."""
    root = checkpoint_root(settings)
    candidates = [m.parent for m in root.glob("*/chk-*/_metadata")]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def _rest(settings: Settings, path: str, method: str = "GET", timeout: float = 5.0) -> dict:
    url = settings.flink_rest_url.rstrip("/") + path
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise SubmitError(f"Flink REST {method} {path} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SubmitError(
            f"Flink is not reachable at {settings.flink_rest_url} ({getattr(exc, 'reason', exc)}); "
            "is the cluster up (`streamscout stack up`)?"
        ) from None
    return json.loads(body) if body else {}


def jobs(settings: Settings) -> list[JobInfo]:
    """Every job of the cluster with this topic's job name, newest first."""
    name = job_name(settings)
    overview = _rest(settings, "/jobs/overview").get("jobs", [])
    found = [JobInfo(j["jid"], j["name"], j["state"], j.get("start-time", 0)) for j in overview if j["name"] == name]
    return sorted(found, key=lambda j: j.start_time_ms, reverse=True)


def active_job(settings: Settings) -> JobInfo | None:
    return next((j for j in jobs(settings) if j.state in ACTIVE_STATES), None)


def job_environment(settings: Settings, base: dict[str, str]) -> dict[str, str]:
    """The environment of ``flink run``: ``base`` plus every setting as STREAMSCOUT_* (so the job's
    ``load_settings`` sees exactly these settings) and the stack's Flink configuration."""
    from streamscout.stack import flink_conf_dir

    environ = {k: v for k, v in base.items() if not k.startswith("STREAMSCOUT_")}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        environ[env_name(field.name)] = str(value.resolve() if isinstance(value, Path) else value)
    environ["FLINK_CONF_DIR"] = str(flink_conf_dir(settings))
    environ["JVM_ARGS"] = (environ.get("JVM_ARGS", "") + " " + JAVA17_OPENS).strip()
    return environ


def flink_run_argv(settings: Settings, *, checkpoint: Path | None, startup: str, python: str) -> list[str]:
    from streamscout.stack import flink_kafka_connector_jar
    from streamscout.stack.components import pyflink_home

    rest = urlsplit(settings.flink_rest_url)
    job_py = importlib.util.find_spec("streamscout.detector.job").origin
    argv = [str(pyflink_home() / "bin" / "flink"), "run", "-d", "-m", rest.netloc]
    if checkpoint is not None:
        # A new StreamScout version whose SQL plans to different operators cannot map the old
        # operators' state; Flink would refuse the checkpoint and every retry of this oneshot
        # with it. Unmatched state is dropped instead: the Kafka source falls back to the
        # group's committed offsets, open windows restart, and the detector operator, whose uid
        # is fixed (job.DETECTOR_UID), keeps its baselines and pending clips.
        argv += ["-s", str(checkpoint), "--allowNonRestoredState"]
    argv += [
        "--jarfile", str(flink_kafka_connector_jar(settings)),
        "-pyexec", python,
        "-pyclientexec", python,
        "--python", job_py,
        "--startup", startup,
    ]
    return argv


def submit(
    settings: Settings,
    *,
    startup: str = "group-offsets",
    resume: bool = True,
    check_tokens: bool = True,
    wait_seconds: float = 90.0,
    base_environ: dict[str, str] | None = None,
) -> tuple[JobInfo, bool]:
    """Make sure the job runs; returns (job, submitted_now). Raises SubmitError with the reason."""
    running = active_job(settings)
    if running is not None:
        return running, False
    if check_tokens:
        from streamscout.auth.errors import TokenError
        from streamscout.detector.job import check_tokens as validate

        try:
            validate(settings)
        except TokenError as exc:
            raise SubmitError(f"token check failed, not submitting: {exc}") from None
    checkpoint = latest_checkpoint(settings) if resume else None
    argv = flink_run_argv(settings, checkpoint=checkpoint, startup=startup, python=sys.executable)
    environ = job_environment(settings, dict(os.environ) if base_environ is None else base_environ)
    log.info("submitting", extra={"checkpoint": str(checkpoint) if checkpoint else None, "topic": settings.topic_chat})
    done = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=300)
    match = re.search(r"JobID ([0-9a-f]{32})", done.stdout + done.stderr)
    if done.returncode != 0 or not match:
        raise SubmitError(f"flink run failed (exit {done.returncode}):\n{_failure_excerpt(done.stdout + done.stderr)}")
    job_id = match[1]
    deadline = time.monotonic() + wait_seconds
    while True:
        state = _rest(settings, f"/jobs/{job_id}").get("state", "UNKNOWN")
        if state == "RUNNING" or time.monotonic() > deadline:
            break
        if state in ("FAILED", "CANCELED", "FINISHED"):
            raise SubmitError(f"job {job_id} ended as {state} right after submission; see the TaskManager log")
        time.sleep(0.5)
    return JobInfo(job_id, job_name(settings), state, int(time.time() * 1000)), True


def _failure_excerpt(output: str) -> str:
    """The job script's own message or Python traceback if there is one, else the output's tail."""
    lines = output.strip().splitlines()
    ours = [line for line in lines if line.startswith("clip detector not started")]
    if ours:
        return "\n".join(ours)
    start = next((i for i, line in enumerate(lines) if line.startswith("Traceback")), None)
    return "\n".join(lines[start:start + 30] if start is not None else lines[-15:])


def cancel(settings: Settings, wait_seconds: float = 60.0) -> list[str]:
    """Cancel every active StreamScout detector job (checkpoints are retained); returns their ids."""
    cancelled = []
    for job in jobs(settings):
        if job.state in ACTIVE_STATES and job.state != "CANCELLING":
            _rest(settings, f"/jobs/{job.id}?mode=cancel", method="PATCH")
            cancelled.append(job.id)
    deadline = time.monotonic() + wait_seconds
    while cancelled and time.monotonic() < deadline:
        if all(_rest(settings, f"/jobs/{jid}").get("state") in ("CANCELED", "FAILED", "FINISHED") for jid in cancelled):
            break
        time.sleep(0.5)
    return cancelled


def status(settings: Settings) -> dict:
    """The active job (if any) with its checkpoint counts, and the checkpoint a submit would use."""
    job = active_job(settings)
    report: dict = {"job": None, "resume_from": str(latest_checkpoint(settings) or "") or None}
    if job is not None:
        checkpoints = _rest(settings, f"/jobs/{job.id}/checkpoints")
        counts = checkpoints.get("counts", {})
        latest = (checkpoints.get("latest") or {}).get("completed") or {}
        report["job"] = {
            "id": job.id,
            "state": job.state,
            "checkpoints_completed": counts.get("completed"),
            "checkpoints_failed": counts.get("failed"),
            "restored": counts.get("restored"),
            "latest_checkpoint": latest.get("external_path"),
        }
    return report
