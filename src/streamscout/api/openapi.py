"""The OpenAPI 3 description served at ``/v1.0/openapi.json`` (clients and fuzzers read it)."""

from __future__ import annotations

from streamscout.api.query import DEFAULT_LIMIT, MAX_LIMIT

_ERROR = {
    "type": "object",
    "required": ["error", "reason"],
    "properties": {
        "error": {"type": "string"},
        "parameter": {"type": "string"},
        "reason": {"type": "string"},
    },
}

_CLIP = {
    "type": "object",
    "required": ["clip_id", "broadcaster_id", "embed_url", "thumbnail_url", "detected_at"],
    "properties": {
        "clip_id": {"type": "string"},
        "broadcaster_id": {"type": "string", "description": "Twitch user id (digits)."},
        "broadcaster_login": {"type": ["string", "null"]},
        "embed_url": {"type": "string"},
        "thumbnail_url": {"type": "string"},
        "url": {"type": ["string", "null"], "description": "Public clip page."},
        "detected_at": {"type": "string", "format": "date-time"},
        "created_at": {"type": ["string", "null"], "format": "date-time"},
        "score": {"type": ["number", "null"], "description": "Intensity of the chat spike."},
        "title": {"type": ["string", "null"]},
        "duration": {"type": ["number", "null"], "description": "Seconds."},
    },
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def openapi_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "StreamScout API",
            "version": "1.0",
            "description": "Clips of chat spikes on top Twitch streams, newest first.",
        },
        "paths": {
            "/v1.0/clip": {
                "get": {
                    "operationId": "listClips",
                    "summary": "Clips detected in [start, end), newest first, keyset-paginated.",
                    "parameters": [
                        _param("start", "ISO 8601; naive means UTC. Default: end - 7 days.",
                               {"type": "string", "format": "date-time"}),
                        _param("end", "ISO 8601, exclusive. Default: now.", {"type": "string", "format": "date-time"}),
                        _param("limit", f"Page size, default {DEFAULT_LIMIT}.",
                               {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
                        _param("cursor", "The `next` value of the previous page.", {"type": "string"}),
                        _param("broadcaster", "Streamer login or numeric broadcaster id.", {"type": "string"}),
                        _param("min_score", "Only clips at least this intense.", {"type": "number"}),
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["clips", "next", "next_url", "start", "end", "limit"],
                                "properties": {
                                    "clips": {"type": "array", "items": _CLIP},
                                    "next": {"type": ["string", "null"], "description": "Cursor of the next page."},
                                    "next_url": {"type": ["string", "null"]},
                                    "start": {"type": "string", "format": "date-time"},
                                    "end": {"type": "string", "format": "date-time"},
                                    "limit": {"type": "integer"},
                                },
                            },
                            "A page of clips.",
                        ),
                        "400": _json(_ERROR, "A parameter was refused; `parameter` names it."),
                        "503": _json(_ERROR, "Postgres is not answering; retry later."),
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "200 when Postgres answers, 503 otherwise; both with pool statistics.",
                    "responses": {
                        "200": _json({"type": "object"}, "Healthy."),
                        "503": _json({"type": "object"}, "Postgres is not answering."),
                    },
                }
            },
        },
    }
