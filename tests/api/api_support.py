"""A real API server (waitress in a thread) on a free port, and helpers to seed clips and call it.

A plain module, not a conftest.py: a second conftest would shadow `from conftest import free_port`
elsewhere in the suite (conftests outside packages share the module name "conftest").
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import count

import psycopg
import pytest
import waitress
from prometheus_client import CollectorRegistry

from streamscout.api.app import create_app
from streamscout.api.store import ClipStore, create_pool

_clip_numbers = count(1)


@dataclass
class Answer:
    status: int
    headers: "http.client.HTTPMessage"  # case-insensitive
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class RunningApi:
    url: str
    registry: CollectorRegistry
    server: object
    thread: threading.Thread
    stopping: threading.Event

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read())


def start_api(dsn: str, *, store_factory=ClipStore, threads: int = 4, cache_seconds: float = 0.0,
              **app_args) -> tuple[RunningApi, object]:
    """Tests see every insert at once unless they turn the one-second answer cache on."""
    pool = create_pool(dsn, min_size=1, max_size=4)
    registry = CollectorRegistry()
    app = create_app(store_factory(pool), registry=registry, cache_seconds=cache_seconds, **app_args)
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=threads)
    stopping = threading.Event()

    def serve() -> None:
        try:
            server.run()
        except OSError:  # closing the server from another thread can break the poll in flight
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return RunningApi(f"http://127.0.0.1:{server.effective_port}", registry, server, thread, stopping), pool


def stop_api(api: RunningApi, pool) -> None:
    api.stopping.set()
    api.server.close()
    api.server.task_dispatcher.shutdown()
    api.thread.join(timeout=5)
    pool.close()


@pytest.fixture(scope="module")
def api(postgres_dsn):
    running, pool = start_api(postgres_dsn)
    yield running
    stop_api(running, pool)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def add_streamer(dsn: str, broadcaster_id: int, login: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO streamers (broadcaster_id, streamer_login) VALUES (%s, %s)"
            " ON CONFLICT (broadcaster_id) DO UPDATE SET streamer_login = EXCLUDED.streamer_login",
            (broadcaster_id, login),
        )


def add_clip(conn_or_dsn, broadcaster_id: int, detected_at: datetime, *, score: float | None = 5.0,
             title: str | None = "a moment", duration: float | None = 30.0) -> str:
    """Insert one clip; returns its clip_id."""
    clip_id = f"Clip{next(_clip_numbers)}-{broadcaster_id}"
    sql = (
        "INSERT INTO clips (broadcaster_id, clip_id, embed_url, thumbnail_url, detected_at, created_at,"
        " score, title, duration_seconds, url) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    values = (
        broadcaster_id, clip_id, f"https://clips.twitch.tv/embed?clip={clip_id}",
        f"https://clips-media-assets2.twitch.tv/{clip_id}-preview-480x272.jpg", detected_at,
        detected_at + timedelta(seconds=25), score, title, duration, f"https://clips.twitch.tv/{clip_id}",
    )
    if isinstance(conn_or_dsn, str):
        with psycopg.connect(conn_or_dsn, autocommit=True) as conn:
            conn.execute(sql, values)
    else:
        conn_or_dsn.execute(sql, values)
    return clip_id
