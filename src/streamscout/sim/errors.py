"""Twitch's error answer, shared by the Helix, OAuth and control handlers."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web


def twitch_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """``{"error": "Unauthorized", "status": 401, "message": "..."}``, as Twitch answers."""
    body: dict[str, Any] = {"error": HTTPStatus(status).phrase, "status": status, "message": message}
    return web.json_response(body, status=status, headers=headers)


async def read_params(request: web.Request) -> dict[str, str] | web.Response:
    """Query, form or JSON parameters merged (OAuth clients use all three); bad JSON -> 400."""
    params: dict[str, str] = dict(request.query)
    if not request.can_read_body:
        return params
    raw = await request.read()
    if not raw.strip():
        return params
    if request.content_type == "application/x-www-form-urlencoded":
        params.update({k: str(v) for k, v in (await request.post()).items()})
        return params
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return twitch_error(400, "Malformed request body: not valid JSON")
    if not isinstance(body, dict):
        return twitch_error(400, "Malformed request body: expected a JSON object")
    params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
    return params


async def read_json_object(request: web.Request) -> dict[str, Any] | web.Response:
    """A JSON object body, or Twitch's 400 answer."""
    try:
        body = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return twitch_error(400, "Malformed request body: not valid JSON")
    if not isinstance(body, dict):
        return twitch_error(400, "Malformed request body: expected a JSON object")
    return body
