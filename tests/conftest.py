"""Fixtures shared by every test package.

Integration tests use the real local stack that `streamscout stack up` starts (``make test``
starts it). Each test module that needs Postgres gets a database of its own, so modules never
see each other's rows.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from streamscout.common.config import Settings, load_settings
from streamscout.common.db import migrate

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("STREAMSCOUT_TEST_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))


def free_port() -> int:
    """A TCP port nothing listens on right now (for servers a test starts itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def settings() -> Settings:
    environ = {k: v for k, v in os.environ.items() if k != "STREAMSCOUT_TEST_DATASETS"}
    return load_settings(environ)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"real chat datasets not found at {DATASETS}")
    return DATASETS


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="module")
def postgres_dsn(settings: Settings) -> str:
    """A freshly migrated database of this test module's own on the stack's Postgres."""
    try:
        admin = psycopg.connect(settings.postgres_dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.fail(f"Postgres of the local stack is not reachable ({exc}); run `streamscout stack up`")
    name = f"test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_database(settings.postgres_dsn, name)
    migrate(dsn)
    yield dsn
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Twitch simulator (owned by the simulator engineer) -------------------------------------


@pytest.fixture
def sim():
    """Factory: ``sim(scenario="demo", **options)`` starts a Twitch simulator on a free port
    (options as ``streamscout.sim.start_simulator``) and stops it after the test.

        def test_x(sim):
            s = sim("steady", clip_delay=0.2)
            s.info["helix_url"], s.issue_user_token(["clips:edit"])
    """
    from streamscout.sim import start_simulator

    started = []

    def start(scenario="demo", **options):
        handle = start_simulator(scenario, **options)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
