"""What ``GET /v1.0/clip`` accepts, decided without any I/O.

The raw query string goes in; either a :class:`ClipQuery` or a :class:`QueryError` naming the
parameter and the reason comes out. Nothing else may escape, whatever the client sends: the
HTTP layer turns a ``QueryError`` into a 400 and treats anything else as a bug.

    >>> from datetime import datetime, timezone
    >>> now = datetime(2026, 1, 8, tzinfo=timezone.utc)
    >>> q = parse_clip_query("limit=10&start=2026-01-01T00:00:00%2B01:00", now)
    >>> (q.start.isoformat(), q.end.isoformat(), q.limit)
    ('2025-12-31T23:00:00', '2026-01-08T00:00:00', 10)

Times are naive UTC after parsing because every TIMESTAMP column holds naive UTC.
Pagination is keyset pagination over ``(detected_at, id)`` newest first: the cursor is the
last row of a page, so rows inserted meanwhile can neither shift nor repeat a page.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

DEFAULT_WINDOW = timedelta(days=7)
DEFAULT_LIMIT = 24
MAX_LIMIT = 100
MAX_VALUE_LENGTH = 255  # streamer_login is VARCHAR(255); nothing valid is longer
PARAMETERS = ("start", "end", "limit", "cursor", "broadcaster", "min_score")

# ISO 8601 extended format. A space before the offset is accepted as "+": an unencoded "+" in a
# query string arrives as a space, and "…T10:00:00 02:00" has no other sensible reading.
_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<time>\d{2}:\d{2}(?::\d{2}(?:[.,](?P<frac>\d{1,9}))?)?)"
    r"(?P<tz>[Zz]|[+\- ]\d{2}(?::?\d{2})?)?)?"
)
_DIGITS = re.compile(r"[0-9]+")
_LOGIN = re.compile(r"[A-Za-z0-9_]{1,25}")  # Twitch's login syntax
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_BIGINT = 2**63 - 1


class QueryError(ValueError):
    """A parameter the API cannot accept; becomes a 400 naming ``parameter`` and ``reason``."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason

    def body(self) -> dict[str, str]:
        return {"error": "bad_parameter", "parameter": self.parameter, "reason": self.reason}


@dataclass(frozen=True)
class Cursor:
    """The last clip of the previous page; the next page starts strictly after it."""

    detected_at: datetime  # naive UTC
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.detected_at.isoformat(timespec="microseconds"), self.id])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        """Parse a token from :meth:`encode`; anything else raises ``QueryError``."""
        bad = QueryError("cursor", "not a cursor this API issued (take it from the `next` field)")
        if len(token) > 200 or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
            raise bad
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError):
            raise bad from None
        if not (
            isinstance(decoded, list)
            and len(decoded) == 2
            and isinstance(decoded[0], str)
            and type(decoded[1]) is int
            and 0 < decoded[1] <= _MAX_BIGINT
        ):
            raise bad
        try:
            detected_at = datetime.fromisoformat(decoded[0])
        except ValueError:
            raise bad from None
        if detected_at.tzinfo is not None:
            raise bad
        return cls(detected_at, decoded[1])


@dataclass(frozen=True)
class Broadcaster:
    """The ``broadcaster`` filter: a login, or digits that may be an id (or an all-digit login)."""

    login: str
    id: int | None


@dataclass(frozen=True)
class ClipQuery:
    """A validated ``GET /v1.0/clip`` request with every default resolved."""

    start: datetime  # naive UTC, inclusive
    end: datetime  # naive UTC, exclusive
    limit: int
    cursor: Cursor | None = None
    broadcaster: Broadcaster | None = None
    min_score: float | None = None

    def next_query_string(self, cursor: Cursor) -> str:
        """The query string of the page after ``cursor`` (for ``next_url``).

        The resolved start and end are spelled out so that the next page covers the same
        window even though the defaults move with the clock.
        """
        params = {"start": _iso_z(self.start), "end": _iso_z(self.end), "limit": str(self.limit)}
        if self.broadcaster is not None:
            params["broadcaster"] = self.broadcaster.login
        if self.min_score is not None:
            params["min_score"] = repr(self.min_score)
        params["cursor"] = cursor.encode()
        return urlencode(params)


def _iso_z(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


def parse_timestamp(parameter: str, value: str) -> datetime:
    """ISO 8601 (``2026-01-01``, ``…T10:00``, ``…T10:00:00.5Z``, ``…+02:00``) -> naive UTC."""
    match = _ISO.fullmatch(value)
    if not match:
        raise QueryError(parameter, "expected an ISO 8601 date-time such as 2026-01-01T12:00:00Z")
    text = match["date"]
    if match["time"]:
        time = match["time"]
        if match["frac"]:
            time = time[: -len(match["frac"]) - 1] + "." + match["frac"][:6].ljust(6, "0")
        text += "T" + time
        tz = match["tz"]
        if tz:
            text += "+00:00" if tz in "Zz" else ("+" + tz[1:] if tz[0] == " " else tz)
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError) as exc:
        raise QueryError(parameter, f"not a valid date-time ({exc})") from None
    return moment


def parse_limit(value: str) -> int:
    reason = f"expected a whole number from 1 to {MAX_LIMIT}"
    if not _DIGITS.fullmatch(value) or len(value) > 6:
        raise QueryError("limit", reason)
    limit = int(value)
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", reason)
    return limit


