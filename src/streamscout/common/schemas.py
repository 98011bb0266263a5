"""The Kafka record schemas shared by the monitor (producer) and the detector (consumer).

``chat-messages`` carries the seed spec's chat record, exactly as specified::

    {"broadcaster_id": 12345, "timestamp": 1704067200000, "message_id": "uuid-string",
     "text": "message content", "user_id": 67890, "user_name": "viewer_name",
     "metadata": {"emotes": {}, "badges": {}, "is_subscriber": false, "is_mod": false}}

plus, on records that are not chat lines but channel events (USERNOTICE: raids, gifted subs,
subs), one extra field ``event``. A chat record never has it, so a consumer that only wants chat
keeps records without ``event`` (in Flink SQL: declare ``event`` and filter ``event IS NULL``;
a JSON source that does not declare it sees events as ordinary rows, which is why the detector
should declare it). Events are rare but bursty: a 50-sub gift flood is 51 records in a second.

``stream-lifecycle`` carries the spec's online/offline record plus an optional ``reason``.

Builders return plain dicts ready for ``json.dumps``; validators raise :class:`SchemaError`
naming the offending field, so bad input gets a clear error instead of a silent drop.

    >>> rec = chat_message(broadcaster_id=1, timestamp=1704067200000, message_id="m1",
    ...                    text="hi", user_id=2, user_name="viewer")
    >>> validate_chat_message(rec)["metadata"]
    {'emotes': {}, 'badges': {}, 'is_subscriber': False, 'is_mod': False}
"""

from __future__ import annotations

import json

import orjson
from typing import Any, Mapping, Optional

LIFECYCLE_TYPES = ("online", "offline")
CHAT_FIELDS = ("broadcaster_id", "timestamp", "message_id", "text", "user_id", "user_name", "metadata")
LIFECYCLE_FIELDS = ("event_type", "broadcaster_id", "broadcaster_login", "rank", "timestamp")


class SchemaError(ValueError):
    """A record does not match its topic's schema; the message names the field."""


def chat_message(
    *,
    broadcaster_id: int,
    timestamp: int,
    message_id: str,
    text: str,
    user_id: int,
    user_name: str,
    emotes: Optional[Mapping[str, list[str]]] = None,
    badges: Optional[Mapping[str, str]] = None,
    is_subscriber: bool = False,
    is_mod: bool = False,
    event: Optional[Mapping[str, Any]] = None,
) -> dict[str, Any]:
    """A ``chat-messages`` record. ``event`` only for USERNOTICE records (see module doc).

    ``emotes`` maps an emote id to its ``"start-end"`` character ranges in ``text``;
    ``badges`` maps a badge name to its version, as in the IRC tags.
    """
    record: dict[str, Any] = {
        "broadcaster_id": broadcaster_id,
        "timestamp": timestamp,
        "message_id": message_id,
        "text": text,
        "user_id": user_id,
        "user_name": user_name,
        "metadata": {
            "emotes": dict(emotes or {}),
            "badges": dict(badges or {}),
            "is_subscriber": is_subscriber,
            "is_mod": is_mod,
        },
    }
    if event is not None:
        record["event"] = dict(event)
    return record


def event_info(event_type: str, count: Optional[int] = None, system_text: str = "") -> dict[str, Any]:
    """The ``event`` field of a USERNOTICE record.

    ``event_type`` is the IRC ``msg-id`` (raid, subgift, submysterygift, sub, resub, ...);
    ``count`` the raid's viewers or the gift flood's size when the tags say so.
    """
    return {"type": event_type, "count": count, "system_text": system_text}


def lifecycle_event(
    *,
    event_type: str,
    broadcaster_id: int,
    broadcaster_login: str,
    rank: Optional[int],
    timestamp: int,
    reason: Optional[str] = None,
) -> dict[str, Any]:
    """A ``stream-lifecycle`` record; ``timestamp`` in seconds, as in the spec.

    ``rank`` is None only for a channel left after it vanished from the ranking.
    """
    record: dict[str, Any] = {
        "event_type": event_type,
        "broadcaster_id": broadcaster_id,
        "broadcaster_login": broadcaster_login,
        "rank": rank,
        "timestamp": timestamp,
    }
    if reason is not None:
        record["reason"] = reason
    return record


