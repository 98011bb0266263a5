"""Builders shared by the auth tests."""

from __future__ import annotations

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
