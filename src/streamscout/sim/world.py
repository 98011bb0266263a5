"""The simulated Twitch's state over time: streams, clips, faults and the ground truth.

One :class:`World` is shared by the Helix, OAuth and chat handlers (all on one asyncio
loop, so no locks). Scenario time is ``(wall - start) * speed``; everything a client sees
(``tmi-sent-ts``, ``created_at``, ground-truth times) is wall clock, because that is the
timeline the pipeline under test lives on.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from streamscout.sim.scenario import Channel, Fault, Scenario
from streamscout.sim.tokens import TokenStore

log = logging.getLogger(__name__)
CLIP_WORDS = ("Awkward", "Helpless", "Salamander", "Swift", "Brave", "Tiny", "Sleepy", "Golden",
              "Crispy", "Lazy", "Fierce", "Happy", "Clever", "Spicy", "Gentle", "Wild", "Noisy")
CLIP_ANIMALS = ("Otter", "Falcon", "Badger", "Llama", "Penguin", "Walrus", "Gecko", "Mantis")
CLIP_EMOTES = ("Kappa", "PogChamp", "SwiftRage", "DansGame", "BibleThump", "Kreygasm", "FrankerZ")


@dataclass
class Clip:
    id: str
    broadcaster_id: str
    broadcaster_name: str
    creator_id: str
    creator_name: str
    game_id: str
    title: str
    language: str
    created_ms: int
    ready_ms: int | None  # None: processing never completes (fault)
    duration: float = 30.0

    def as_helix(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": f"https://clips.twitch.tv/{self.id}",
            "embed_url": f"https://clips.twitch.tv/embed?clip={self.id}",
            "broadcaster_id": self.broadcaster_id,
            "broadcaster_name": self.broadcaster_name,
            "creator_id": self.creator_id,
            "creator_name": self.creator_name,
            "video_id": "",
            "game_id": self.game_id,
            "language": self.language,
            "title": self.title,
            "view_count": 1 + max(0, (now_ms - self.created_ms) // 20000),
            "created_at": iso(self.created_ms),
            "thumbnail_url": f"https://clips-media-assets2.twitch.tv/{self.id}-preview-480x272.jpg",
            "duration": self.duration,
            "vod_offset": None,
            "is_featured": False,
        }


@dataclass
class ActiveFault:
    fault: Fault
    start: float  # scenario seconds
    used: int = 0

    def active(self, t: float) -> bool:
        if t < self.start:
            return False
        if self.fault.duration is not None and t >= self.start + self.fault.duration:
            return False
        return not self.fault.count or self.used < self.fault.count


@dataclass
class GroundTruth:
    """What the simulator injected and saw, for scoring a pipeline run."""

    scenario: str
    seed: int
    speed: float
    started_ms: int
    bursts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    clip_requests: list[dict[str, Any]] = field(default_factory=list)
    clips: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    replays: list[dict[str, Any]] = field(default_factory=list)
    # per channel login: chat messages (PRIVMSG) the model generated, and those sent to listeners
    chat: dict[str, dict[str, int]] = field(default_factory=dict)

    def count_chat(self, login: str, generated: int = 0, delivered: int = 0) -> None:
        entry = self.chat.get(login)
        if entry is None:
            entry = self.chat[login] = {"generated": 0, "delivered": 0}
        entry["generated"] += generated
        entry["delivered"] += delivered

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # a deep copy: safe to hand to another thread


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class World:
    def __init__(self, scenario: Scenario, *, seed: int | None = None, speed: float = 1.0,
                 clip_delay: float = 15.0, token_lifetime: float = 14400.0,
                 rate_limit: int = 800, clock: Callable[[], float] = time.time,
                 ground_truth_path: str | Path | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.speed = speed
        self.clip_delay = clip_delay
        self.rate_limit = rate_limit
        self.clock = clock
        self.started = clock()
        self.ground_truth_path = Path(ground_truth_path) if ground_truth_path else None
        self.rng = random.Random(f"{self.seed}:world")
        self.tokens = TokenStore(scenario.client_id, scenario.client_secret, scenario.bot_id,
                                 scenario.bot_login, lifetime=token_lifetime, clock=clock)
        self.channels: dict[str, Channel] = {}
        for ch in scenario.channels:
            self.add_channel(ch)
        self.clips: dict[str, Clip] = {}
        self.faults = [ActiveFault(f, f.at) for f in scenario.faults]
        self.truth = GroundTruth(scenario.name, self.seed, speed, self.wall_ms(0.0))
        self.truth.faults = [dict(asdict(f), source="scenario") for f in scenario.faults]
        self._plan_events()

    # --- time ----------------------------------------------------------------------
    def now(self) -> float:
        """Scenario seconds since start."""
        return (self.clock() - self.started) * self.speed

    def ms(self) -> int:
        return int(self.clock() * 1000)

    def wall_ms(self, scenario_t: float) -> int:
        return round((self.started + scenario_t / self.speed) * 1000)

    # --- channels and streams ------------------------------------------------------
    def add_channel(self, channel: Channel) -> None:
        self.channels[channel.login] = channel

    def channel(self, login_or_id: str) -> Channel | None:
        ch = self.channels.get(login_or_id.lower())
        if ch is not None:
            return ch
        return next((c for c in self.channels.values() if c.id == login_or_id), None)

    def viewers(self, channel: Channel, t: float) -> int:
        """Scheduled viewers with a small deterministic wobble, so close ranks swap now and then."""
        window = int(t // 30)
        wobble = random.Random(f"{self.seed}:{channel.login}:{window}").uniform(-0.02, 0.02)
        return max(0, round(channel.viewers_at(t) * (1 + wobble)))

    def live_streams(self) -> list[dict[str, Any]]:
        """Every live stream as Helix returns it, most viewers first."""
        t = self.now()
        streams = []
        for ch in self.channels.values():
            if not ch.live_at(t):
                continue
            session = ch.session_start(t) or 0.0
            streams.append({
                "id": str(int(ch.id) * 1000 + int(session) % 1000) if ch.id.isdigit() else f"{ch.id}-{int(session)}",
                "user_id": ch.id, "user_login": ch.login, "user_name": ch.display_name,
                "game_id": ch.game_id, "game_name": ch.game_name, "type": "live",
                "title": ch.title, "viewer_count": self.viewers(ch, t),
                "started_at": iso(self.wall_ms(session)), "language": ch.language,
                "thumbnail_url": f"https://static-cdn.jtvnw.net/previews-ttv/live_user_{ch.login}-{{width}}x{{height}}.jpg",
                "tag_ids": [], "tags": ["English"] if ch.language == "en" else [], "is_mature": False,
            })
        streams.sort(key=lambda s: (-s["viewer_count"], s["user_id"]))
        return streams

    def user(self, channel: Channel) -> dict[str, Any]:
        return {
            "id": channel.id, "login": channel.login, "display_name": channel.display_name,
            "type": "", "broadcaster_type": channel.broadcaster_type, "description": f"{channel.display_name} streams here.",
            "profile_image_url": f"https://static-cdn.jtvnw.net/jtv_user_pictures/{channel.login}-profile_image-300x300.png",
            "offline_image_url": "", "view_count": 0, "created_at": "2016-05-01T12:00:00Z",
        }

    def bot_user(self) -> dict[str, Any]:
        s = self.scenario
        return {
            "id": s.bot_id, "login": s.bot_login, "display_name": s.bot_login, "type": "",
            "broadcaster_type": "", "description": "StreamScout's clipping account.",
            "profile_image_url": "", "offline_image_url": "", "view_count": 0,
            "created_at": "2024-01-01T00:00:00Z",
        }

    # --- clips ---------------------------------------------------------------------
    def create_clip(self, channel: Channel, creator_id: str, creator_login: str) -> Clip:
        clip_id = ("".join(self.rng.choice(CLIP_WORDS) for _ in range(2)) + self.rng.choice(CLIP_ANIMALS)
                   + self.rng.choice(CLIP_EMOTES) + "-"
                   + "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") for _ in range(16)))
        now = self.ms()
        never = self.take_fault("clip_never_ready", channel=channel.login) is not None
        clip = Clip(clip_id, channel.id, channel.display_name, creator_id, creator_login, channel.game_id,
                    channel.title, channel.language, now, None if never else now + int(self.clip_delay * 1000))
        self.clips[clip_id] = clip
        self.truth.clips.append({"id": clip_id, "broadcaster_id": channel.id, "broadcaster_login": channel.login,
                                 "created_ms": now, "ready_ms": clip.ready_ms})
        return clip

    def ready_clips(self) -> list[Clip]:
        now = self.ms()
        return [c for c in self.clips.values() if c.ready_ms is not None and c.ready_ms <= now]

    def record_clip_request(self, broadcaster_id: str | None, arrived_ms: int, status: int,
                            outcome: str, clip_id: str | None = None) -> None:
        entry = {"arrived_ms": arrived_ms, "broadcaster_id": broadcaster_id, "status": status,
                 "outcome": outcome, "clip_id": clip_id}
        self.truth.clip_requests.append(entry)
        log.info("create clip request", extra=entry)

    # --- faults --------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        """A fault injected at runtime: its `at` counts from now."""
        start = self.now() + fault.at
        self.faults.append(ActiveFault(fault, start))
        self.truth.faults.append(dict(asdict(fault), source="runtime", start_ms=self.wall_ms(start)))

    def take_fault(self, kind: str | tuple[str, ...], *, method: str = "", path: str = "",
                   channel: str = "") -> Fault | None:
        """The first active fault of this kind matching the request, counted as used."""
        kinds = (kind,) if isinstance(kind, str) else kind
        t = self.now()
        for active in self.faults:
            f = active.fault
            if f.type not in kinds or not active.active(t):
                continue
            if path and not path.startswith(f.path):
                continue
            if f.method and method and f.method != method:
                continue
            if f.channel and channel and f.channel != channel:
                continue
            if f.rate < 1.0 and self.rng.random() >= f.rate:
                continue
            active.used += 1
            log.info("fault injected", extra={"fault": f.type, "path": path, "method": method, "channel": channel})
            return f
        return None

    # --- scheduled events ----------------------------------------------------------
    def _plan_events(self) -> None:
        """Every chat surge the scenario causes, known up front: scheduled bursts, and the
        surges raids (x3 for 30 s) and gift-sub floods (x2 for 15 s) bring with them."""
        self.burst_schedule: dict[str, list[tuple[float, float, float]]] = {}
        for ev in self.scenario.events:
            ch = self.channels[ev.channel]
            entry = {"channel": ev.channel, "broadcaster_id": ch.id, "at": ev.at, "start_ms": self.wall_ms(ev.at)}
            if ev.type != "burst":
                self.truth.events.append(dict(entry, type=ev.type, count=ev.count, source=ev.source))
            default_multiplier, default_duration = {"burst": (1.0, 0.0), "raid": (3.0, 30.0), "gift_subs": (2.0, 15.0)}[ev.type]
            multiplier = ev.multiplier if ev.multiplier != 1.0 else default_multiplier
            duration = ev.duration or default_duration
            if multiplier == 1.0 or duration <= 0:
                continue
            self.burst_schedule.setdefault(ev.channel, []).append((ev.at, ev.at + duration, multiplier))
            self.truth.bursts.append(dict(entry, cause="scheduled" if ev.type == "burst" else ev.type,
                                          multiplier=multiplier, end_at=ev.at + duration,
                                          end_ms=self.wall_ms(ev.at + duration)))

    def burst_multiplier(self, login: str, t: float) -> float:
        factor = 1.0
        for start, end, multiplier in self.burst_schedule.get(login, ()):
            if start <= t < end:
                factor *= multiplier
        return factor

    def write_ground_truth(self) -> None:
        if self.ground_truth_path is None:
            return
        tmp = self.ground_truth_path.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(self.truth.as_dict(), indent=1))
        tmp.replace(self.ground_truth_path)
