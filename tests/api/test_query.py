"""Every rule of GET /v1.0/clip's parameters, decided without a database."""

import dataclasses
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings, strategies as st

from streamscout.api.query import (
    DEFAULT_LIMIT,
    Broadcaster,
    ClipQuery,
    Cursor,
    QueryError,
    clip_page_sql,
    parse_clip_query,
    parse_timestamp,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
NAIVE_NOW = NOW.replace(tzinfo=None)


def parse(**params) -> ClipQuery:
    return parse_clip_query(urlencode(params), NOW)


def refused(query_string: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        parse_clip_query(query_string, NOW)
    return info.value


def test_defaults_are_the_last_seven_days_and_24_clips():
    q = parse()
    assert (q.start, q.end, q.limit) == (NAIVE_NOW - timedelta(days=7), NAIVE_NOW, DEFAULT_LIMIT)
    assert (q.cursor, q.broadcaster, q.min_score) == (None, None, None)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10)),
        ("2026-03-01T10:00:00z", datetime(2026, 3, 1, 10)),
        ("2026-03-01T10:00:00", datetime(2026, 3, 1, 10)),  # naive = UTC
        ("2026-03-01T10:00", datetime(2026, 3, 1, 10)),
        ("2026-03-01", datetime(2026, 3, 1)),
        ("2026-03-01 10:00:00", datetime(2026, 3, 1, 10)),
        ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10)),
        ("2026-03-01T12:00:00+0200", datetime(2026, 3, 1, 10)),
        ("2026-03-01T12:00:00+02", datetime(2026, 3, 1, 10)),
        ("2026-03-01T05:30:00-04:30", datetime(2026, 3, 1, 10)),
        ("2026-03-01T12:00:00 02:00", datetime(2026, 3, 1, 10)),  # an unencoded "+" arrives as a space
        ("2026-03-01T10:00:00.25Z", datetime(2026, 3, 1, 10, 0, 0, 250000)),
        ("2026-03-01T10:00:00,25Z", datetime(2026, 3, 1, 10, 0, 0, 250000)),
        ("2026-03-01T10:00:00.123456789Z", datetime(2026, 3, 1, 10, 0, 0, 123456)),
        ("2026-03-01T00:30:00+01:00", datetime(2026, 2, 28, 23, 30)),
    ],
)
def test_iso_8601_forms(text, expected):
    assert parse_timestamp("start", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "yesterday", "2026-13-01", "2026-02-30", "2026-03-01T25:00", "2026-03-01T10:60", "1709290000",
        "2026-03-01T10:00:00+25:00", "2026-03-01X10:00", "2026-W10-1", "20260301T100000", "2026-03-01T",
        "2026-03-01+02:00", " 2026-03-01", "2026-03-01T10:00:00Z ", "0001-01-01T00:00:00+01:00",
        "٢٠٢٦-03-01",
    ],
)
def test_unparseable_dates_are_refused_naming_the_parameter(text):
    for name in ("start", "end"):
        error = refused(urlencode({name: text}))
        assert error.parameter == name
        assert error.body() == {"error": "bad_parameter", "parameter": name, "reason": error.reason}


def test_start_must_be_before_end():
    assert refused("start=2026-03-02&end=2026-03-01").parameter == "start"
    assert refused("start=2026-03-01&end=2026-03-01").parameter == "start"
    assert "before end" in refused("start=2026-03-01T12:00:00%2B00:00&end=2026-03-01T13:00:00%2B02:00").reason


def test_only_start_given_runs_to_now_and_a_future_start_is_refused():
    q = parse(start="2026-03-01")
    assert (q.start, q.end) == (datetime(2026, 3, 1), NAIVE_NOW)
    assert "defaults to now" in refused("start=2026-03-11").reason


def test_only_end_given_covers_the_seven_days_before_it():
    q = parse(end="2026-03-01")
    assert (q.start, q.end) == (datetime(2026, 2, 22), datetime(2026, 3, 1))
    q = parse(end="0001-01-03")
    assert q.start == datetime.min


@pytest.mark.parametrize("value", ["1", "24", "100", "007"])
def test_limit_in_range(value):
    assert parse(limit=value).limit == int(value)


@pytest.mark.parametrize("value", ["0", "101", "-1", "+5", "5.0", "1e2", " 5", "ten", "9" * 200, "٣"])
def test_limit_out_of_range_or_not_a_number(value):
    error = refused(urlencode({"limit": value}))
    assert (error.parameter, error.reason) == ("limit", "expected a whole number from 1 to 100")


def test_unknown_and_repeated_parameters_are_refused():
    assert refused("limt=5").parameter == "limt"
    assert "unknown parameter" in refused("limt=5").reason
    assert refused("limit=5&limit=6").reason == "given more than once"
    assert refused("&".join(f"p{i}=1" for i in range(60))).parameter == "query"


