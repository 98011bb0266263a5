"""`streamscout stack` on a private state directory: lifecycle, taken ports, bad settings.

These start their own small Postgres and Redis on free ports, never the shared stack's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from conftest import free_port

STREAMSCOUT = str(Path(sys.prefix) / "bin" / "streamscout")


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([STREAMSCOUT, *args], env=env, capture_output=True, text=True, timeout=timeout)


def private_env(state_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSCOUT_")}
    env["STREAMSCOUT_STATE_DIR"] = str(state_dir)
    env.update(settings)
    return env


@pytest.mark.unit
def test_bad_setting_value_names_the_variable(tmp_path):
    result = run("stack", "status", env=private_env(tmp_path, STREAMSCOUT_KAFKA_PARTITIONS="four"))
    assert result.returncode == 2
    assert "STREAMSCOUT_KAFKA_PARTITIONS" in result.stderr
    assert "'four'" in result.stderr


@pytest.mark.unit
def test_unknown_component_is_refused(tmp_path):
    result = run("stack", "up", "zookeeper", env=private_env(tmp_path))
    assert result.returncode == 1
    assert "unknown component 'zookeeper'" in result.stderr


@pytest.mark.unit
def test_taken_port_fails_fast_and_names_it(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = private_env(tmp_path, STREAMSCOUT_REDIS_URL=f"redis://127.0.0.1:{port}/0")
        result = run("stack", "up", "redis", env=env, timeout=20)
    assert result.returncode == 1
    assert f"redis: port {port} on 127.0.0.1 is already in use" in result.stderr
    assert not (tmp_path / "run" / "redis.pid").exists()


@pytest.mark.unit
def test_two_components_on_one_port_is_a_configuration_error(tmp_path):
    env = private_env(tmp_path, STREAMSCOUT_KAFKA_CONTROLLER_PORT="9093")
    result = run("stack", "up", "redis", env=env, timeout=20)
    assert result.returncode == 1
    assert "port 9093 is configured for both kafka and alertmanager" in result.stderr


@pytest.mark.integration
def test_private_stack_lifecycle_keeps_data(tmp_path):
    """up -> write -> down (status fails) -> stale lock -> up again (idempotent) -> data still there."""
    pg_port, redis_port = free_port(), free_port()
    dsn = f"postgresql://streamscout@127.0.0.1:{pg_port}/streamscout"
    env = private_env(
        tmp_path / "state", STREAMSCOUT_POSTGRES_DSN=dsn, STREAMSCOUT_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0"
    )
    postgres_root = tmp_path / "state" / "postgres"
    stranger = subprocess.Popen(["true"])
    try:
        first = run("stack", "up", "postgres", "redis", env=env)
        assert first.returncode == 0, first.stderr
        assert f"postgres           up  {dsn}  (started" in first.stdout
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO streamers (broadcaster_id, streamer_login) VALUES (1, 'a')")
        redis.Redis(port=redis_port).set("survives", "yes")

        assert run("stack", "down", "postgres", "redis", env=env).returncode == 0
        stopped = run("stack", "status", "--json", "postgres", "redis", env=env)
        assert stopped.returncode == 1
        assert {c["state"] for c in json.loads(stopped.stdout).values()} == {"stopped"}
        # As after a SIGKILL: the lock file names a pid that now belongs to another live process
        # of the server's user (Postgres itself would take that for a running postmaster).
        stranger = subprocess.Popen(["sleep", "120"], user="postgres" if os.geteuid() == 0 else None)
        (postgres_root.resolve() / "data" / "postmaster.pid").write_text(f"{stranger.pid}\n")

        again = run("stack", "up", "postgres", "redis", env=env)
        assert again.returncode == 0, again.stderr
        assert "schema up to date" in again.stdout
        idempotent = run("stack", "up", "postgres", "redis", env=env)
        assert idempotent.stdout.count("already running") == 2
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT streamer_login FROM streamers").fetchall() == [("a",)]
        assert redis.Redis(port=redis_port).get("survives") == b"yes"
        assert run("stack", "status", "postgres", "redis", env=env).returncode == 0
    finally:
        stranger.kill()
        stranger.wait()
        run("stack", "down", "postgres", "redis", env=env)
        if postgres_root.is_symlink():  # the cluster lived where the `postgres` user can reach it
            shutil.rmtree(postgres_root.resolve(), ignore_errors=True)


@pytest.mark.integration
def test_component_that_dies_at_start_up_names_its_log(tmp_path):
    """A data dir that claims another Postgres major version: the server exits; `up` says where to look."""
    state = tmp_path / "state"
    env = private_env(state, STREAMSCOUT_POSTGRES_DSN=f"postgresql://streamscout@127.0.0.1:{free_port()}/streamscout")
    try:
        assert run("stack", "up", "postgres", env=env).returncode == 0
        assert run("stack", "down", "postgres", env=env).returncode == 0
        (state / "postgres").resolve().joinpath("data", "PG_VERSION").write_text("9\n")
        result = run("stack", "up", "postgres", env=env, timeout=60)
        log = state / "log" / "postgres.log"
        assert result.returncode == 1
        assert f"postgres exited during start-up; see {log.resolve()}" in result.stderr
        assert "incompatible" in result.stderr  # the log's last lines come along
    finally:
        run("stack", "down", "postgres", env=env)
        if (state / "postgres").is_symlink():
            shutil.rmtree((state / "postgres").resolve(), ignore_errors=True)