def _require(record: Mapping[str, Any], name: str, kinds: tuple[type, ...], where: str = "") -> Any:
    if name not in record:
        raise SchemaError(f"{where}{name}: missing")
    value = record[name]
    # bool is an int subclass; a boolean id or timestamp is a bug, not a number
    if isinstance(value, bool) and bool not in kinds:
        raise SchemaError(f"{where}{name}: expected {_names(kinds)}, got bool")
    if not isinstance(value, kinds):
        raise SchemaError(f"{where}{name}: expected {_names(kinds)}, got {type(value).__name__}")
    return value


def _json_object(record: Any) -> dict[str, Any]:
    """A record as a dict: parsed when it is JSON bytes or text, refused unless an object."""
    if isinstance(record, (bytes, str)):
        try:
            record = json.loads(record)
        except ValueError as exc:
            raise SchemaError(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise SchemaError(f"expected a JSON object, got {type(record).__name__}")
    return record


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def validate_chat_message(record: Any) -> dict[str, Any]:
    """Check a ``chat-messages`` record (a dict, or its JSON bytes/str); returns the dict."""
    record = _json_object(record)
    unknown = set(record) - set(CHAT_FIELDS) - {"event"}
    if unknown:
        raise SchemaError(f"{sorted(unknown)[0]}: unknown field")
    for name in ("broadcaster_id", "timestamp", "user_id"):
        if _require(record, name, (int,)) < 0:
            raise SchemaError(f"{name}: must not be negative")
    if not _require(record, "message_id", (str,)):
        raise SchemaError("message_id: must not be empty")
    _require(record, "text", (str,))
    _require(record, "user_name", (str,))
    metadata = _require(record, "metadata", (dict,))
    emotes = _require(metadata, "emotes", (dict,), "metadata.")
    for emote_id, ranges in emotes.items():
        if not isinstance(ranges, list) or not all(_is_range(r) for r in ranges):
            raise SchemaError(f"metadata.emotes.{emote_id}: expected a list of 'start-end' strings")
    badges = _require(metadata, "badges", (dict,), "metadata.")
    for badge, version in badges.items():
        if not isinstance(version, str):
            raise SchemaError(f"metadata.badges.{badge}: expected str")
    _require(metadata, "is_subscriber", (bool,), "metadata.")
    _require(metadata, "is_mod", (bool,), "metadata.")
    if "event" in record:
        event = _require(record, "event", (dict,))
        if not _require(event, "type", (str,), "event."):
            raise SchemaError("event.type: must not be empty")
        if event.get("count") is not None:
            _require(event, "count", (int,), "event.")
    return record


def _is_range(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    start, sep, end = value.partition("-")
    return bool(sep) and start.isdigit() and end.isdigit() and int(start) <= int(end)


def validate_lifecycle_event(record: Any) -> dict[str, Any]:
    """Check a ``stream-lifecycle`` record (a dict, or its JSON bytes/str); returns the dict."""
    record = _json_object(record)
    unknown = set(record) - set(LIFECYCLE_FIELDS) - {"reason"}
    if unknown:
        raise SchemaError(f"{sorted(unknown)[0]}: unknown field")
    if _require(record, "event_type", (str,)) not in LIFECYCLE_TYPES:
        raise SchemaError(f"event_type: expected one of {LIFECYCLE_TYPES}, got {record['event_type']!r}")
    _require(record, "broadcaster_id", (int,))
    if not _require(record, "broadcaster_login", (str,)):
        raise SchemaError("broadcaster_login: must not be empty")
    if record.get("rank") is not None and _require(record, "rank", (int,)) < 1:
        raise SchemaError("rank: must be at least 1")
    if "rank" not in record:
        raise SchemaError("rank: missing")
    _require(record, "timestamp", (int,))
    if "reason" in record:
        _require(record, "reason", (str,))
    return record


def encode(record: Mapping[str, Any]) -> bytes:
    """The record's Kafka value: compact UTF-8 JSON (non-ASCII kept as is, not escaped).

    orjson, because this runs once per chat message (0.5 µs instead of the stdlib's 6.6 µs);
    like the stdlib it refuses lone surrogates, and it refuses integers beyond 64 bits.
    """
    return orjson.dumps(record)