def test_empty_values_count_as_absent_like_an_empty_form_field():
    assert parse(broadcaster="", min_score="", start="", end="", limit="", cursor="") == parse()


def test_nul_and_overlong_values_are_refused():
    assert refused("broadcaster=a%00b").parameter == "broadcaster"
    assert refused("cursor=" + "A" * 300).parameter == "cursor"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Shroud", Broadcaster("shroud", None)),
        ("some_one_42", Broadcaster("some_one_42", None)),
        ("12345", Broadcaster("12345", 12345)),
        ("9" * 25, Broadcaster("9" * 25, None)),  # digits beyond BIGINT can only be a login
    ],
)
def test_broadcaster_login_or_id(value, expected):
    assert parse(broadcaster=value).broadcaster == expected


@pytest.mark.parametrize("value", ["<img src=x onerror=alert(1)>", "a b", "x" * 26, "robert'); DROP TABLE clips;--", "é"])
def test_broadcaster_that_cannot_be_a_login_or_id(value):
    assert refused(urlencode({"broadcaster": value})).parameter == "broadcaster"


@pytest.mark.parametrize("value, expected", [("4", 4.0), ("6.5", 6.5), ("-1", -1.0), (".5", 0.5), ("1e1", 10.0)])
def test_min_score(value, expected):
    assert parse(min_score=value).min_score == expected


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e999", "4,5", "0x10", "four", "1" * 40])
def test_min_score_must_be_a_finite_number(value):
    assert refused(urlencode({"min_score": value})).parameter == "min_score"


def test_cursor_round_trip():
    cursor = Cursor(datetime(2026, 3, 9, 8, 7, 6, 543210), 987654)
    assert Cursor.decode(cursor.encode()) == cursor
    assert parse(cursor=cursor.encode()).cursor == cursor
    assert Cursor.decode(Cursor(datetime(2026, 3, 9), 1).encode()).detected_at == datetime(2026, 3, 9)


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        "AAAA",
        _b64(b"{}"),
        _b64(b'["2026-03-09T08:07:06", "1"]'),
        _b64(b'["2026-03-09T08:07:06", 0]'),
        _b64(b'["2026-03-09T08:07:06", 9223372036854775808]'),
        _b64(b'["2026-03-09T08:07:06", true]'),
        _b64(b'["2026-03-09T08:07:06", 1.5]'),
        _b64(b'["2026-03-09T08:07:06+01:00", 1]'),
        _b64(b'["yesterday", 1]'),
        _b64(b'["2026-03-09T08:07:06", 1, 2]'),
        _b64(b"\xff\xfe"),
    ],
)
def test_tampered_cursors_are_refused(token):
    assert refused("cursor=" + quote(token)).parameter == "cursor"


def test_next_query_string_repeats_the_resolved_window_and_filters():
    q = parse(broadcaster="Shroud", min_score="6", limit="10")
    cursor = Cursor(datetime(2026, 3, 9, 1, 2, 3), 42)
    again = parse_clip_query(q.next_query_string(cursor), NOW + timedelta(hours=5))
    assert again == dataclasses.replace(q, cursor=cursor)


def test_sql_binds_every_value():
    q = parse(broadcaster="shroud", min_score="6", cursor=Cursor(datetime(2026, 3, 9), 7).encode(), limit="5")
    sql, params = clip_page_sql(q, [11, 12])
    assert "shroud" not in sql and "2026" not in sql and "7" not in sql.replace("%(", "")
    assert params == {
        "start": q.start, "end": q.end, "fetch": 6, "cursor_at": datetime(2026, 3, 9), "cursor_id": 7,
        "broadcaster_ids": [11, 12], "min_score": 6.0,
    }
    one_sql, one = clip_page_sql(q, [11])
    assert one["broadcaster_id"] == 11 and "broadcaster_ids" not in one and "ANY" not in one_sql
    assert "ORDER BY c.detected_at DESC, c.id DESC" in sql
    plain_sql, plain = clip_page_sql(parse(), None)
    assert set(plain) == {"start", "end", "fetch"} and "ANY" not in plain_sql and "cursor" not in plain_sql


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_query_string_parses_or_is_a_query_error(query_string):
    try:
        parse_clip_query(query_string, NOW)
    except QueryError as error:
        assert error.parameter and error.reason


_names = st.sampled_from(["start", "end", "limit", "cursor", "broadcaster", "min_score"])
_values = st.one_of(
    st.text(max_size=40),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(lambda d: d.isoformat()),
    st.integers().map(str),
    st.floats().map(repr),
    st.builds(Cursor, st.datetimes(), st.integers(min_value=-5, max_value=2**64)).map(Cursor.encode),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(_names, _values), max_size=6))
def test_any_known_parameters_parse_or_are_a_query_error(pairs):
    try:
        q = parse_clip_query(urlencode(pairs), NOW)
    except QueryError as error:
        assert error.parameter in {name for name, _ in pairs}
    else:
        assert q.start < q.end and 1 <= q.limit <= 100
