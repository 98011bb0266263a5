"""The two Twitch OAuth calls every process needs, over the standard library only.

The Flink detector's Python worker makes plain HTTP calls (no asyncio, no pyTwitchAPI), and the
token lock must be held across a refresh, so refresh and validate are small blocking functions
here; the async services run them in a thread. Errors become :mod:`streamscout.auth.errors`
types built from status codes alone: a response body could echo what we sent, so none of it is
ever put in a message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, NamedTuple

from streamscout.auth.errors import RESEED, AuthServiceUnavailable, ClientCredentialsError, RefreshTokenRevoked
from streamscout.auth.store import TokenPair


class Validation(NamedTuple):
    """What ``GET <auth_url>validate`` says about a live access token."""

    client_id: str
    user_id: str
    login: str
    scopes: tuple[str, ...]
    expires_in: int | None


def _call(request: urllib.request.Request, timeout: float, what: str) -> tuple[int, Any]:
    """(status, parsed JSON body or None). Network failures and 5xx raise AuthServiceUnavailable."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AuthServiceUnavailable(
            f"cannot reach Twitch OAuth for {what} ({type(reason).__name__})", "retry later"
        ) from None
    if status >= 500:
        raise AuthServiceUnavailable(f"Twitch OAuth answered {status} to {what}", "retry later")
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


def validate_token(auth_url: str, access_token: str, timeout: float = 5.0) -> Validation | None:
    """Ask Twitch about ``access_token``; None when it is expired or revoked (401)."""
    request = urllib.request.Request(
        auth_url + "validate", headers={"Authorization": f"OAuth {access_token}"}, method="GET"
    )
    status, body = _call(request, timeout, "token validation")
    if status == 401:
        return None
    if status != 200 or not isinstance(body, dict):
        raise AuthServiceUnavailable(f"Twitch OAuth answered {status} to token validation", "retry later")
    expires_in = body.get("expires_in")
    return Validation(
        client_id=str(body.get("client_id", "")),
        user_id=str(body.get("user_id", "")),
        login=str(body.get("login", "")),
        scopes=tuple(str(s) for s in body.get("scopes") or ()),
        expires_in=int(expires_in) if isinstance(expires_in, (int, float)) else None,
    )


def refresh_token(
    auth_url: str, client_id: str, client_secret: str, refresh_token: str, timeout: float = 5.0
) -> TokenPair:
    """Exchange ``refresh_token`` for a new pair (``grant_type=refresh_token``)."""
    form = urllib.parse.urlencode(
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        }
    ).encode()
    request = urllib.request.Request(
        auth_url + "token",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    status, body = _call(request, timeout, "token refresh")
    if status == 200 and isinstance(body, dict) and body.get("access_token") and body.get("refresh_token"):
        expires_in = body.get("expires_in")
        return TokenPair(
            str(body["access_token"]),
            str(body["refresh_token"]),
            int(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else None,
        )
    message = str(body.get("message", "")).lower() if isinstance(body, dict) else ""
    if status == 403 or "client" in message:
        raise ClientCredentialsError(
            f"Twitch rejected the client id or secret when refreshing ({status})",
            "check STREAMSCOUT_TWITCH_CLIENT_ID and STREAMSCOUT_TWITCH_CLIENT_SECRET_FILE",
        )
    if status in (400, 401):
        raise RefreshTokenRevoked(f"Twitch refused the refresh token ({status})", RESEED)
    raise AuthServiceUnavailable(f"Twitch OAuth answered {status} to token refresh", "retry later")
