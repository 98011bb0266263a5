"""Twitch IRC lines -> ``chat-messages`` records, robust against odd input.

pyTwitchAPI's own tag parser raises on a tag without ``=`` (which ends its receive loop, the
connection then looks alive but delivers nothing), keeps IRCv3 escapes (``\\s`` in display names
and system messages) and its ``ChatMessage`` raises when ``tmi-sent-ts`` is missing. The
monitor's chat client (:mod:`streamscout.monitor.chat`) therefore parses tags with
:func:`parse_tags` (same output shape as pyTwitchAPI's, so its other handlers keep working) and
builds records straight from the parsed line with :func:`chat_record` / :func:`event_record`.
Every function here returns a valid record or None (nothing to publish); none raises on input.

    >>> line = ("@badges=subscriber/3;display-name=A\\\\sB;emotes=25:0-4;id=x1;mod=0;room-id=7;"
    ...         "subscriber=1;tmi-sent-ts=1568505600501;user-id=9 :a!a@a.tmi.twitch.tv PRIVMSG #c :Kappa hi")
    >>> rec = chat_record(parse_line(line), received_ms=0)
    >>> rec["user_name"], rec["metadata"]["emotes"], rec["metadata"]["is_subscriber"]
    ('A B', {'25': ['0-4']}, True)
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Mapping, Optional

from streamscout.common.schemas import chat_message, event_info

_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_BADGE_TAGS = ("badges", "badge-info", "source-badges", "source-badge-info")
_IGNORED_TAGS = ("client-nonce", "flags")
# A stable namespace: a record rebuilt from the same line gets the same message_id.
_ID_NAMESPACE = uuid.UUID("6f1b3c1e-52a4-4bb5-9a57-3d1b8e2c9f10")
# USERNOTICE tags that say how big an event is.
_COUNT_TAGS = ("msg-param-viewerCount", "msg-param-mass-gift-count", "msg-param-gift-months")


def unescape(value: str) -> str:
    """Undo IRCv3 tag-value escaping (``\\s`` space, ``\\:`` semicolon, ``\\\\`` backslash ...)."""
    if "\\" not in value:
        return value
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 < len(value):
                nxt = value[i + 1]
                out.append(_ESCAPES.get(nxt, nxt))
            i += 2  # a lone trailing backslash is dropped, as the spec says
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _is_position(value: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²", on which ``int()`` raises."""
    return value.isascii() and value.isdigit()


def parse_badges(value: Optional[str]) -> Optional[dict[str, str]]:
    """``subscriber/3,premium/1`` -> {"subscriber": "3", "premium": "1"}; junk entries skipped."""
    if not value:
        return None
    badges = {}
    for pair in value.split(","):
        name, _, version = pair.partition("/")
        if name:
            badges[name] = version
    return badges


def parse_emotes(value: Optional[str]) -> Optional[dict[str, list[dict[str, str]]]]:
    """``25:0-4,6-10/1902:12-16`` in pyTwitchAPI's shape: id -> [{start_position, end_position}].

    Malformed ranges are skipped, so one odd emote never costs the message.
    """
    if not value:
        return None
    emotes: dict[str, list[dict[str, str]]] = {}
    for part in value.split("/"):
        emote_id, _, ranges = part.partition(":")
        positions = []
        for r in ranges.split(","):
            start, sep, end = r.partition("-")
            if sep and _is_position(start) and _is_position(end) and int(start) <= int(end):
                positions.append({"start_position": start, "end_position": end})
        if emote_id and positions:
            emotes[emote_id] = positions
    return emotes or None


def parse_tags(raw: str) -> dict[str, Any]:
    """IRCv3 tags -> dict in pyTwitchAPI's shape (empty value -> None), values unescaped.

    Differences from pyTwitchAPI, on purpose: a tag without ``=`` is kept with value None
    instead of raising, a value containing ``=`` is kept whole, and escapes are undone.
    Written as one comprehension plus look-ups of the few structured tags because it runs
    once per chat line (a PRIVMSG carries about 18 tags).
    """
    tags: dict[str, Any] = {
        key: (unescape(value) if "\\" in value else value) or None
        for key, _, value in (tag.partition("=") for tag in raw.split(";"))
    }
    tags.pop("", None)
    for key in _IGNORED_TAGS:
        tags.pop(key, None)
    for key in _BADGE_TAGS:
        if key in tags:
            tags[key] = parse_badges(tags[key])
    if "emotes" in tags:
        tags["emotes"] = parse_emotes(tags["emotes"])
    if "emote-sets" in tags:
        tags["emote-sets"] = tags["emote-sets"].split(",") if tags["emote-sets"] else []
    return tags


def parse_line(line: str, parse_command: Optional[Callable[[str], Any]] = None) -> Optional[dict[str, Any]]:
    """One raw IRC line -> {"tags", "source", "command", "parameters"} (pyTwitchAPI's shape).

    ``parse_command`` is pyTwitchAPI's command parser when called from the chat client; the
    default understands the commands the monitor needs. Returns None for a line it cannot read.
    """
    line = line.rstrip("\r\n")
    tags: dict[str, Any] = {}
    rest = line
    if rest.startswith("@"):
        raw_tags, sep, rest = rest[1:].partition(" ")
        if not sep:
            return None
        tags = parse_tags(raw_tags)
    source = None
    if rest.startswith(":"):
        source_part, sep, rest = rest.partition(" ")
        if not sep:
            return None
        source = _parse_source(source_part)
    command_part, has_parameters, parameters = rest.partition(" :")
    if not command_part.strip():
        return None
    command = (parse_command or _parse_command)(command_part.strip())
    if command is None:
        return None
    return {"tags": tags, "source": source, "command": command, "parameters": parameters if has_parameters else None}


