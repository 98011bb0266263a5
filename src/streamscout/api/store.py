"""Clip reads through a ``psycopg_pool.ConnectionPool``; the only module of the API that talks SQL.

The pool is created closed and opened without waiting, so the API starts and keeps answering
(503) while Postgres is down; connections that died with a Postgres restart are found by one
``pool.check()`` and the query is tried once more.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from streamscout.api.query import ClipQuery, Cursor, clip_page_sql, resolve_broadcaster_sql
from streamscout.common.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# What "Postgres is not answering" looks like to a request.
UNAVAILABLE = (PoolTimeout, psycopg.OperationalError)


def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, reconnect_timeout: float = 5.0
) -> ConnectionPool:
    """An opened pool that has not waited for Postgres.

    A short ``reconnect_timeout`` matters: after it the pool gives up a failing connection
    attempt, and the next request starts a fresh one, so recovery after an outage takes
    seconds instead of the default exponential back-off of up to five minutes.
    """
    pool = ConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        open=False,
        reconnect_timeout=reconnect_timeout,
        kwargs={
            "autocommit": True,
            "connect_timeout": 3,
            "options": "-c TimeZone=UTC -c statement_timeout=5000",
        },
        name="streamscout-api",
    )
    pool.open(wait=False)
    return pool


def pool_from_settings(settings: Settings) -> ConnectionPool:
    return create_pool(settings.postgres_dsn, min_size=settings.api_pool_min, max_size=settings.api_pool_max)


def _iso(moment: datetime | None) -> str | None:
    """Naive UTC -> ISO 8601 with ``Z`` (microseconds only when there are any)."""
    return None if moment is None else moment.isoformat() + "Z"


def clip_json(row: tuple) -> dict[str, Any]:
    """One ``clips`` row (``CLIP_COLUMNS`` order) as the API shows it."""
    (_, clip_id, broadcaster_id, login, embed_url, thumbnail_url, url, detected_at, created_at,
     score, title, duration) = row
    return {
        "clip_id": clip_id,
        "broadcaster_id": str(broadcaster_id),
        "broadcaster_login": login,
        "embed_url": embed_url,
        "thumbnail_url": thumbnail_url,
        "url": url,
        "detected_at": _iso(detected_at),
        "created_at": _iso(created_at),
        "score": score,
        "title": title,
        "duration": duration,
    }


class ClipStore:
    """Reads clips; ``timeout`` bounds the wait for a pooled connection (then: unavailable)."""

    def __init__(self, pool: ConnectionPool, timeout: float = 2.0) -> None:
        self.pool = pool
        self.timeout = timeout

    def _run(self, work: Callable[[psycopg.Connection], T]) -> T:
        for attempt in (1, 2):
            try:
                with self.pool.connection(timeout=self.timeout) as conn:
                    return work(conn)
            except psycopg.errors.QueryCanceled:
                raise
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise
                log.warning("database connection failed; checking the pool", extra={"error": str(exc)})
                self.pool.check()
        raise AssertionError("unreachable")

    def ping(self) -> None:
        self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    def broadcaster_ids(self, query: ClipQuery) -> list[int] | None:
        """The ids the ``broadcaster`` filter names; None without a filter, [] when unknown."""
        if query.broadcaster is None:
            return None
        sql, params = resolve_broadcaster_sql(query.broadcaster)
        return self._run(lambda conn: sorted(row[0] for row in conn.execute(sql, params)))

    def page(self, query: ClipQuery, broadcaster_ids: list[int] | None) -> tuple[list[tuple], Cursor | None]:
        """Up to ``query.limit`` rows newest first, and the cursor of the next page (if any)."""
        sql, params = clip_page_sql(query, broadcaster_ids)
        rows = self._run(lambda conn: conn.execute(sql, params).fetchall())
        if len(rows) <= query.limit:
            return rows, None
        rows = rows[: query.limit]
        last = rows[-1]  # CLIP_COLUMNS order: id first, detected_at eighth
        return rows, Cursor(detected_at=last[7], id=last[0])

    def stats(self) -> dict[str, int]:
        return self.pool.get_stats()