def parse_broadcaster(value: str) -> Broadcaster:
    if not _LOGIN.fullmatch(value):
        raise QueryError("broadcaster", "expected a Twitch login (letters, digits, _) or a numeric id")
    broadcaster_id = int(value) if _DIGITS.fullmatch(value) and int(value) <= _MAX_BIGINT else None
    return Broadcaster(login=value.lower(), id=broadcaster_id)


def parse_min_score(value: str) -> float:
    if len(value) > 32 or not _NUMBER.fullmatch(value):
        raise QueryError("min_score", "expected a number such as 4 or 6.5")
    score = float(value)
    if not math.isfinite(score):
        raise QueryError("min_score", "expected a finite number")
    return score


def parse_clip_query(query_string: str, now: datetime) -> ClipQuery:
    """Validate a raw query string (as the client sent it) against the rules in the module doc.

    An empty value counts as absent, as an HTML form with an empty field sends it. Unknown and
    repeated parameters are refused, so a typo (``limt=5``) is an error instead of being ignored.
    """
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, errors="replace", max_num_fields=50)
    except ValueError:
        raise QueryError("query", "too many parameters") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            shown = (name if len(name) <= 40 else name[:40] + "…") or "(empty name)"
            raise QueryError(shown, f"unknown parameter (known: {', '.join(PARAMETERS)})")
        if name in values:
            raise QueryError(name, "given more than once")
        if "\x00" in value or len(value) > MAX_VALUE_LENGTH:
            raise QueryError(name, "value is too long or contains a NUL character")
        values[name] = value
    given = {name: value for name, value in values.items() if value != ""}

    now_utc = now.astimezone(timezone.utc).replace(tzinfo=None)
    end = parse_timestamp("end", given["end"]) if "end" in given else None
    start = parse_timestamp("start", given["start"]) if "start" in given else None
    if end is None:
        if start is not None and start >= now_utc:
            raise QueryError("start", "must be before end (end defaults to now)")
        end = now_utc
    if start is None:
        try:
            start = end - DEFAULT_WINDOW
        except OverflowError:
            start = datetime.min
    if start >= end:
        raise QueryError("start", "must be before end")

    return ClipQuery(
        start=start,
        end=end,
        limit=parse_limit(given["limit"]) if "limit" in given else DEFAULT_LIMIT,
        cursor=Cursor.decode(given["cursor"]) if "cursor" in given else None,
        broadcaster=parse_broadcaster(given["broadcaster"]) if "broadcaster" in given else None,
        min_score=parse_min_score(given["min_score"]) if "min_score" in given else None,
    )


# The login comes from a scalar subquery rather than a join: the same plan, but much less for
# the planner to weigh, and planning is most of this query's cost.
CLIP_COLUMNS = (
    "c.id, c.clip_id, c.broadcaster_id,"
    " (SELECT s.streamer_login FROM streamers s WHERE s.broadcaster_id = c.broadcaster_id),"
    " c.embed_url, c.thumbnail_url, c.url, c.detected_at, c.created_at, c.score, c.title, c.duration_seconds"
)

RESOLVE_BROADCASTER_SQL = """
SELECT broadcaster_id FROM streamers WHERE lower(streamer_login) = %(login)s
UNION
SELECT broadcaster_id FROM streamers WHERE broadcaster_id = %(id)s
UNION
SELECT broadcaster_id FROM (SELECT broadcaster_id FROM clips WHERE broadcaster_id = %(id)s LIMIT 1) c
"""


def resolve_broadcaster_sql(broadcaster: Broadcaster) -> tuple[str, dict[str, Any]]:
    """SQL returning the broadcaster ids the filter value names (none: an unknown value)."""
    return RESOLVE_BROADCASTER_SQL, {"login": broadcaster.login, "id": broadcaster.id}


def clip_page_sql(query: ClipQuery, broadcaster_ids: list[int] | None) -> tuple[str, dict[str, Any]]:
    """The page's SQL, all values bound; fetches ``limit + 1`` rows to learn if a next page exists.

    The row comparison on ``(detected_at, id)`` walks ``idx_clips_detected_at_id``, or with a
    streamer filter ``idx_clips_broadcaster_detected_at_id``.
    """
    where = ["c.detected_at >= %(start)s", "c.detected_at < %(end)s"]
    params: dict[str, Any] = {"start": query.start, "end": query.end, "fetch": query.limit + 1}
    if query.cursor is not None:
        where.append("(c.detected_at, c.id) < (%(cursor_at)s, %(cursor_id)s)")
        params.update(cursor_at=query.cursor.detected_at, cursor_id=query.cursor.id)
    if broadcaster_ids is not None and len(broadcaster_ids) == 1:
        where.append("c.broadcaster_id = %(broadcaster_id)s")
        params["broadcaster_id"] = broadcaster_ids[0]
    elif broadcaster_ids is not None:  # a login that is also another channel's id: rare
        where.append("c.broadcaster_id = ANY(%(broadcaster_ids)s)")
        params["broadcaster_ids"] = broadcaster_ids
    if query.min_score is not None:
        where.append("c.score >= %(min_score)s")
        params["min_score"] = query.min_score
    sql = (
        f"SELECT {CLIP_COLUMNS} FROM clips c"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY c.detected_at DESC, c.id DESC LIMIT %(fetch)s"
    )
    return sql, params
