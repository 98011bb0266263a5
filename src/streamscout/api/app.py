"""The HTTP side of the API: bottle routes, wrapped in a WSGI layer for metrics and headers.

    pool = create_pool(dsn)
    app = create_app(ClipStore(pool), registry=CollectorRegistry())
    waitress.serve(app, host="127.0.0.1", port=8080)

Everything the app needs (store, metrics registry, clock) is passed in, so tests run it against
a throwaway database and read its metrics from a registry of their own.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import mimetypes
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Any, Callable, Iterable

import bottle
import jinja2
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streamscout.api.cache import TtlCache
from streamscout.api.openapi import openapi_document
from streamscout.api.query import QueryError, parse_clip_query
from streamscout.api.store import UNAVAILABLE, ClipStore, clip_json

log = logging.getLogger(__name__)

CLIP_PATH = "/v1.0/clip"
TWITCH_PLAYER_ORIGINS = "https://clips.twitch.tv https://player.twitch.tv"
# Clip thumbnails live on Twitch's CDNs; nothing else is loaded from outside.
TWITCH_IMAGE_ORIGINS = "https://clips-media-assets2.twitch.tv https://static-cdn.jtvnw.net"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    f"img-src 'self' data: {TWITCH_IMAGE_ORIGINS}; frame-src {TWITCH_PLAYER_ORIGINS}; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
]
_SECURITY_NAMES = {name.lower() for name, _ in SECURITY_HEADERS}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


class StaticFiles:
    """The files of ``static/``, read once, each also served under a content-hashed name.

    The page links the hashed names (``app.3f9c…e1.js``) with a year-long immutable cache; a new
    release changes the name. The plain names stay reachable with ``no-cache`` and an ETag.
    """

    def __init__(self) -> None:
        self.files: dict[str, StaticFile] = {}
        self.hashed: dict[str, str] = {}  # plain name -> hashed name
        for entry in resources.files("streamscout.api").joinpath("static").iterdir():
            if not entry.is_file() or entry.name.startswith("."):
                continue
            body = entry.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:16]
            content_type = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            if content_type.startswith("text/") or content_type.endswith(("javascript", "json", "svg+xml")):
                content_type += "; charset=utf-8"
            stem, dot, ext = entry.name.rpartition(".")
            hashed = f"{stem}.{digest}.{ext}" if dot else f"{entry.name}.{digest}"
            self.files[entry.name] = self.files[hashed] = StaticFile(body, content_type, f'"{digest}"')
            self.hashed[entry.name] = hashed

    def url(self, name: str) -> str:
        return f"/static/{self.hashed[name]}"

    def is_hashed(self, name: str) -> bool:
        return name in self.files and name not in self.hashed


class PoolCollector(Collector):
    """Pool gauges read at scrape time from ``pool.get_stats()``."""

    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self.stats = stats

    def collect(self) -> Iterable[GaugeMetricFamily]:
        stats = self.stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        yield GaugeMetricFamily("streamscout_api_pool_in_use", "Pooled Postgres connections lent out.", value=size - idle)
        yield GaugeMetricFamily("streamscout_api_pool_idle", "Pooled Postgres connections idle.", value=idle)
        yield GaugeMetricFamily(
            "streamscout_api_pool_waiting", "Requests waiting for a connection.", value=stats.get("requests_waiting", 0)
        )


class _Observed:
    """WSGI wrapper: security headers on every response, request count and latency by route."""

    def __init__(self, app: bottle.Bottle, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "streamscout_api_requests", "HTTP requests answered.", ["route", "status"], registry=registry
        )
        self.latency = Histogram(
            "streamscout_api_request_seconds", "Time to answer a request.", ["route"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        status_seen: list[str] = []

        def start(status: str, headers: list, exc_info: Any = None) -> Callable:
            status_seen.append(status)
            headers = [h for h in headers if h[0].lower() not in _SECURITY_NAMES] + SECURITY_HEADERS
            return start_response(status, headers, exc_info)

        body = self.app(environ, start)
        route = environ.get("bottle.route")
        label = route.rule if route is not None else "unmatched"
        status = status_seen[-1].split(" ", 1)[0] if status_seen else "000"
        self.requests.labels(label, status).inc()
        self.latency.labels(label).observe(time.perf_counter() - started)
        return body


def _json_response(payload: Any, status: int = 200) -> bytes:
    bottle.response.status = status
    bottle.response.content_type = "application/json"
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _guard(callback: Callable) -> Callable:
    """Bottle plugin: an unexpected exception is logged (JSON) and answered with a JSON 500."""

    @functools.wraps(callback)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except bottle.HTTPResponse:
            raise
        except Exception:
            log.exception(
                "unexpected error answering a request",
                extra={"path": bottle.request.path, "query": bottle.request.query_string[:500]},
            )
            return _json_response({"error": "internal", "reason": "unexpected error (logged)"}, 500)

    return guarded


def _error_page(error: bottle.HTTPError) -> bytes:
    return _json_response({"error": error.status_line.split(" ", 1)[1].lower().replace(" ", "_"),
                           "reason": str(error.body)}, error.status_code)


def _raw_query_string() -> str:
    """The query string as the client sent it (WSGI hands it over as latin-1 text)."""
    raw = bottle.request.environ.get("QUERY_STRING", "")
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def create_app(
    store: ClipStore,
    *,
    registry: CollectorRegistry,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    cache_seconds: float = 1.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> _Observed:
    """The WSGI application; the bottle app is its ``.app`` attribute.

    ``cache_seconds``: how long an identical ``/v1.0/clip`` query is answered from memory
    (see :mod:`streamscout.api.cache`); 0 turns the cache off.
    """
    app = bottle.Bottle(catchall=True)
    app.install(_guard)
    for code in (400, 404, 405, 500):
        app.error_handler[code] = _error_page
    static = StaticFiles()
    templates = jinja2.Environment(
        loader=jinja2.PackageLoader("streamscout.api", "templates"),
        autoescape=True,
    )
    registry.register(PoolCollector(store.stats))
    unavailable = {"error": "database_unavailable", "reason": "Postgres is not answering; retry shortly"}
    answers: TtlCache[tuple[bytes, str | None]] = TtlCache(cache_seconds, clock=monotonic)

    def link_next(next_url: str | None) -> None:
        if next_url:
            bottle.response.set_header("Link", f'<{next_url}>; rel="next"')

    @app.get(CLIP_PATH)
    def clips() -> bytes:
        raw = _raw_query_string()
        bottle.response.set_header("Cache-Control", "no-store")
        cached = answers.get(raw)
        if cached is not None:
            bottle.response.content_type = "application/json"
            link_next(cached[1])
            return cached[0]
        try:
            query = parse_clip_query(raw, clock())
        except QueryError as exc:
            return _json_response(exc.body(), 400)
        try:
            broadcaster_ids = store.broadcaster_ids(query)
            if broadcaster_ids == []:
                return _json_response(
                    QueryError("broadcaster", "no streamer with this login or id is known").body(), 400
                )
            rows, next_cursor = store.page(query, broadcaster_ids)
        except UNAVAILABLE as exc:
            log.warning("clip query failed: database unavailable", extra={"error": str(exc)})
            bottle.response.set_header("Retry-After", "5")
            return _json_response(unavailable, 503)
        next_url = f"{CLIP_PATH}?{query.next_query_string(next_cursor)}" if next_cursor else None
        body = _json_response(
            {
                "clips": [clip_json(row) for row in rows],
                "next": next_cursor.encode() if next_cursor else None,
                "next_url": next_url,
                "start": query.start.isoformat() + "Z",
                "end": query.end.isoformat() + "Z",
                "limit": query.limit,
            }
        )
        answers.put(raw, (body, next_url))
        link_next(next_url)
        return body

    @app.get("/health")
    def health() -> bytes:
        bottle.response.set_header("Cache-Control", "no-store")
        try:
            store.ping()
        except UNAVAILABLE as exc:
            return _json_response({"status": "unavailable", "reason": str(exc) or type(exc).__name__,
                                   "pool": store.stats()}, 503)
        return _json_response({"status": "ok", "pool": store.stats()})

    @app.get("/metrics")
    def metrics() -> bytes:
        bottle.response.content_type = CONTENT_TYPE_LATEST
        return generate_latest(registry)

    @app.get("/v1.0/openapi.json")
    def openapi() -> bytes:
        return _json_response(openapi_document())

    page_template = templates.get_template("index.html")

    @app.get("/")
    def index() -> str:
        bottle.response.content_type = "text/html; charset=utf-8"
        bottle.response.set_header("Cache-Control", "no-cache")
        return page_template.render(
            css_url=static.url("app.css"), js_url=static.url("app.js"),
            icon_url=static.url("favicon.svg"), clip_path=CLIP_PATH,
        )

    @app.get("/static/<name>")
    def static_file(name: str) -> Any:
        item = static.files.get(name)
        if item is None:
            return _json_response({"error": "not_found", "reason": "no such static file"}, 404)
        cache = "public, max-age=31536000, immutable" if static.is_hashed(name) else "no-cache"
        bottle.response.set_header("Cache-Control", cache)
        bottle.response.set_header("ETag", item.etag)
        if item.etag in bottle.request.get_header("If-None-Match", ""):
            return bottle.HTTPResponse(status=304, headers=dict(bottle.response.headers))
        bottle.response.content_type = item.content_type
        return item.body

    wsgi = _Observed(app, registry)
    return wsgi
