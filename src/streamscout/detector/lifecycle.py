"""The life of one clip, from detection to a stored row, as a pure state machine.

Nothing here sleeps, calls Twitch or touches Postgres: every method takes the current time and
an event (a timer fired, a Create Clip answer, a Get Clips answer) and returns the *actions* the
driver must carry out (schedule a timer, call Twitch, persist the row, ...). The PyFlink operator
drives it with Flink processing-time timers; tests drive it with plain numbers.

    lc = ClipLifecycle.start(request, schedule)           # -> Schedule(detected_at + 10 s)
    actions = lc.on_timer(now_ms)                          # -> Persist, CreateClip
    actions = lc.on_create_result(Outcome.ok(...), now_ms) # -> Persist, Schedule(+15 s)

Why this shape:

* Create Clip is called ``clip_delay`` after the detection, so Twitch's capture window (roughly
  85 s before and 5 s after the call) has the moment well inside it.
* Transient failures (5xx, 429, timeout, connection error, garbage JSON) are retried at fixed
  offsets *after the first attempt* (2 s and 4 s): a slow failing call does not push the retries
  later than the schedule, it only makes the next one due at once.
* 401 means the access token expired under us: refresh once and call again right away; a second
  401 is a real authorisation problem and fails the clip.
* 403 means the channel does not allow clipping (Twitch says so only this way): remember it on the
  channel and never retry. 404 means the channel went offline: give up. Other 4xx: give up.
* Twitch processes a created clip asynchronously; it is looked up ``fetch_offsets`` after the
  create (15 s, then 30 s and 60 s, since one look at 15 s misses a noticeable share).
* Every attempt is persisted *before* the call (``create_attempts`` up, ``failure_reason``
  cleared), so a driver that crashes mid-call can tell "a call may have created a clip" apart
  from "the previous call failed" when it resumes the row from Postgres (see :meth:`resume`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Phases. The Postgres ``detections.state`` column holds the coarser db_state().
WAITING = "waiting"  # before a create call (first or retry) is due
FETCHING = "fetching"  # created; waiting for Twitch to finish processing
STORED = "stored"
FAILED = "failed"

# Failure reasons (also the label of the clip_failures metric).
CLIPPING_DISABLED = "clipping_disabled"
OFFLINE = "offline"
REJECTED = "rejected"
UNAUTHORIZED = "unauthorized"
RETRIES_EXHAUSTED = "retries_exhausted"
PROCESSING_TIMEOUT = "processing_timeout"
INTERRUPTED = "interrupted"  # a create call was in flight when the job died: never repeat it
FAILURE_REASONS = (
    CLIPPING_DISABLED,
    OFFLINE,
    REJECTED,
    UNAUTHORIZED,
    RETRIES_EXHAUSTED,
    PROCESSING_TIMEOUT,
    INTERRUPTED,
)


@dataclass(frozen=True)
class Schedule:
    """Timing of the lifecycle, in milliseconds (built from the detector settings)."""

    clip_delay_ms: int = 10_000
    retry_offsets_ms: tuple[int, ...] = (2_000, 4_000)
    fetch_offsets_ms: tuple[int, ...] = (15_000, 30_000, 60_000)

    @classmethod
    def from_settings(cls, settings: Any) -> "Schedule":
        return cls(
            clip_delay_ms=round(settings.detector_clip_delay_seconds * 1000),
            retry_offsets_ms=tuple(round(s * 1000) for s in settings.float_list("detector_retry_offsets")),
            fetch_offsets_ms=tuple(round(s * 1000) for s in settings.float_list("detector_fetch_offsets")),
        )


@dataclass(frozen=True)
class ClipRequest:
    """One detection that should become a clip (what the detector saw, and when)."""

    broadcaster_id: int
    bucket_start_ms: int
    detected_at_ms: int
    count: int
    mean: float
    stddev: float
    score: float


@dataclass(frozen=True)
class Outcome:
    """The answer of one Twitch call, already classified by the client.

    kind: ``ok`` | ``missing`` (Get Clips: not processed yet) | ``transient`` | ``unauthorized`` |
    ``forbidden`` | ``offline`` | ``rejected``.
    """

    kind: str
    status: int | None = None
    detail: str = ""
    clip: dict | None = None  # create: {"id", "edit_url"}; get: the Helix clip object

    @classmethod
    def ok(cls, clip: dict, status: int = 200) -> "Outcome":
        return cls("ok", status, "", clip)


# --- actions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleTimer:
    at_ms: int


@dataclass(frozen=True)
class CreateClip:
    broadcaster_id: int


@dataclass(frozen=True)
class GetClip:
    clip_id: str


@dataclass(frozen=True)
class RefreshToken:
    pass


@dataclass(frozen=True)
class Persist:
    """Write db_state(), create_attempts, clip_id and failure_reason to the detection row."""


@dataclass(frozen=True)
class MarkNoClipping:
    broadcaster_id: int


@dataclass(frozen=True)
class StoreClip:
    clip: dict


@dataclass
class ClipLifecycle:
    """The state of one detection's clip. Serialisable with :meth:`to_state` (Flink state)."""

    request: ClipRequest
    schedule: Schedule
    phase: str = WAITING
    due_ms: int | None = None
    attempts: int = 0  # create calls made (a 401 refresh-and-retry counts as a call)
    first_attempt_ms: int | None = None
    retries_used: int = 0
    refreshed: bool = False  # a token refresh was already spent on the current call
    clip_id: str | None = None
    created_ms: int | None = None
    fetches_used: int = 0
    failure_reason: str | None = None
    last_error: str | None = None  # the last transient error (kept in failure_reason while pending)

    # --- construction -------------------------------------------------------------------
    @classmethod
    def start(cls, request: ClipRequest, schedule: Schedule) -> tuple["ClipLifecycle", list]:
        """A fresh detection (already recorded in Postgres): wait clip_delay, then create."""
        lc = cls(request, schedule)
        lc.due_ms = request.detected_at_ms + schedule.clip_delay_ms
        return lc, [ScheduleTimer(lc.due_ms)]

    @classmethod
    def resume(
        cls,
        request: ClipRequest,
        schedule: Schedule,
        *,
        db_state: str,
        attempts: int,
        clip_id: str | None,
        failure_reason: str | None,
        updated_at_ms: int,
        now_ms: int,
    ) -> tuple["ClipLifecycle", list]:
        """Rebuild a lifecycle from its Postgres row (after a restart without Flink state).

        Postgres is the source of truth: ``pending`` with no attempt yet waits for its create
        time (or creates at once if that passed); ``pending`` whose last attempt ended in a
        transient error continues the retry schedule; ``pending`` with an attempt whose answer
        was never recorded may have created a clip, so it fails as ``interrupted`` rather than
        risk a duplicate; ``created`` continues the look-ups, with ``updated_at`` as the time of
        creation. ``stored``/``failed`` rows need nothing.
        """
        lc = cls(request, schedule, attempts=attempts, clip_id=clip_id)
        if db_state == "pending":
            if attempts == 0:
                lc.due_ms = max(now_ms, request.detected_at_ms + schedule.clip_delay_ms)
                return lc, [ScheduleTimer(lc.due_ms)]
            if failure_reason is None:
                return lc, lc._fail(INTERRUPTED)
            lc.first_attempt_ms = request.detected_at_ms + schedule.clip_delay_ms
            lc.retries_used = attempts - 1
            lc.last_error = failure_reason
            return lc, lc._after_transient(now_ms)
        if db_state == "created" and clip_id:
            lc.phase = FETCHING
            lc.created_ms = updated_at_ms
            # Look now if a look-up time already passed; otherwise at the next offset.
            lc.fetches_used = sum(1 for off in schedule.fetch_offsets_ms if updated_at_ms + off <= now_ms)
            lc.fetches_used = max(0, lc.fetches_used - 1)
            lc.due_ms = max(now_ms, updated_at_ms + schedule.fetch_offsets_ms[lc.fetches_used])
            return lc, [ScheduleTimer(lc.due_ms)]
        lc.phase = STORED if db_state == "stored" else FAILED
        lc.failure_reason = failure_reason
        return lc, []

    # --- events ---------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.phase in (STORED, FAILED)

    def db_state(self) -> str:
        return {WAITING: "pending", FETCHING: "created", STORED: "stored", FAILED: "failed"}[self.phase]

    def on_timer(self, now_ms: int) -> list:
        """A timer fired; acts only if this lifecycle's due time has come."""
        if self.done or self.due_ms is None or now_ms < self.due_ms:
            return []
        self.due_ms = None
        if self.phase == WAITING:
            return self._attempt(now_ms)
        self.refreshed = False
        return [GetClip(self.clip_id)]

    def on_create_result(self, outcome: Outcome, now_ms: int) -> list:
        kind = outcome.kind
        if kind == "ok":
            self.phase = FETCHING
            self.clip_id = str(outcome.clip["id"])
            self.created_ms = now_ms
            self.last_error = None
            self.due_ms = now_ms + self.schedule.fetch_offsets_ms[0]
            return [Persist(), ScheduleTimer(self.due_ms)]
        if kind == "unauthorized" and not self.refreshed:
            self.refreshed = True
            self.attempts += 1
            return [RefreshToken(), Persist(), CreateClip(self.request.broadcaster_id)]
        if kind == "unauthorized":
            return self._fail(UNAUTHORIZED)
        if kind == "forbidden":
            return [MarkNoClipping(self.request.broadcaster_id), *self._fail(CLIPPING_DISABLED)]
        if kind == "offline":
            return self._fail(OFFLINE)
        if kind == "transient":
            self.last_error = (f"http_{outcome.status}" if outcome.status else outcome.detail or "transient")[:64]
            return self._after_transient(now_ms)
        return self._fail(REJECTED)

    def on_get_result(self, outcome: Outcome, now_ms: int) -> list:
        if outcome.kind == "ok":
            self.phase = STORED
            self.due_ms = None
            return [StoreClip(outcome.clip), Persist()]
        if outcome.kind == "unauthorized" and not self.refreshed:
            self.refreshed = True
            return [RefreshToken(), GetClip(self.clip_id)]
        # Not processed yet, or a failed look-up: look again at the next offset.
        self.fetches_used += 1
        if self.fetches_used >= len(self.schedule.fetch_offsets_ms):
            return self._fail(PROCESSING_TIMEOUT)
        self.due_ms = max(now_ms, self.created_ms + self.schedule.fetch_offsets_ms[self.fetches_used])
        return [ScheduleTimer(self.due_ms)]

    def abandon(self, reason: str) -> list:
        """Fail without calling Twitch (e.g. the channel is already known to refuse clips)."""
        return self._fail(reason)

    # --- helpers -----------------------------------------------------------------------------
    def _attempt(self, now_ms: int) -> list:
        if self.first_attempt_ms is None:
            self.first_attempt_ms = now_ms
        self.attempts += 1
        self.refreshed = False
        self.last_error = None
        return [Persist(), CreateClip(self.request.broadcaster_id)]

    def _after_transient(self, now_ms: int) -> list:
        offsets = self.schedule.retry_offsets_ms
        if self.retries_used >= len(offsets):
            return self._fail(RETRIES_EXHAUSTED)
        self.due_ms = max(now_ms, self.first_attempt_ms + offsets[self.retries_used])
        self.retries_used += 1
        return [Persist(), ScheduleTimer(self.due_ms)]

    def _fail(self, reason: str) -> list:
        self.phase = FAILED
        self.failure_reason = reason
        self.due_ms = None
        return [Persist()]

    def persisted_failure_reason(self) -> str | None:
        """failure_reason column: the final reason, or the last transient error while pending."""
        return self.failure_reason if self.phase == FAILED else self.last_error

    # --- serialisation (Flink keyed state) ------------------------------------------------------
    def to_state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, data: dict) -> "ClipLifecycle":
        data = dict(data)
        request = ClipRequest(**data.pop("request"))
        sched = data.pop("schedule")
        schedule = Schedule(
            sched["clip_delay_ms"], tuple(sched["retry_offsets_ms"]), tuple(sched["fetch_offsets_ms"])
        )
        return cls(request, schedule, **data)
