"""The stream monitor: rank live streams, keep the right chats joined, publish every line.

Three loops share one asyncio event loop; every dependency is passed in:

* **ranking** every ``monitor_poll_seconds``: Get Streams (live, by viewers; paging only until
  ``leave_rank`` clippable streams are known), upsert ``streamers``, refresh a Redis liveness key
  per live channel (TTL ``monitor_liveness_ttl_seconds``), then :func:`ranking.decide` says what
  to join and leave.
* **liveness** every few seconds: the joined channels' keys are checked with ``EXISTS``; an
  expired key means the channel went offline: leave it and publish an ``offline`` record. A
  polling check was chosen over keyspace notifications because notifications need a server
  setting (``notify-keyspace-events``) on a shared Redis and are lost while the subscriber is
  disconnected; checking a handful of keys every few seconds is cheap and cannot miss one.
* **chat positions** every few seconds: each channel's last message time goes to Redis, so a
  restarted monitor can report how much chat it missed (:mod:`streamscout.monitor.gaps`).
* **chat watchdog** every second: a chat connection that is closed for a few seconds, or has
  delivered no line (messages, or the PONG to our own PING) for ``monitor_stall_seconds``, is
  torn down and rebuilt, and every joined channel is joined again.

Chat records go from the chat thread to the :class:`Publisher` (non-blocking); lifecycle records
take the same path. A failing dependency never stops the monitor: a failed round is counted
(``poll_errors``) and retried at the next interval; Postgres or Redis being down degrades the
round (last known refusals; nobody is declared offline) instead of failing it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Optional

from streamscout.common.config import Settings
from streamscout.common.schemas import encode, lifecycle_event
from streamscout.monitor import ranking
from streamscout.monitor.chat import MonitorChat
from streamscout.monitor.gaps import ChatGaps
from streamscout.monitor.metrics import MonitorMetrics
from streamscout.monitor.publisher import Publisher
from streamscout.monitor.ranking import LiveStream, Refusal

log = logging.getLogger(__name__)

LIVENESS_KEY = "streamscout:live:{}"
LAST_CHAT_KEY = "streamscout:last-chat:{}"  # ms of the channel's last published message
LAST_CHAT_TTL_MS = 3_600_000  # a monitor down for longer than this reports no gap
POSITIONS_SECONDS = 5.0
JOIN_TIMEOUT = 30.0  # pyTwitchAPI waits 10 s per join batch ...
JOIN_SECONDS_PER_CHANNEL = 0.5  # ... plus the rate-limit wait: 20 JOINs per 10 s
LEAVE_TIMEOUT = 3.0
CHAT_START_TIMEOUT = 10.0
SHUTDOWN_BUDGET = 8.0

ChatFactory = Callable[[Callable[[dict], None], dict[str, int]], MonitorChat]


@dataclass
class Joined:
    """A channel whose chat is joined."""

    stream: LiveStream
    rank: Optional[int]


def _join_timeout(logins: list[str]) -> float:
    return JOIN_TIMEOUT + JOIN_SECONDS_PER_CHANNEL * len(logins)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Monitor:
    """The monitor service. ``run(stop)`` until ``stop`` is set; then leave, flush, close."""

    def __init__(
        self,
        settings: Settings,
        *,
        twitch: Any,
        chat_factory: ChatFactory,
        publisher: Publisher,
        redis: Any,
        pool: Any,
        metrics: MonitorMetrics,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.twitch = twitch
        self.chat_factory = chat_factory
        self.publisher = publisher
        self.redis = redis
        self.pool = pool
        self.metrics = metrics
        self.clock = clock
        self.joined: dict[int, Joined] = {}
        self.channel_ids: dict[str, int] = {}  # login -> id, for lines without room-id
        self.refusals: dict[int, Refusal] = {}
        self.chat: Optional[MonitorChat] = None
        self._chat_down_since: Optional[float] = None
        self._membership = asyncio.Lock()  # one join/leave/rebuild at a time
        self.gaps = ChatGaps()
        self.last_poll_ok: Optional[datetime] = None

    # --- records -----------------------------------------------------------------------
    def _publish_chat(self, record: dict) -> None:
        broadcaster_id = record["broadcaster_id"]
        self.publisher.publish(self.settings.topic_chat, str(broadcaster_id).encode(), encode(record))
        gap = self.gaps.seen(broadcaster_id, record["timestamp"])
        if gap is not None:
            cause, seconds = gap
            self.metrics.chat_gap_seconds.labels(cause).observe(seconds)
            log.warning("chat gap", extra={"broadcaster_id": broadcaster_id, "cause": cause, "seconds": seconds})

    def _publish_lifecycle(self, event_type: str, joined: Joined, reason: Optional[str] = None) -> None:
        record = lifecycle_event(
            event_type=event_type,
            broadcaster_id=joined.stream.broadcaster_id,
            broadcaster_login=joined.stream.login,
            rank=joined.rank,
            timestamp=int(self.clock().timestamp()),
            reason=reason,
        )
        self.publisher.publish(
            self.settings.topic_lifecycle, str(joined.stream.broadcaster_id).encode(), encode(record)
        )

    # --- ranking round -----------------------------------------------------------------
    async def fetch_live(self) -> list[LiveStream]:
        """Get Streams pages until ``leave_rank`` clippable streams are known."""
        now = self.clock()
        recheck = timedelta(days=self.settings.monitor_clipping_recheck_days)
        live: list[LiveStream] = []
        async for s in self.twitch.get_streams(first=100, stream_type="live"):
            live.append(LiveStream(int(s.user_id), s.user_login, int(s.viewer_count)))
            if len(live) % 100 == 0 and ranking.enough_ranked(
                live, self.refusals, now, self.settings.monitor_leave_rank, recheck
            ):
                break
        return live

    async def load_refusals(self) -> None:
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT broadcaster_id, clipping_refused_at FROM streamers WHERE allows_clipping = false"
                )
            ).fetchall()
        self.refusals = {
            bid: Refusal(at.replace(tzinfo=timezone.utc) if at is not None else None) for bid, at in rows
        }

    async def upsert_streamers(self, live: list[LiveStream]) -> None:
        if not live:
            return
        now = self._naive_now()
        async with self.pool.connection() as conn:
            async with conn.cursor() as cur:
                await cur.executemany(
                    """INSERT INTO streamers (broadcaster_id, streamer_login, first_seen_at, last_seen_at)
                       VALUES (%s, %s, %s, %s)
                       ON CONFLICT (broadcaster_id) DO UPDATE
                       SET streamer_login = EXCLUDED.streamer_login, last_seen_at = EXCLUDED.last_seen_at""",
                    [(s.broadcaster_id, s.login, now, now) for s in live],
                )

    def _naive_now(self) -> datetime:
        return self.clock().astimezone(timezone.utc).replace(tzinfo=None)

    async def refresh_liveness(self, live: list[LiveStream]) -> None:
        ttl_ms = int(self.settings.monitor_liveness_ttl_seconds * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for s in live:
                pipe.set(LIVENESS_KEY.format(s.broadcaster_id), s.login, px=ttl_ms)
            await pipe.execute()

    async def alive_of(self, ids: list[int]) -> set[int]:
        if not ids:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for bid in ids:
                pipe.exists(LIVENESS_KEY.format(bid))
            found = await pipe.execute()
        return {bid for bid, n in zip(ids, found) if n}

    # --- chat positions (see streamscout.monitor.gaps) ---------------------------------------
    async def save_chat_positions(self) -> None:
        changed = self.gaps.changed()
        if not changed:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for bid, ms in changed.items():
                pipe.set(LAST_CHAT_KEY.format(bid), ms, px=LAST_CHAT_TTL_MS)
            await pipe.execute()

    async def last_chat_before(self, ids: list[int]) -> dict[int, int]:
        """Persisted last message times of channels not read by this process yet (a previous
        process read them: joining is resuming). Without Redis, no gap is reported."""
        unknown = [bid for bid in ids if bid not in self.gaps.last_ms]
        if not unknown:
            return {}
        try:
            values = await self.redis.mget([LAST_CHAT_KEY.format(bid) for bid in unknown])
        except Exception as exc:
            log.info("chat positions not readable", extra={"error": repr(exc)})
            return {}
        return {bid: int(v) for bid, v in zip(unknown, values) if v is not None and v.isdigit()}

    async def forget_last_chat(self, ids: list[int]) -> None:
        if not ids:
            return
        try:
            await self.redis.delete(*[LAST_CHAT_KEY.format(bid) for bid in ids])
        except Exception as exc:  # the key expires on its own; at worst a later join reports a gap
            log.info("chat positions not deleted", extra={"error": repr(exc)})

    async def poll_once(self) -> ranking.Decision:
        """One ranking round; raises when Twitch cannot be read (the caller counts it)."""
        started = time.monotonic()
        degraded = []
        try:
            await self.load_refusals()
        except Exception as exc:
            degraded.append(f"postgres: {exc}")
        live = await self.fetch_live()
        for s in live:
            self.channel_ids[s.login.lower()] = s.broadcaster_id
        try:
            await self.upsert_streamers(live)
        except Exception as exc:
            degraded.append(f"postgres: {exc}")
        joined_ids = sorted(self.joined)
        try:
            await self.refresh_liveness(live)
            alive = await self.alive_of(joined_ids)
        except Exception as exc:
            degraded.append(f"redis: {exc}")
            alive = set(joined_ids)  # without Redis nobody is declared offline
        decision = ranking.decide(
            live,
            joined=set(joined_ids),
            alive=alive,
            refusals=self.refusals,
            now=self.clock(),
            join_rank=self.settings.monitor_join_rank,
            leave_rank=self.settings.monitor_leave_rank,
            recheck_after=timedelta(days=self.settings.monitor_clipping_recheck_days),
        )
        for bid, rank in decision.ranks.items():
            if bid in self.joined:
                self.joined[bid].rank = rank
        leaving = {self.joined[b].stream.login: r for b, r in decision.to_leave.items() if b in self.joined}
        await self.apply(decision)
        self.metrics.poll_seconds.observe(time.monotonic() - started)
        if degraded:
            self.metrics.poll_errors.inc()
            log.warning("ranking round degraded", extra={"problems": degraded})
        else:
            self.last_poll_ok = self.clock()
        log.info(
            "ranking round",
            extra={
                "live_seen": len(live),
                "joined": len(self.joined),
                "to_join": [s.login for s in decision.to_join],
                "to_leave": leaving,
            },
        )
        return decision

    async def apply(self, decision: ranking.Decision) -> None:
        async with self._membership:
            if decision.to_leave:
                await self._leave([(bid, reason) for bid, reason in decision.to_leave.items() if bid in self.joined])
            if decision.to_join:
                await self._join(decision.to_join, decision.ranks)

    async def _join(self, streams: list[LiveStream], ranks: dict[int, int]) -> None:
        chat = self.chat
        if chat is None:
            return  # the watchdog builds the chat; the next round joins
        logins = [s.login.lower() for s in streams]
        before = await self.last_chat_before([s.broadcaster_id for s in streams])
        try:
            failed = set(await chat.join(logins, _join_timeout(logins)))
        except Exception as exc:
            log.warning("join failed", extra={"channels": logins, "error": repr(exc)})
            failed = set(logins)
        for s in streams:
            if s.login.lower() in failed:
                self.metrics.join_failures.inc()
                continue
            entry = Joined(s, ranks.get(s.broadcaster_id))
            self.joined[s.broadcaster_id] = entry
            self.gaps.resume(s.broadcaster_id, before.get(s.broadcaster_id), "restart")
            self.metrics.joins.inc()
            self._publish_lifecycle("online", entry)
            log.info("joined chat", extra={"broadcaster_id": s.broadcaster_id, "login": s.login, "rank": entry.rank})
        self.metrics.streams_monitored.set(len(self.joined))

    async def _leave(self, leaving: list[tuple[int, str]], timeout: float = LEAVE_TIMEOUT) -> None:
        if not leaving:
            return
        entries = [(self.joined[bid], reason) for bid, reason in leaving]
        if self.chat is not None:
            confirmed = await self.chat.leave([e.stream.login.lower() for e, _ in entries], timeout)
            if not confirmed:
                log.warning("leave not confirmed in time", extra={"channels": [e.stream.login for e, _ in entries]})
        deliberate = [e.stream.broadcaster_id for e, reason in entries if reason != ranking.LEAVE_SHUTDOWN]
        for bid in deliberate:
            self.gaps.forget(bid)
        await self.forget_last_chat(deliberate)
        for entry, reason in entries:
            self.joined.pop(entry.stream.broadcaster_id, None)
            self.metrics.leaves.inc()
            self._publish_lifecycle("offline", entry, reason)
            log.info("left chat", extra={"broadcaster_id": entry.stream.broadcaster_id, "reason": reason})
        self.metrics.streams_monitored.set(len(self.joined))

    # --- liveness ----------------------------------------------------------------------
    async def check_liveness(self) -> list[int]:
        """Leave joined channels whose liveness key expired; returns their ids."""
        ids = sorted(self.joined)
        alive = await self.alive_of(ids)
        gone = [bid for bid in ids if bid not in alive]
        if gone:
            async with self._membership:
                await self._leave([(bid, ranking.LEAVE_OFFLINE) for bid in gone if bid in self.joined])
        return gone

    # --- chat watchdog -------------------------------------------------------------------
    def chat_state(self) -> tuple[bool, str]:
        chat = self.chat
        if chat is None:
            return False, "not started"
        if not chat.is_connected():
            return False, "disconnected"
        silent = time.monotonic() - chat.last_line_at
        if silent > self.settings.monitor_stall_seconds:
            return False, f"no line for {silent:.0f}s"
        return True, f"{len(self.joined)} channels"

    async def watch_chat_once(self) -> bool:
        """Build or rebuild the chat when needed; True when a (re)build happened."""
        chat = self.chat
        now = time.monotonic()
        reason = None
        if chat is None:
            reason = "start"
        elif not chat.is_connected():
            self._chat_down_since = self._chat_down_since or now
            if now - self._chat_down_since > min(10.0, self.settings.monitor_stall_seconds):
                reason = "disconnected"
        else:
            self._chat_down_since = None
            if now - chat.last_line_at > self.settings.monitor_stall_seconds:
                reason = "stalled"
            elif now - chat.last_line_at > self.settings.monitor_stall_seconds / 3:
                try:
                    await chat.ping()
                except Exception:
                    pass  # the stall rule decides
        self.metrics.chat_connected.set(1 if self.chat_state()[0] else 0)
        if reason is None:
            return False
        await self.rebuild_chat(reason)
        return True

    async def rebuild_chat(self, reason: str) -> None:
        async with self._membership:
            old, self.chat = self.chat, None
            self.metrics.chat_connected.set(0)
            if old is not None:
                self.metrics.chat_rebuilds.inc()
                log.warning("rebuilding chat connection", extra={"reason": reason})
                await old.shutdown(timeout=3.0)
            chat = self.chat_factory(self._publish_chat, self.channel_ids)
            try:
                await chat.start_connected(CHAT_START_TIMEOUT)
            except Exception as exc:
                log.warning("chat connection failed", extra={"error": repr(exc)})
                await chat.shutdown(timeout=2.0)
                return
            self.chat = chat
            self._chat_down_since = None
            logins = [j.stream.login.lower() for j in self.joined.values()]
            if logins:
                failed = set()
                try:
                    failed = set(await chat.join(logins, _join_timeout(logins)))
                except Exception as exc:
                    log.warning("rejoin failed", extra={"error": repr(exc)})
                    failed = set(logins)
                for bid, j in list(self.joined.items()):
                    if j.stream.login.lower() not in failed:
                        self.gaps.resume(bid, self.gaps.last_ms.get(bid), "rebuild")
                    else:
                        # not joined after all: forget it, so the next round joins it again
                        self.joined.pop(bid)
                        self.metrics.join_failures.inc()
                        self._publish_lifecycle("offline", j, "rejoin_failed")
                self.metrics.streams_monitored.set(len(self.joined))
            self.metrics.chat_connected.set(1)
            log.info("chat connected", extra={"channels": len(self.joined), "reason": reason})

    # --- health ------------------------------------------------------------------------
    async def health(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        """(ok, component -> {ok, detail}) for chat, Kafka, Redis and Postgres."""

        async def probe(check: Callable[[], Awaitable[Any]]) -> tuple[bool, str]:
            try:
                await asyncio.wait_for(check(), 2.0)
                return True, "reachable"
            except Exception as exc:
                return False, repr(exc)[:200]

        async def pg() -> None:
            async with self.pool.connection(timeout=2.0) as conn:
                await conn.execute("SELECT 1")

        states = {
            "chat": self.chat_state(),
            "kafka": self.publisher.healthy(),
            "redis": await probe(self.redis.ping),
            "postgres": await probe(pg),
        }
        return all(ok for ok, _ in states.values()), {k: {"ok": ok, "detail": d} for k, (ok, d) in states.items()}

    # --- main --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run the loops until ``stop`` is set, then shut down within ``SHUTDOWN_BUDGET``."""
        self.publisher.start()
        tasks = [
            asyncio.create_task(self._every(1.0, self.watch_chat_once, "chat watchdog", stop)),
            asyncio.create_task(self._poll_loop(stop)),
            asyncio.create_task(
                self._every(min(5.0, self.settings.monitor_liveness_ttl_seconds / 10), self.check_liveness, "liveness", stop)
            ),
            asyncio.create_task(self._backlog_gauge(stop)),
            asyncio.create_task(self._every(POSITIONS_SECONDS, self.save_chat_positions, "chat positions", stop)),
        ]
        await stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.shutdown()

    async def _poll_loop(self, stop: asyncio.Event) -> None:
        # the first round waits for the chat, so the first joins do not wait a whole interval
        for _ in range(int(CHAT_START_TIMEOUT * 10)):
            if self.chat is not None or stop.is_set():
                break
            await asyncio.sleep(0.1)
        await self._every(self.settings.monitor_poll_seconds, self._poll_counted, "ranking", stop)

    async def _poll_counted(self) -> None:
        try:
            await self.poll_once()
        except Exception as exc:
            self.metrics.poll_errors.inc()
            log.warning("ranking round failed", extra={"error": repr(exc)})

    async def _every(self, seconds: float, step: Callable[[], Awaitable[Any]], name: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dependency is down: health says so; try again next time
                log.warning("%s step failed", name, extra={"error": repr(exc)[:300]})
            remaining = seconds - (time.monotonic() - started)
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, remaining))
            except asyncio.TimeoutError:
                pass

    async def _backlog_gauge(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.metrics.publish_backlog.set(self.publisher.pending)
            await asyncio.sleep(1.0)

    async def shutdown(self, budget: float = SHUTDOWN_BUDGET) -> None:
        """Leave every chat (offline records), stop the chat, flush Kafka, close the pools,
        all within ``budget`` seconds (systemd's stop timeout is 10 s); Kafka gets what the
        other steps leave of it."""
        deadline = time.monotonic() + budget
        log.info("shutting down", extra={"channels": len(self.joined)})
        try:
            await asyncio.wait_for(
                self._leave([(bid, ranking.LEAVE_SHUTDOWN) for bid in list(self.joined)], timeout=2.0), 2.5
            )
        except Exception as exc:
            log.warning("leaving chats at shutdown failed", extra={"error": repr(exc)})
        if self.chat is not None:
            await self.chat.shutdown(timeout=1.5)
            self.chat = None
        try:
            await asyncio.wait_for(self.save_chat_positions(), 0.5)
        except Exception as exc:
            log.warning("saving chat positions at shutdown failed", extra={"error": repr(exc)})
        kafka_time = max(0.5, deadline - time.monotonic() - 1.0)
        left = await asyncio.get_running_loop().run_in_executor(None, self.publisher.close, kafka_time)
        for closer in (self.redis.aclose, self.pool.close):
            try:
                await asyncio.wait_for(closer(), 0.5)
            except Exception as exc:
                log.warning("close failed", extra={"error": repr(exc)})
        log.info("stopped", extra={"unsent_records": left})
