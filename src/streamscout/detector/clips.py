"""The clip lifecycle's I/O: a small Helix client and the Postgres repository of detections.

Both run inside PyFlink's Python worker, one call at a time, so they are deliberately plain
(``http.client``/``urllib`` with timeouts, one psycopg connection) and never raise for a Twitch
failure: the client classifies every answer into a :class:`~.lifecycle.Outcome` and the
lifecycle decides what to do with it.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

import psycopg

from streamscout.common.db import connect
from streamscout.detector import lifecycle as L
from streamscout.detector.lifecycle import CLIPPING_DISABLED, ClipLifecycle, ClipRequest, Outcome

log = logging.getLogger(__name__)


class TokenProvider(Protocol):
    """What the client needs from the shared token file (``streamscout.auth`` implements it)."""

    def access_token(self) -> str: ...

    def refresh_after_401(self, stale_access_token: str) -> str: ...


def classify(status: int) -> str:
    """The lifecycle's view of an HTTP status of Create Clip / Get Clips."""
    if status in (200, 202):
        return "ok"
    if status == 401:
        return "unauthorized"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "offline"
    if status == 429 or status >= 500:
        return "transient"
    return "rejected"


class HelixClipClient:
    """Create Clip and Get Clips against Helix (or the simulator at the same paths).

    Timeouts, refused connections, resets and unparseable bodies are ``transient``; nothing
    here raises for what Twitch answers.
    """

    def __init__(self, base_url: str, client_id: str, tokens: TokenProvider, timeout: float = 5.0) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.client_id = client_id
        self.tokens = tokens
        self.timeout = timeout
        self.last_token: str | None = None  # what the last call sent (to refresh after a 401)

    def create(self, broadcaster_id: int) -> Outcome:
        outcome = self._call("POST", "clips", {"broadcaster_id": str(broadcaster_id)})
        if outcome.kind == "ok" and not (outcome.clip and outcome.clip.get("id")):
            return Outcome("transient", outcome.status, "create answer without a clip id")
        return outcome

    def get(self, clip_id: str) -> Outcome:
        outcome = self._call("GET", "clips", {"id": clip_id})
        if outcome.kind == "ok" and not outcome.clip:
            return Outcome("missing", outcome.status, "not processed yet")
        if outcome.kind == "offline":  # Get Clips answers 404 for no clip on some versions
            return Outcome("missing", outcome.status, "not found")
        return outcome

    def _call(self, method: str, path: str, query: dict) -> Outcome:
        url = self.base_url + path + "?" + urllib.parse.urlencode(query)
        try:
            token = self.last_token = self.tokens.access_token()
        except Exception as exc:  # a broken token file is an auth problem, not a crash
            return Outcome("unauthorized", None, f"token unavailable: {type(exc).__name__}")
        request = urllib.request.Request(
            url,
            method=method,
            data=b"" if method == "POST" else None,
            headers={"Authorization": f"Bearer {token}", "Client-Id": self.client_id},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, b""
        except (TimeoutError, socket.timeout):
            return Outcome("transient", None, "timeout")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return Outcome("transient", None, f"connection: {type(exc).__name__}")
        kind = classify(status)
        if kind != "ok":
            return Outcome(kind, status)
        try:
            data = json.loads(body)["data"]
            clip = data[0] if data else None
            if clip is not None and not isinstance(clip, dict):
                raise TypeError("clip is not an object")
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            return Outcome("transient", status, f"bad body: {type(exc).__name__}")
        return Outcome("ok", status, "", clip)


@dataclass(frozen=True)
class DetectionRow:
    """A ``detections`` row as the lifecycle needs it."""

    id: int
    request: ClipRequest
    state: str
    attempts: int
    clip_id: str | None
    failure_reason: str | None
    updated_at_ms: int


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).replace(tzinfo=None)


def _ms(value: datetime) -> int:
    return round(value.replace(tzinfo=timezone.utc).timestamp() * 1000)


_COLUMNS = (
    "id, broadcaster_id, bucket_start, detected_at, message_count, baseline_mean, baseline_stddev,"
    " score, state, create_attempts, clip_id, failure_reason, updated_at"
)


def _row(values: tuple) -> DetectionRow:
    (id_, bid, bucket, detected, count, mean, std, score, state, attempts, clip_id, reason, updated) = values
    request = ClipRequest(int(bid), _ms(bucket), _ms(detected), int(count), float(mean), float(std), float(score))
    return DetectionRow(int(id_), request, state, int(attempts), clip_id, reason, _ms(updated))


