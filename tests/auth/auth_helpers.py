"""Builders shared by the auth tests."""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from streamscout.auth.store import TokenFile

T0 = datetime(2026, 11, 27, 23, 0, tzinfo=timezone.utc)


def make_tokens(**changes) -> TokenFile:
    values = dict(
        client_id="client-abc",
        user_id="1001",
        user_login="scout_bot",
        scopes=("chat:read", "clips:edit"),
        access_token="access-0000000000000000000000000",
        refresh_token="refresh-000000000000000000000000",
        issued_at=T0,
        obtained_at=T0,
        expires_at=T0 + timedelta(hours=4),
        version=0,
    )
    values.update(changes)
    return TokenFile(**values)


@contextmanager
def unprivileged():
    """Root ignores file modes: run the block as "nobody" (effective uid) when the tests are root."""
    as_root = os.geteuid() == 0
    if as_root:
        os.seteuid(65534)
    try:
        yield
    finally:
        if as_root:
            os.seteuid(0)
