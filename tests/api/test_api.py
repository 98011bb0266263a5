"""GET /v1.0/clip, /health, /metrics, /static and the page against a real Postgres.

Every test works in a time window or on broadcasters of its own, so they share one database.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

import psycopg
import pytest
from api_support import add_clip, add_streamer, api, start_api, stop_api, utcnow  # noqa: F401 (api: fixture)

from streamscout.api.app import CONTENT_SECURITY_POLICY
from streamscout.api.store import ClipStore

pytestmark = pytest.mark.integration


def window(day: int) -> tuple[datetime, datetime]:
    """A window of its own for each test (windows never touch)."""
    start = datetime(2025, 1, day)
    return start, start + timedelta(hours=23)


def iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def clips(api, **params) -> dict:
    answer = api.get("/v1.0/clip?" + urlencode(params))
    assert answer.status == 200, answer.body
    return answer.json()


def walk(api, **params) -> list[dict]:
    """Every clip of a query, following `next_url` page by page."""
    page = clips(api, **params)
    seen = list(page["clips"])
    while page["next_url"]:
        answer = api.get(page["next_url"])
        assert answer.status == 200
        page = answer.json()
        seen.extend(page["clips"])
    return seen


def test_default_window_is_the_last_seven_days_newest_first(api, postgres_dsn):
    add_streamer(postgres_dsn, 101, "Recent_One")
    now = utcnow()
    inside = [add_clip(postgres_dsn, 101, now - timedelta(hours=h)) for h in (1, 30, 24 * 7 - 1)]
    add_clip(postgres_dsn, 101, now - timedelta(days=7, hours=1))  # too old for the default window
    add_clip(postgres_dsn, 101, now + timedelta(hours=1))  # in the future: after the default end
    page = clips(api, broadcaster="recent_one")
    assert [c["clip_id"] for c in page["clips"]] == inside
    assert page["limit"] == 24 and page["next"] is None and page["next_url"] is None


def test_each_clip_has_every_field(api, postgres_dsn):
    add_streamer(postgres_dsn, 102, "fields_streamer")
    start, end = window(2)
    clip_id = add_clip(postgres_dsn, 102, start + timedelta(hours=1, microseconds=500), score=7.25, title="Big play")
    [clip] = clips(api, start=iso(start), end=iso(end))["clips"]
    assert clip == {
        "clip_id": clip_id,
        "broadcaster_id": "102",
        "broadcaster_login": "fields_streamer",
        "embed_url": f"https://clips.twitch.tv/embed?clip={clip_id}",
        "thumbnail_url": f"https://clips-media-assets2.twitch.tv/{clip_id}-preview-480x272.jpg",
        "url": f"https://clips.twitch.tv/{clip_id}",
        "detected_at": "2025-01-02T01:00:00.000500Z",
        "created_at": "2025-01-02T01:00:25.000500Z",
        "score": 7.25,
        "title": "Big play",
        "duration": 30.0,
    }


def test_clip_of_an_unknown_streamer_and_missing_details(api, postgres_dsn):
    start, end = window(3)
    add_clip(postgres_dsn, 999001, start, score=None, title=None, duration=None)
    [clip] = clips(api, start=iso(start), end=iso(end))["clips"]
    assert (clip["broadcaster_login"], clip["score"], clip["title"], clip["duration"]) == (None, None, None, None)


def test_window_is_start_inclusive_end_exclusive_with_offsets(api, postgres_dsn):
    start, end = window(4)
    at_start = add_clip(postgres_dsn, 103, start)
    add_clip(postgres_dsn, 103, end)
    before = add_clip(postgres_dsn, 103, end - timedelta(microseconds=1))
    assert [c["clip_id"] for c in clips(api, start=iso(start), end=iso(end))["clips"]] == [before, at_start]
    # The same window, spelled in +02:00, naive, and with a space where an unencoded "+" was.
    for s, e in [
        ("2025-01-04T02:00:00+02:00", "2025-01-05T01:00:00+02:00"),
        ("2025-01-04T00:00:00", "2025-01-04T23:00"),
        ("2025-01-04T02:00:00 02:00", "2025-01-04T18:00:00-05:00"),
    ]:
        assert len(clips(api, start=s, end=e)["clips"]) == 2
    answer = api.get("/v1.0/clip?start=2025-01-04T02:00:00+02:00&end=2025-01-05T01:00:00+02:00")
    assert answer.status == 200 and len(answer.json()["clips"]) == 2


def test_pages_cover_every_clip_once_in_order(api, postgres_dsn):
    start, end = window(5)
    # Several clips share one detected_at: the id breaks the tie.
    ids = [add_clip(postgres_dsn, 104, start + timedelta(minutes=m // 3)) for m in range(23)]
    seen = walk(api, start=iso(start), end=iso(end), limit=4)
    assert [c["clip_id"] for c in seen] == list(reversed(ids))
    first_answer = api.get("/v1.0/clip?" + urlencode({"start": iso(start), "end": iso(end), "limit": 4}))
    first = first_answer.json()
    assert first["next"] and "cursor=" + first["next"] in first["next_url"]
    assert first_answer.headers["Link"] == f'<{first["next_url"]}>; rel="next"'
    assert "Link" not in api.get("/v1.0/clip?" + urlencode({"start": iso(start), "end": iso(end), "limit": 23})).headers
    exact = clips(api, start=iso(start), end=iso(end), limit=23)
    assert len(exact["clips"]) == 23 and exact["next"] is None


def test_pagination_is_stable_under_inserts(api, postgres_dsn):
    start, end = window(6)
    base = [add_clip(postgres_dsn, 105, start + timedelta(hours=12, minutes=m)) for m in range(20)]
    first = clips(api, start=iso(start), end=iso(end), limit=5)
    assert [c["clip_id"] for c in first["clips"]] == base[::-1][:5]
    boundary = datetime.fromisoformat(first["clips"][-1]["detected_at"].rstrip("Z"))
    # Newer clips, one tied with the page's last clip (higher id = before it), and older ones.
    add_clip(postgres_dsn, 105, start + timedelta(hours=20))
    add_clip(postgres_dsn, 105, boundary)
    older = [add_clip(postgres_dsn, 105, start + timedelta(hours=1, minutes=m)) for m in range(3)]
    rest = []
    page = first
    while page["next_url"]:
        page = api.get(page["next_url"]).json()
        rest.extend(c["clip_id"] for c in page["clips"])
    assert rest == base[::-1][5:] + older[::-1]


def test_pagination_while_a_writer_inserts_concurrently(api, postgres_dsn):
    start, end = window(7)
    base = [add_clip(postgres_dsn, 106, start + timedelta(minutes=m)) for m in range(0, 600, 5)]
    stop = threading.Event()

    def writer():
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            minute = 1
            while not stop.is_set():  # new clips between the existing ones and after them
                add_clip(conn, 106, start + timedelta(minutes=minute % 900))
                minute += 5

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen = walk(api, start=iso(start), end=iso(end), limit=7)
    finally:
        stop.set()
        thread.join()
    keys = [(c["detected_at"], c["clip_id"]) for c in seen]
    assert len(set(keys)) == len(keys), "a clip was served twice"
    assert [c["detected_at"] for c in seen] == sorted((c["detected_at"] for c in seen), reverse=True)
    assert set(base) <= {c["clip_id"] for c in seen}, "a clip present from the start was skipped"


def test_broadcaster_filter_by_login_case_insensitive_or_id(api, postgres_dsn):
    start, end = window(8)
    add_streamer(postgres_dsn, 107, "FilterMe")
    add_streamer(postgres_dsn, 108, "other")
    mine = add_clip(postgres_dsn, 107, start + timedelta(hours=1))
    add_clip(postgres_dsn, 108, start + timedelta(hours=2))
    for value in ("filterme", "FILTERME", "107"):
        assert [c["clip_id"] for c in clips(api, start=iso(start), end=iso(end), broadcaster=value)["clips"]] == [mine]
    # An id that only appears in clips (no streamers row yet) is known too.
    lone = add_clip(postgres_dsn, 999107, start + timedelta(hours=3))
    assert [c["clip_id"] for c in clips(api, start=iso(start), end=iso(end), broadcaster="999107")["clips"]] == [lone]


def test_unknown_broadcaster_is_a_400_naming_it(api):
    for value in ("nobody_here", "424242"):
        answer = api.get("/v1.0/clip?broadcaster=" + value)
        assert answer.status == 400
        assert answer.json() == {
            "error": "bad_parameter", "parameter": "broadcaster", "reason": "no streamer with this login or id is known",
        }


def test_min_score_filter(api, postgres_dsn):
    start, end = window(9)
    strong = add_clip(postgres_dsn, 109, start + timedelta(hours=1), score=9.0)
    add_clip(postgres_dsn, 109, start + timedelta(hours=2), score=4.0)
    add_clip(postgres_dsn, 109, start + timedelta(hours=3), score=None)
    edge = add_clip(postgres_dsn, 109, start + timedelta(hours=4), score=6.5)
    assert [c["clip_id"] for c in clips(api, start=iso(start), end=iso(end), min_score="6.5")["clips"]] == [edge, strong]
    assert len(clips(api, start=iso(start), end=iso(end), min_score="-100")["clips"]) == 3


@pytest.mark.parametrize(
    "query_string, parameter",
    [
        ("start=yesterday", "start"),
        ("end=2025-02-30", "end"),
        ("start=2025-01-02&end=2025-01-01", "start"),
        ("start=2025-01-01&end=2025-01-01", "start"),
        ("start=2999-01-01", "start"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("limit=1&limit=2", "limit"),
        ("cursor=garbage!", "cursor"),
        ("cursor=" + quote("WyJ4IiwxXQ"), "cursor"),
        ("broadcaster=%3Cimg%20src%3Dx%3E", "broadcaster"),
        ("min_score=nan", "min_score"),
        ("min_score=lots", "min_score"),
        ("colour=red", "colour"),
        ("start=%00", "start"),
    ],
)
def test_bad_parameters_are_400_with_json_naming_them(api, query_string, parameter):
    answer = api.get("/v1.0/clip?" + query_string)
    assert answer.status == 400
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    assert body["error"] == "bad_parameter" and body["parameter"] == parameter and body["reason"]


def test_security_headers_on_every_response(api):
    for path in ("/", "/v1.0/clip", "/v1.0/clip?limit=0", "/health", "/metrics", "/nowhere",
                 "/static/app.css", "/v1.0/openapi.json"):
        headers = api.get(path).headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
    assert "frame-src https://clips.twitch.tv https://player.twitch.tv;" in CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY


def test_unknown_path_and_method_are_json(api):
    answer = api.get("/v1.0/clips")
    assert answer.status == 404 and answer.json()["error"] == "not_found"
    request = urllib.request.Request(api.url + "/v1.0/clip", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 405 and json.loads(info.value.read())["error"] == "method_not_allowed"


def test_page_links_hashed_static_files_and_static_caching(api):
    page = api.get("/")
    assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.body.decode()
    js = re.search(r'src="(/static/app\.[0-9a-f]{16}\.js)"', html)[1]
    css = re.search(r'href="(/static/app\.[0-9a-f]{16}\.css)"', html)[1]
    assert 'data-clip-path="/v1.0/clip"' in html
    hashed = api.get(js)
    assert hashed.status == 200 and hashed.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert hashed.headers["Content-Type"].startswith("text/javascript")
    plain = api.get("/static/app.js")
    assert plain.body == hashed.body and plain.headers["Cache-Control"] == "no-cache"
    etag = api.get(css).headers["ETag"]
    assert api.get(css, headers={"If-None-Match": etag}).status == 304
    assert api.get("/static/nothing.js").status == 404
    assert api.get("/static/..%2Fapp.py").status == 404


def test_health_reports_pool_stats(api):
    answer = api.get("/health")
    assert answer.status == 200
    body = answer.json()
    assert body["status"] == "ok" and body["pool"]["pool_max"] == 4 and "pool_available" in body["pool"]


def test_metrics_count_requests_by_route_and_status(api):
    api.get("/v1.0/clip?limit=0")
    api.get("/v1.0/clip")
    api.get("/no/such/page")
    text = api.get("/metrics").body.decode()
    assert 'streamscout_api_requests_total{route="/v1.0/clip",status="400"}' in text
    assert 'streamscout_api_requests_total{route="/v1.0/clip",status="200"}' in text
    assert 'streamscout_api_requests_total{route="unmatched",status="404"}' in text
    assert 'streamscout_api_request_seconds_bucket{le="0.005",route="/v1.0/clip"}' in text
    assert "streamscout_api_pool_in_use " in text and "streamscout_api_pool_idle " in text


def test_openapi_description(api):
    doc = api.get("/v1.0/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    names = [p["name"] for p in doc["paths"]["/v1.0/clip"]["get"]["parameters"]]
    assert names == ["start", "end", "limit", "cursor", "broadcaster", "min_score"]


class ExplodingStore(ClipStore):
    def page(self, query, broadcaster_ids):
        raise RuntimeError("boom")


def test_unexpected_error_is_logged_and_answered_with_json_500(postgres_dsn, caplog):
    api, pool = start_api(postgres_dsn, store_factory=ExplodingStore)
    try:
        with caplog.at_level(logging.ERROR, logger="streamscout.api.app"):
            answer = api.get("/v1.0/clip")
        assert answer.status == 500
        assert answer.json() == {"error": "internal", "reason": "unexpected error (logged)"}
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        [record] = [r for r in caplog.records if r.getMessage() == "unexpected error answering a request"]
        assert record.path == "/v1.0/clip" and "boom" in str(record.exc_info[1])
    finally:
        stop_api(api, pool)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_identical_queries_are_answered_from_memory_for_a_second(postgres_dsn):
    clock = FakeMonotonic()
    api, pool = start_api(postgres_dsn, cache_seconds=1.0, monotonic=clock)
    try:
        start, end = window(10)
        first = add_clip(postgres_dsn, 110, start + timedelta(hours=1))
        query = urlencode({"start": iso(start), "end": iso(end)})
        assert [c["clip_id"] for c in api.get("/v1.0/clip?" + query).json()["clips"]] == [first]
        second = add_clip(postgres_dsn, 110, start + timedelta(hours=2))
        assert [c["clip_id"] for c in api.get("/v1.0/clip?" + query).json()["clips"]] == [first]
        assert [c["clip_id"] for c in api.get("/v1.0/clip?" + query + "&limit=24").json()["clips"]] == [second, first]
        paged = api.get("/v1.0/clip?" + query + "&limit=1")
        assert api.get("/v1.0/clip?" + query + "&limit=1").headers["Link"] == paged.headers["Link"]
        clock.now += 1.0
        assert [c["clip_id"] for c in api.get("/v1.0/clip?" + query).json()["clips"]] == [second, first]
        assert api.get("/v1.0/clip?limit=0").status == 400  # refusals are never cached answers
    finally:
        stop_api(api, pool)
