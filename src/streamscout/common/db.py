"""Postgres access shared by every service: connections and versioned schema migrations.

Migrations are the numbered ``migrations/NNNN_name.sql`` files, applied in order inside one
transaction each and recorded in ``schema_migrations``; an advisory lock keeps two migrating
processes (say the NixOS oneshot and a developer) from interleaving.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x5354524D  # "STRM": any constant shared by every StreamScout process


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def connect(dsn: str, **kwargs) -> psycopg.Connection:
    """A connection whose session works in UTC, as every TIMESTAMP column assumes."""
    return psycopg.connect(dsn, options="-c TimeZone=UTC", **kwargs)


def load_migrations() -> list[Migration]:
    migrations = []
    for entry in resources.files("streamscout.common.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            migrations.append(Migration(int(match[1]), match[2], entry.read_text()))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return migrations


def migrate(dsn: str) -> list[Migration]:
    """Apply every migration not yet recorded; returns the ones applied (empty: a no-op)."""
    applied_now = []
    with connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version INTEGER PRIMARY KEY,
                       name TEXT NOT NULL,
                       applied_at TIMESTAMP NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC'))"""
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in load_migrations():
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info("applied migration", extra={"version": migration.version, "migration": migration.name})
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