def _parse_source(raw: str) -> dict[str, Optional[str]]:
    nick, sep, host = raw.partition("!")
    return {"nick": nick if sep else None, "host": host if sep else nick}


def _parse_command(raw: str) -> Optional[dict[str, str]]:
    parts = raw.split(" ")
    if len(parts) >= 2:
        return {"command": parts[0], "channel": parts[1]}
    return {"command": parts[0]} if parts[0] else None


def _int_tag(tags: Mapping[str, Any], key: str) -> Optional[int]:
    """A non-negative integer tag that fits Kafka's and Flink's 64-bit fields, else None.

    ``isdigit`` alone would pass "²" (int() then raises) and 30-digit numbers (a record that
    cannot be encoded).
    """
    value = tags.get(key)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _emote_ranges(emotes: Any) -> dict[str, list[str]]:
    """pyTwitchAPI's emote dict (or a raw tag string) -> {emote_id: ["start-end", ...]}."""
    if isinstance(emotes, str):
        emotes = parse_emotes(emotes)
    if not isinstance(emotes, dict):
        return {}
    out = {}
    for emote_id, positions in emotes.items():
        ranges = []
        for p in positions if isinstance(positions, list) else []:
            if isinstance(p, dict):
                start, end = str(p.get("start_position", "")), str(p.get("end_position", ""))
                if _is_position(start) and _is_position(end) and int(start) <= int(end):
                    ranges.append(f"{start}-{end}")
        if ranges:
            out[str(emote_id)] = ranges
    return out


def _badges(badges: Any) -> dict[str, str]:
    if isinstance(badges, str):
        badges = parse_badges(badges)
    if not isinstance(badges, dict):
        return {}
    return {str(k): str(v) for k, v in badges.items()}


def _strip_action(text: str) -> str:
    """``/me waves`` arrives as ``\\x01ACTION waves\\x01``; keep only the words, as pyTwitchAPI does."""
    if text.startswith("\x01ACTION "):
        return text[8:].rstrip("\x01")
    return text


def _common(
    parsed: Mapping[str, Any],
    received_ms: int,
    channel_ids: Optional[Mapping[str, int]],
) -> Optional[dict[str, Any]]:
    tags = parsed.get("tags") or {}
    broadcaster_id = _int_tag(tags, "room-id")
    if broadcaster_id is None and channel_ids:
        channel = (parsed.get("command") or {}).get("channel", "")
        broadcaster_id = channel_ids.get(channel.lstrip("#").lower())
    if broadcaster_id is None:
        return None  # no key to publish it under: the caller counts it as malformed
    timestamp = _int_tag(tags, "tmi-sent-ts")
    if timestamp is None:
        timestamp = received_ms
    source = parsed.get("source") or {}
    user_name = tags.get("display-name") or tags.get("login") or (source.get("nick") or "").lstrip(":")
    text = _strip_action(parsed.get("parameters") or "")
    user_id = _int_tag(tags, "user-id") or 0
    message_id = tags.get("id") or str(
        uuid.uuid5(_ID_NAMESPACE, f"{broadcaster_id}:{timestamp}:{user_id}:{text}")
    )
    badges = _badges(tags.get("badges"))
    return dict(
        broadcaster_id=broadcaster_id,
        timestamp=timestamp,
        message_id=message_id,
        text=text,
        user_id=user_id,
        user_name=user_name or "",
        emotes=_emote_ranges(tags.get("emotes")),
        badges=badges,
        is_subscriber=tags.get("subscriber") == "1" or "subscriber" in badges,
        is_mod=tags.get("mod") == "1" or "moderator" in badges,
    )


def chat_record(
    parsed: Optional[Mapping[str, Any]],
    received_ms: int,
    channel_ids: Optional[Mapping[str, int]] = None,
) -> Optional[dict[str, Any]]:
    """A PRIVMSG -> ``chat-messages`` record, or None when it names no broadcaster.

    ``received_ms`` stands in for a missing ``tmi-sent-ts``; ``channel_ids`` (login -> id)
    for a missing ``room-id``. A missing ``id`` gets a deterministic UUID.
    """
    if not parsed:
        return None
    fields = _common(parsed, received_ms, channel_ids)
    return None if fields is None else chat_message(**fields)


def event_record(
    parsed: Optional[Mapping[str, Any]],
    received_ms: int,
    channel_ids: Optional[Mapping[str, int]] = None,
) -> Optional[dict[str, Any]]:
    """A USERNOTICE (raid, subgift, submysterygift, sub, ...) -> record with an ``event`` field."""
    if not parsed:
        return None
    fields = _common(parsed, received_ms, channel_ids)
    if fields is None:
        return None
    tags = parsed.get("tags") or {}
    count = next((c for c in (_int_tag(tags, k) for k in _COUNT_TAGS) if c is not None), None)
    fields["event"] = event_info(tags.get("msg-id") or "unknown", count, tags.get("system-msg") or "")
    return chat_message(**fields)
