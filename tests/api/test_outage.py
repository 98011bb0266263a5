"""Postgres going away and coming back, on a throwaway cluster of the test's own.

The shared stack's Postgres is never touched: the test runs ``initdb`` in a temporary directory,
starts that cluster on a free port, stops it under the running API and starts it again.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from api_support import add_clip, start_api, stop_api, utcnow
from conftest import free_port

from streamscout.common.db import migrate

pytestmark = pytest.mark.integration

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(args: list[str]) -> list[str]:
    """Postgres refuses to run as root; run its binaries as the `postgres` user when we are root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Cluster:
    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.port = free_port()
        self.log = root / "postgres.log"
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / args[0]), *args[1:]]), check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def cluster():
    if not (PG_BIN / "initdb").exists():
        pytest.skip("Postgres 15 binaries not installed")
    # Not pytest's tmp_path: that lives in a root-only directory the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="streamscout-pg-outage-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        shutil.chown(root, user.pw_uid, user.pw_gid)
    cluster = Cluster(root)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def wait_for(api, path: str, status: int, seconds: float = 30.0):
    """Poll until ``path`` answers ``status``; returns the last answer (the caller asserts on it)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = api.get(path)
        if answer.status == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_api_answers_503_while_postgres_is_down_and_recovers(cluster):
    migrate(cluster.dsn)
    clip_id = add_clip(cluster.dsn, 5, utcnow() - timedelta(minutes=3))
    api, pool = start_api(cluster.dsn)
    try:
        assert wait_for(api, "/health", 200).status == 200
        assert [c["clip_id"] for c in api.get("/v1.0/clip").json()["clips"]] == [clip_id]

        cluster.stop()
        down = api.get("/health")
        assert down.status == 503
        assert down.json()["status"] == "unavailable" and "pool_max" in down.json()["pool"]
        clips = api.get("/v1.0/clip")
        assert clips.status == 503 and clips.json()["error"] == "database_unavailable"
        assert clips.headers["Retry-After"] == "5"
        assert api.get("/").status == 200, "the page is served without Postgres"
        assert api.get("/v1.0/clip?limit=0").status == 400, "validation does not need Postgres"

        cluster.start()
        assert wait_for(api, "/health", 200).status == 200
        again = api.get("/v1.0/clip")
        assert again.status == 200 and [c["clip_id"] for c in again.json()["clips"]] == [clip_id]
        metrics = api.get("/metrics").body.decode()
        assert 'streamscout_api_requests_total{route="/health",status="503"}' in metrics
    finally:
        stop_api(api, pool)


def test_api_starts_while_postgres_is_down(cluster):
    migrate(cluster.dsn)
    cluster.stop()
    api, pool = start_api(cluster.dsn)
    try:
        assert api.get("/health").status == 503
        assert api.get("/v1.0/clip").status == 503
        cluster.start()
        assert wait_for(api, "/health", 200).status == 200
        assert api.get("/v1.0/clip").json()["clips"] == []
    finally:
        stop_api(api, pool)
