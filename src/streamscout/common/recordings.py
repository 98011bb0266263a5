"""Readers for recorded Twitch chat, one small typed record per line, oldest first.

Three formats occur in ``../shared/datasets`` and in the wild:

* raw IRCv3 transcripts (``@tags :nick!nick@host PRIVMSG #channel :text``), e.g.
  ``go-twitch-irc/channel_xqcow_2019-09-15.irc.txt``; time = ``tmi-sent-ts``;
* ``YYYY-MM-DD_HH:MM:SS ;;; <raw IRC line>`` logs (dsteffan); time = the prefix, read as
  UTC with 1 s resolution (the IRC lines carry no tags); an unstamped line continues the
  previous entry (the logger wrote multi-line socket reads that way);
* Twitch VOD-comment JSON (``verbose_chat.json.gz`` of bocru-twitch-chats, a JSON array).
  ``createdAt`` is the message time, except where it is known to be wrong (the arypie
  broadcasts of 2021-2023: it sits near the stream start); whenever ``vod.json`` lies
  next to the file and ``createdAt`` is more than a minute away from
  ``created_at + contentOffsetSeconds``, the latter is used.

The simulator replays these, and the backtest reads them:

    >>> for msg in iter_messages("channel_xqcow_2019-09-15.irc.txt"):   # doctest: +SKIP
    ...     print(msg.channel, msg.timestamp_ms, msg.user, msg.text)
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Iterator, Mapping, NamedTuple

RAW_IRC = "irc"
TIMESTAMPED = "timestamped"
VOD_JSON = "vod-json"
LOG_SEPARATOR = " ;;; "
TIME_MISMATCH_MS = 60_000


class ChatRecord(NamedTuple):
    """One recorded chat line. ``emotes`` are (emote id, first index, last index) in code points."""

    channel: str  # broadcaster login, without '#'
    timestamp_ms: int
    user: str  # login of the sender ('' for server notices)
    text: str
    command: str = "PRIVMSG"  # PRIVMSG, USERNOTICE, CLEARCHAT, CLEARMSG, ...
    user_id: str = ""
    room_id: str = ""
    message_id: str = ""
    tags: Mapping[str, str] = {}
    emotes: tuple[tuple[str, int, int], ...] = ()
    raw: str = ""  # the original IRC line, when the format has one


class RecordingError(ValueError):
    """A recording cannot be read; the message names the file and line."""


def unescape_tag(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append({":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}.get(nxt, nxt))
            i += 2
            continue
        if ch != "\\":
            out.append(ch)
        i += 1
    return "".join(out)


def parse_emotes(value: str) -> tuple[tuple[str, int, int], ...]:
    """``25:0-4,12-16/1902:6-10`` -> ((25, 0, 4), (1902, 6, 10), (25, 12, 16)) sorted by position."""
    if not value:
        return ()
    ranges = []
    for group in value.split("/"):
        emote_id, _, positions = group.partition(":")
        for span in positions.split(","):
            start, _, end = span.partition("-")
            if start.isdigit() and end.isdigit():
                ranges.append((emote_id, int(start), int(end)))
    return tuple(sorted(ranges, key=lambda r: r[1]))


def parse_irc_line(line: str, timestamp_ms: int | None = None) -> ChatRecord | None:
    """A record for a channel line (PRIVMSG, USERNOTICE, CLEARCHAT, ...); None for the rest."""
    line = line.rstrip("\r\n")
    rest, tags = line, {}
    if rest.startswith("@"):
        raw_tags, _, rest = rest[1:].partition(" ")
        for item in raw_tags.split(";"):
            key, _, value = item.partition("=")
            tags[key] = unescape_tag(value)
    source = ""
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
    head, sep, trailing = rest.partition(" :")
    parts = head.split()
    if len(parts) < 2 or not parts[1].startswith("#"):
        return None
    command, channel = parts[0], parts[1][1:].lower()
    text = trailing if sep else ""
    user = tags.get("login") or (source.split("!", 1)[0] if "!" in source else "")
    if command == "CLEARCHAT":
        user = text
    ts = timestamp_ms
    if ts is None:
        sent = tags.get("tmi-sent-ts", "")
        if not sent.isdigit():
            return None
        ts = int(sent)
    return ChatRecord(channel, ts, user.lower(), text, command, tags.get("user-id", tags.get("target-user-id", "")),
                      tags.get("room-id", ""), tags.get("id", ""), tags, parse_emotes(tags.get("emotes", "")), line)


def detect_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".json", ".json.gz")):
        return VOD_JSON
    with _open_text(path) as handle:
        for line in handle:
            if line.strip():
                return TIMESTAMPED if LOG_SEPARATOR in line[:40] else RAW_IRC
    return RAW_IRC


def iter_records(path: str | Path, fmt: str | None = None) -> Iterator[ChatRecord]:
    """Every channel line of a recording (messages, sub notices, timeouts), in file order."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt == VOD_JSON:
        yield from _vod_records(path)
        return
    with _open_text(path) as handle:
        ts = None
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if fmt == TIMESTAMPED:
                stamp, sep, rest = line.partition(LOG_SEPARATOR)
                if sep:
                    line = rest
                    try:
                        ts = int(dt.datetime.strptime(stamp.strip(), "%Y-%m-%d_%H:%M:%S")
                                 .replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
                    except ValueError:
                        raise RecordingError(f"{path}:{number}: bad time stamp {stamp!r}") from None
                elif ts is None:
                    raise RecordingError(f"{path}:{number}: expected 'YYYY-MM-DD_HH:MM:SS ;;; <line>'")
                # a line without a stamp continues the previous entry's multi-line chunk
            record = parse_irc_line(line, ts)
            if record is not None:
                yield record


def iter_messages(path: str | Path, fmt: str | None = None) -> Iterator[ChatRecord]:
    """Only the chat messages (PRIVMSG) of a recording."""
    return (r for r in iter_records(path, fmt) if r.command == "PRIVMSG")


def _vod_records(path: Path) -> Iterator[ChatRecord]:
    channel = path.parent.parent.name.lower()  # data/<channel>/<vod>/verbose_chat.json.gz
    start_ms = _vod_start_ms(path.parent / "vod.json")
    try:
        with _open_text(path) as handle:
            comments = json.load(handle)
    except ValueError as exc:
        raise RecordingError(f"{path}: not a JSON array of VOD comments: {exc}") from None
    if not isinstance(comments, list):
        raise RecordingError(f"{path}: expected a JSON array of VOD comments")
    records = []
    for index, comment in enumerate(comments):
        try:
            records.append(_vod_record(comment, channel, start_ms))
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordingError(f"{path}: comment {index}: malformed ({exc!r})") from None
    records.sort(key=lambda r: r.timestamp_ms)  # stable: equal times keep file order
    yield from records


def _vod_record(comment: Mapping, channel: str, start_ms: int | None) -> ChatRecord:
    offset = comment.get("contentOffsetSeconds")
    created = comment.get("createdAt")
    ts = _iso_ms(created) if created else None
    if start_ms is not None and offset is not None:
        by_offset = start_ms + int(offset) * 1000
        if ts is None or abs(ts - by_offset) > TIME_MISMATCH_MS:
            ts = by_offset
    if ts is None:
        raise ValueError("no createdAt and no vod.json start")
    commenter = comment.get("commenter") or {}
    message = comment["message"]
    text_parts, emotes, position = [], [], 0
    for fragment in message.get("fragments") or []:
        text = fragment.get("text") or ""
        emote = fragment.get("emote") or {}
        emote_id = emote.get("emoteID") or emote.get("emoticon_id")  # GQL / older v5 comment format
        if emote_id and text:
            emotes.append((str(emote_id), position, position + len(text) - 1))
        text_parts.append(text)
        position += len(text)
    badges = ",".join(f"{b.get('setID') or b.get('_id')}/{b.get('version', '')}"
                      for b in message.get("userBadges") or [] if b and (b.get("setID") or b.get("_id")))
    tags = {"badges": badges, "color": message.get("userColor") or "", "display-name": commenter.get("displayName") or ""}
    return ChatRecord(channel, ts, (commenter.get("login") or "").lower(), "".join(text_parts), "PRIVMSG",
                      str(commenter.get("id") or ""), str(comment.get("channelId") or ""), comment.get("id", ""),
                      tags, tuple(emotes), "")


def _vod_start_ms(vod_json: Path) -> int | None:
    try:
        data = json.loads(vod_json.read_text())
        return _iso_ms(data["created_at"].replace(" ", "T"))
    except (OSError, ValueError, KeyError, AttributeError):
        return None


def _iso_ms(text: str) -> int:
    """ISO time with up to 9 fraction digits (Python 3.11 takes 6) and 'Z'."""
    text = text.strip().replace("Z", "+00:00")
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp() * 1000)


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")