class DetectionRepository:
    """Detections and clips in Postgres; every write is idempotent so replays are harmless.

    Holds one autocommit connection and reconnects once when it broke (the job outlives
    Postgres restarts); a second failure propagates so Flink restarts the task.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: psycopg.Connection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self.dsn, autocommit=True, connect_timeout=5)
                cur = self._conn.execute(sql, params)
                return cur.fetchall() if cur.description else []
            except psycopg.OperationalError:
                self.close()
                if attempt == 2:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def record_detection(self, request: ClipRequest) -> tuple[DetectionRow, bool]:
        """Insert the detection (before Twitch is called); returns (row, inserted_now).

        The (broadcaster_id, bucket_start) key makes a replayed detection find the first row.
        """
        rows = self._execute(
            f"""INSERT INTO detections (broadcaster_id, bucket_start, detected_at, message_count,
                       baseline_mean, baseline_stddev, score)
                VALUES (%s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (broadcaster_id, bucket_start) DO NOTHING
                RETURNING {_COLUMNS}""",
            (
                request.broadcaster_id,
                _ts(request.bucket_start_ms),
                _ts(request.detected_at_ms),
                request.count,
                request.mean,
                request.stddev,
                request.score,
            ),
        )
        if rows:
            return _row(rows[0]), True
        rows = self._execute(
            f"SELECT {_COLUMNS} FROM detections WHERE broadcaster_id = %s AND bucket_start = %s",
            (request.broadcaster_id, _ts(request.bucket_start_ms)),
        )
        return _row(rows[0]), False

    def open_detections(self, broadcaster_id: int) -> list[DetectionRow]:
        """Detections of a broadcaster whose clip is not finished (pending or created)."""
        rows = self._execute(
            f"""SELECT {_COLUMNS} FROM detections
                WHERE broadcaster_id = %s AND state IN ('pending', 'created') ORDER BY id""",
            (broadcaster_id,),
        )
        return [_row(r) for r in rows]

    def detection(self, detection_id: int) -> DetectionRow | None:
        rows = self._execute(f"SELECT {_COLUMNS} FROM detections WHERE id = %s", (detection_id,))
        return _row(rows[0]) if rows else None

    def clipping_allowed(self, broadcaster_id: int) -> bool:
        rows = self._execute("SELECT allows_clipping FROM streamers WHERE broadcaster_id = %s", (broadcaster_id,))
        return not rows or rows[0][0] is not False

    def persist(self, detection_id: int, lc: ClipLifecycle) -> None:
        self._execute(
            """UPDATE detections SET state = %s, create_attempts = %s, clip_id = %s,
                      failure_reason = %s, updated_at = NOW() AT TIME ZONE 'UTC'
               WHERE id = %s""",
            (lc.db_state(), lc.attempts, lc.clip_id, lc.persisted_failure_reason(), detection_id),
        )

    def mark_no_clipping(self, broadcaster_id: int) -> None:
        """Remember a 403 on the channel (the monitor skips it until the recheck period ends)."""
        self._execute(
            """INSERT INTO streamers (broadcaster_id, streamer_login, allows_clipping, clipping_refused_at)
               VALUES (%s, %s, FALSE, NOW() AT TIME ZONE 'UTC')
               ON CONFLICT (broadcaster_id) DO UPDATE
               SET allows_clipping = FALSE, clipping_refused_at = EXCLUDED.clipping_refused_at""",
            (broadcaster_id, str(broadcaster_id)),
        )

    def store_clip(self, detection_id: int, request: ClipRequest, clip: dict) -> None:
        """Insert the processed clip; a second insert of the same clip changes nothing."""
        clip_id = str(clip["id"])
        embed_url = clip.get("embed_url") or f"https://clips.twitch.tv/embed?clip={clip_id}"
        self._execute(
            """INSERT INTO clips (broadcaster_id, clip_id, embed_url, thumbnail_url, detected_at,
                       detection_id, score, title, duration_seconds, creator_name, url)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT DO NOTHING""",
            (
                request.broadcaster_id,
                clip_id,
                embed_url,
                clip.get("thumbnail_url") or "",
                _ts(request.detected_at_ms),
                detection_id,
                request.score,
                clip.get("title"),
                clip.get("duration"),
                clip.get("creator_name"),
                clip.get("url"),
            ),
        )


class ClipRunner:
    """Carries out a lifecycle's actions: the one place where Twitch and Postgres are called.

    ``clock`` returns wall-clock milliseconds; ``on_metric(name, value)`` receives
    ``clip_created`` (Create Clip latency in ms), ``clip_stored`` and ``clip_failed:<reason>``.
    Methods return the timer times the caller must register (Flink timers in the job).
    """

    def __init__(self, client, repository: DetectionRepository, tokens: TokenProvider, schedule, clock, on_metric=None):
        self.client = client
        self.repository = repository
        self.tokens = tokens
        self.schedule = schedule
        self.clock = clock
        self.on_metric = on_metric or (lambda name, value: None)

    def begin(self, request: ClipRequest) -> tuple[dict[int, ClipLifecycle], list[int]]:
        """Record a detection and start (or, if it was recorded before, resume) its clip."""
        row, inserted = self.repository.record_detection(request)
        if not inserted:
            log.info("detection seen before", extra={"detection_id": row.id, "state": row.state})
            return self._resume([row])
        lc, actions = ClipLifecycle.start(row.request, self.schedule)
        if not self.repository.clipping_allowed(request.broadcaster_id):
            actions = lc.abandon(CLIPPING_DISABLED)
        timers = self._run(row.id, lc, actions)
        return ({} if lc.done else {row.id: lc}), timers

    def adopt(self, broadcaster_id: int, known: set[int]) -> tuple[dict[int, ClipLifecycle], list[int]]:
        """Resume open detections from Postgres that the operator's state does not hold."""
        rows = [r for r in self.repository.open_detections(broadcaster_id) if r.id not in known]
        return self._resume(rows)

    def fire(self, detection_id: int, lc: ClipLifecycle) -> list[int]:
        """A timer fired. Before a Create Clip, Postgres is asked whether it knows more than ``lc``:
        a job restored from a checkpoint taken before an earlier attempt (the attempt count is
        persisted before every call) would otherwise create a second Twitch clip. Postgres wins:
        ``lc`` is rebuilt from the row (look-ups of the clip made then, or ``interrupted`` when the
        answer to that attempt was never recorded). ``lc`` is updated in place."""
        now = self.clock()
        if lc.phase == L.WAITING and lc.due_ms is not None and now >= lc.due_ms:
            row = self.repository.detection(detection_id)
            if row is not None and (row.state != "pending" or row.attempts > lc.attempts):
                log.warning("detection is further along in Postgres than in the job's state; resuming from Postgres",
                            extra={"detection_id": detection_id, "state": row.state, "attempts": row.attempts,
                                   "state_attempts": lc.attempts})
                resumed, actions = ClipLifecycle.resume(
                    row.request, self.schedule, db_state=row.state, attempts=row.attempts, clip_id=row.clip_id,
                    failure_reason=row.failure_reason, updated_at_ms=row.updated_at_ms, now_ms=now)
                lc.__dict__.update(resumed.__dict__)
                if row.state in ("stored", "failed"):
                    return []
                return self._run(detection_id, lc, actions)
        return self._run(detection_id, lc, lc.on_timer(now))

    def _resume(self, rows: list[DetectionRow]) -> tuple[dict[int, ClipLifecycle], list[int]]:
        adopted, timers = {}, []
        for row in rows:
            lc, actions = ClipLifecycle.resume(
                row.request,
                self.schedule,
                db_state=row.state,
                attempts=row.attempts,
                clip_id=row.clip_id,
                failure_reason=row.failure_reason,
                updated_at_ms=row.updated_at_ms,
                now_ms=self.clock(),
            )
            timers += self._run(row.id, lc, actions)
            if not lc.done:
                adopted[row.id] = lc
        return adopted, timers

    def _run(self, detection_id: int, lc: ClipLifecycle, actions: list) -> list[int]:
        timers: list[int] = []
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, L.ScheduleTimer):
                timers.append(action.at_ms)
            elif isinstance(action, L.Persist):
                self.repository.persist(detection_id, lc)
                if lc.phase == L.FAILED:
                    self.on_metric(f"clip_failed:{lc.failure_reason}", 1)
                    log.warning(
                        "clip failed",
                        extra={"detection_id": detection_id, "reason": lc.failure_reason, "attempts": lc.attempts},
                    )
            elif isinstance(action, L.CreateClip):
                started = time.monotonic()
                outcome = self.client.create(action.broadcaster_id)
                latency_ms = (time.monotonic() - started) * 1000
                log.info(
                    "create clip",
                    extra={"detection_id": detection_id, "kind": outcome.kind, "status": outcome.status,
                           "detail": outcome.detail, "latency_ms": round(latency_ms, 1)},
                )
                if outcome.kind == "ok":
                    self.on_metric("clip_created", latency_ms)
                queue += lc.on_create_result(outcome, self.clock())
            elif isinstance(action, L.GetClip):
                queue += lc.on_get_result(self.client.get(action.clip_id), self.clock())
            elif isinstance(action, L.RefreshToken):
                try:
                    self.tokens.refresh_after_401(self.client.last_token or "")
                except Exception as exc:  # the next call then fails as unauthorized
                    log.error("token refresh failed", extra={"error": type(exc).__name__})
            elif isinstance(action, L.MarkNoClipping):
                self.repository.mark_no_clipping(action.broadcaster_id)
            elif isinstance(action, L.StoreClip):
                self.repository.store_clip(detection_id, lc.request, action.clip)
                self.on_metric("clip_stored", 1)
            else:
                raise TypeError(f"unknown action {action!r}")
        return timers
