"""Scenario files: what the simulated Twitch looks like and what happens in it, over time.

A scenario is YAML or JSON (or an equivalent dict). Times are seconds since the simulator
started, in *scenario* time; ``--speed 10`` plays ten scenario seconds per wall second.
Everything is validated up front, and an error names the offending field's path, e.g.
``channels[2].chat.rate: expected a number, got 'fast'``, so a typo never turns into a
silently different demo.

    >>> s = load_scenario({"channels": [{"login": "alpha", "viewers": 1000}]})
    >>> s.channels[0].login, s.channels[0].viewers_at(50)
    ('alpha', 1000.0)
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

SCENARIO_DIR = Path(__file__).with_name("scenarios")

# Twitch's global emotes with their real ids (the ids appear in the IRC `emotes` tag).
TWITCH_EMOTES: dict[str, str] = {
    "Kappa": "25", "PogChamp": "305954156", "LUL": "425618", "Kreygasm": "41",
    "BibleThump": "86", "ResidentSleeper": "245", "4Head": "354", "SeemsGood": "64138",
    "TriHard": "120232", "CoolStoryBob": "123171", "NotLikeThis": "58765", "DansGame": "33",
    "WutFace": "28087", "HeyGuys": "30259", "VoHiYo": "81274", "BabyRage": "22639",
    "FailFish": "360", "Jebaited": "114836", "MrDestructoid": "28", "SMOrc": "52",
    "PJSalt": "36", "KappaPride": "55338", "HSWP": "446979", "GivePLZ": "112291",
}
# Third-party (BTTV/FFZ/7TV) emotes: plain words for Twitch, so they carry no `emotes` range.
DEFAULT_EMOTES: tuple[str, ...] = (
    "Kappa", "PogChamp", "LUL", "Kreygasm", "BibleThump", "ResidentSleeper", "4Head",
    "SeemsGood", "NotLikeThis", "KEKW", "OMEGALUL", "monkaS", "PepeHands", "Pog", "EZ",
)


class ScenarioError(ValueError):
    """A scenario is malformed; the message starts with the offending field's path."""


@dataclass(frozen=True)
class ChatModel:
    """How a channel's chat behaves when nothing special happens.

    The message rate is ``rate`` times a log-normal modulation whose log follows an
    Ornstein-Uhlenbeck process (std ``burstiness``, correlation time ``tau`` s, mean 1), plus
    Hawkes-style self-excitation: a share ``excitation`` of messages are "replies" to recent
    ones, decaying over ``excitation_decay`` s. Real chat is clustered like this; plain
    Poisson noise would make every detector look better than it is.
    """

    rate: float = 1.0
    burstiness: float = 0.5
    tau: float = 30.0
    excitation: float = 0.3
    excitation_decay: float = 4.0
    commands: float = 0.04
    emotes: tuple[str, ...] = DEFAULT_EMOTES
    replies: float = 0.03
    timeouts: float = 0.002
    chatters: int = 0  # 0 = derived from the rate


@dataclass(frozen=True)
class Channel:
    login: str
    id: str
    display_name: str
    clipping: bool = True
    viewers: tuple[tuple[float, float], ...] = ((0.0, 1000.0),)
    live: tuple[tuple[float, float | None], ...] = ((0.0, None),)
    game_id: str = "509658"
    game_name: str = "Just Chatting"
    title: str = ""
    language: str = "en"
    broadcaster_type: str = "partner"
    chat: ChatModel = field(default_factory=ChatModel)

    def viewers_at(self, t: float) -> float:
        """Viewer count at scenario time t: piecewise linear, constant outside the points."""
        points = self.viewers
        if t <= points[0][0]:
            return points[0][1]
        for (t0, v0), (t1, v1) in zip(points, points[1:]):
            if t < t1:
                return v0 + (v1 - v0) * (t - t0) / (t1 - t0)
        return points[-1][1]

    def live_at(self, t: float) -> bool:
        return any(start <= t and (end is None or t < end) for start, end in self.live)

    def session_start(self, t: float) -> float | None:
        """Start of the live interval containing t (the stream's `started_at`)."""
        for start, end in self.live:
            if start <= t and (end is None or t < end):
                return start
        return None


@dataclass(frozen=True)
class Event:
    """A scheduled happening: ``burst`` (chat x multiplier for duration), ``raid``, ``gift_subs``."""

    type: str
    channel: str
    at: float
    duration: float = 0.0
    multiplier: float = 1.0
    count: int = 0
    source: str = ""


@dataclass(frozen=True)
class Fault:
    """A misbehaviour of the simulated Twitch.

    HTTP kinds (``status``, ``slow``, ``garbage``, ``hang``) apply to requests whose path
    starts with ``path`` (and whose method is ``method`` when given), while active: from
    ``at`` for ``duration`` s (forever when absent), with probability ``rate``, for at most
    ``count`` requests (unlimited when 0). ``clip_never_ready`` makes created clips never
    appear; ``chat_drop`` / ``chat_reconnect`` close chat sockets / send RECONNECT at ``at``;
    ``chat_stall`` keeps the sockets open at ``at`` but sends them nothing (not even PONG) for
    ``duration`` s — sockets opened after it started are served normally.
    """

    type: str
    at: float = 0.0
    duration: float | None = None
    rate: float = 1.0
    count: int = 0
    path: str = "/helix/"
    method: str = ""
    status: int = 503
    delay: float = 0.0
    channel: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    seed: int = 1
    channels: tuple[Channel, ...] = ()
    events: tuple[Event, ...] = ()
    faults: tuple[Fault, ...] = ()
    bot_login: str = "streamscout_bot"
    bot_id: str = "900000001"
    client_id: str = "simclientid0000000000000000000"
    client_secret: str = "simclientsecret000000000000000"


EVENT_TYPES = ("burst", "raid", "gift_subs", "offline")
HTTP_FAULTS = ("status", "slow", "garbage", "hang")
FAULT_TYPES = HTTP_FAULTS + ("clip_never_ready", "chat_drop", "chat_reconnect", "chat_stall")


# ---------------------------------------------------------------------------------------
# validation helpers: each takes the value and its path, returns the typed value or raises


def _fail(path: str, expected: str, value: Any) -> None:
    raise ScenarioError(f"{path}: expected {expected}, got {value!r}")


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail(path, "a mapping", value)
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        _fail(path, "a list", value)
    return value


def _number(value: Any, path: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(path, "a number", value)
    if minimum is not None and value < minimum:
        _fail(path, f"a number >= {minimum}", value)
    if maximum is not None and value > maximum:
        _fail(path, f"a number <= {maximum}", value)
    return float(value)


def _int(value: Any, path: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(path, f"an integer >= {minimum}", value)
    return value


def _string(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        _fail(path, "a non-empty string", value)
    return str(value)


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, "true or false", value)
    return value


def _check_keys(data: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            prefix = f"{path}." if path else ""
            raise ScenarioError(f"{prefix}{key}: unknown field (allowed: {', '.join(sorted(allowed))})")


def _chat_model(data: Any, path: str) -> ChatModel:
    data = _mapping(data, path)
    _check_keys(data, path, {f for f in ChatModel.__dataclass_fields__})
    values: dict[str, Any] = {}
    for name in ("rate", "burstiness", "excitation_decay", "tau"):
        if name in data:
            values[name] = _number(data[name], f"{path}.{name}", minimum=0)
    for name in ("commands", "replies", "timeouts"):
        if name in data:
            values[name] = _number(data[name], f"{path}.{name}", minimum=0, maximum=1)
    if "excitation" in data:
        values["excitation"] = _number(data["excitation"], f"{path}.excitation", minimum=0, maximum=0.95)
    if "chatters" in data:
        values["chatters"] = _int(data["chatters"], f"{path}.chatters")
    if "emotes" in data:
        emotes = _list(data["emotes"], f"{path}.emotes")
        if not emotes:
            _fail(f"{path}.emotes", "a non-empty list", emotes)
        values["emotes"] = tuple(_string(e, f"{path}.emotes[{i}]") for i, e in enumerate(emotes))
    return ChatModel(**values)


def _viewers(value: Any, path: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list):
        return ((0.0, _number(value, path, minimum=0)),)
    if not value:
        _fail(path, "a number or a non-empty list of [time, viewers]", value)
    points = []
    for i, point in enumerate(value):
        p = f"{path}[{i}]"
        if not isinstance(point, list) or len(point) != 2:
            _fail(p, "[time, viewers]", point)
        points.append((_number(point[0], f"{p}[0]", minimum=0), _number(point[1], f"{p}[1]", minimum=0)))
    if any(b[0] <= a[0] for a, b in zip(points, points[1:])):
        _fail(path, "points with increasing times", value)
    return tuple(points)


def _live(value: Any, path: str) -> tuple[tuple[float, float | None], ...]:
    if isinstance(value, bool):
        return ((0.0, None),) if value else ()
    intervals = []
    for i, item in enumerate(_list(value, path)):
        p = f"{path}[{i}]"
        if not isinstance(item, list) or len(item) != 2:
            _fail(p, "[start, end or null]", item)
        start = _number(item[0], f"{p}[0]", minimum=0)
        end = None if item[1] is None else _number(item[1], f"{p}[1]", minimum=start)
        intervals.append((start, end))
    return tuple(intervals)


def _channel(data: Any, path: str, index: int) -> Channel:
    data = _mapping(data, path)
    allowed = {"login", "id", "display_name", "clipping", "viewers", "live", "game_id", "game_name",
               "title", "language", "broadcaster_type", "chat"}
    _check_keys(data, path, allowed)
    if "login" not in data:
        raise ScenarioError(f"{path}.login: required")
    login = _string(data["login"], f"{path}.login").lower()
    values: dict[str, Any] = {
        "login": login,
        "id": _string(data.get("id", str(100000 + index)), f"{path}.id"),
        "display_name": _string(data.get("display_name", login.capitalize()), f"{path}.display_name"),
        "title": str(data.get("title", f"{login} live! !socials")),
    }
    if "clipping" in data:
        values["clipping"] = _bool(data["clipping"], f"{path}.clipping")
    if "viewers" in data:
        values["viewers"] = _viewers(data["viewers"], f"{path}.viewers")
    if "live" in data:
        values["live"] = _live(data["live"], f"{path}.live")
    for name in ("game_id", "game_name", "language"):
        if name in data:
            values[name] = _string(data[name], f"{path}.{name}")
    if "broadcaster_type" in data:
        kind = data["broadcaster_type"]
        if kind not in ("partner", "affiliate", ""):
            _fail(f"{path}.broadcaster_type", "'partner', 'affiliate' or ''", kind)
        values["broadcaster_type"] = kind
    if "chat" in data:
        values["chat"] = _chat_model(data["chat"], f"{path}.chat")
    return Channel(**values)


def _generated(data: Any, path: str, seed: int, first_index: int) -> list[Channel]:
    """Many filler channels (the `many` scenario): log-uniform viewers, small chats."""
    data = _mapping(data, path)
    _check_keys(data, path, {"count", "prefix", "viewers", "chat_rate", "clipping_share"})
    count = _int(data.get("count", 0), f"{path}.count")
    prefix = _string(data.get("prefix", "streamer"), f"{path}.prefix").lower()
    lo, hi = (_number(v, f"{path}.viewers[{i}]", minimum=1) for i, v in enumerate(_pair(data.get("viewers", [10, 20000]), f"{path}.viewers")))
    rlo, rhi = (_number(v, f"{path}.chat_rate[{i}]", minimum=0) for i, v in enumerate(_pair(data.get("chat_rate", [0.05, 2.0]), f"{path}.chat_rate")))
    clipping_share = _number(data.get("clipping_share", 0.9), f"{path}.clipping_share", minimum=0, maximum=1)
    rng = random.Random(f"{seed}:generated")
    channels = []
    for i in range(count):
        login = f"{prefix}{i:04d}"
        viewers = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        rate = rlo + (rhi - rlo) * rng.random() ** 2
        channels.append(Channel(
            login=login, id=str(200000 + first_index + i), display_name=login.capitalize(),
            clipping=rng.random() < clipping_share, viewers=((0.0, round(viewers)),),
            title=f"{login} stream", chat=ChatModel(rate=round(rate, 3)),
        ))
    return channels


def _pair(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != 2:
        _fail(path, "[low, high]", value)
    return value


def _event(data: Any, path: str, logins: set[str]) -> Event:
    data = _mapping(data, path)
    _check_keys(data, path, {"type", "channel", "at", "duration", "multiplier", "count", "source"})
    kind = data.get("type")
    if kind not in EVENT_TYPES:
        _fail(f"{path}.type", " or ".join(EVENT_TYPES), kind)
    channel = _string(data.get("channel"), f"{path}.channel").lower()
    if channel not in logins:
        _fail(f"{path}.channel", "the login of a channel of this scenario", channel)
    values: dict[str, Any] = {"type": kind, "channel": channel, "at": _number(data.get("at"), f"{path}.at", minimum=0)}
    if "duration" in data:
        values["duration"] = _number(data["duration"], f"{path}.duration", minimum=0)
    elif kind == "burst":
        raise ScenarioError(f"{path}.duration: required for a burst")
    if "multiplier" in data:
        values["multiplier"] = _number(data["multiplier"], f"{path}.multiplier", minimum=0)
    elif kind == "burst":
        raise ScenarioError(f"{path}.multiplier: required for a burst")
    if "count" in data:
        values["count"] = _int(data["count"], f"{path}.count", minimum=1)
    if "source" in data:
        values["source"] = _string(data["source"], f"{path}.source").lower()
    return Event(**values)


def _fault(data: Any, path: str) -> Fault:
    data = _mapping(data, path)
    _check_keys(data, path, set(Fault.__dataclass_fields__))
    kind = data.get("type")
    if kind not in FAULT_TYPES:
        _fail(f"{path}.type", " or ".join(FAULT_TYPES), kind)
    values: dict[str, Any] = {"type": kind}
    if "at" in data:
        values["at"] = _number(data["at"], f"{path}.at", minimum=0)
    if "duration" in data and data["duration"] is not None:
        values["duration"] = _number(data["duration"], f"{path}.duration", minimum=0)
    if "rate" in data:
        values["rate"] = _number(data["rate"], f"{path}.rate", minimum=0, maximum=1)
    if "count" in data:
        values["count"] = _int(data["count"], f"{path}.count")
    if "path" in data:
        values["path"] = _string(data["path"], f"{path}.path")
    if "method" in data:
        values["method"] = _string(data["method"], f"{path}.method").upper()
    if "status" in data:
        values["status"] = _int(data["status"], f"{path}.status", minimum=100)
    if "delay" in data:
        values["delay"] = _number(data["delay"], f"{path}.delay", minimum=0)
    if "channel" in data:
        values["channel"] = _string(data["channel"], f"{path}.channel").lower()
    return Fault(**values)


def parse_fault(data: Any) -> Fault:
    """A fault from a dict (the `POST /sim/faults` body); errors name the field."""
    return _fault(data, "fault")


def _fold_offline(channel: Channel, events: list[Event]) -> Channel:
    """`offline` events cut the channel's live intervals (sugar for editing `live`)."""
    intervals = list(channel.live)
    for ev in events:
        if ev.type != "offline" or ev.channel != channel.login:
            continue
        cut_start, cut_end = ev.at, (ev.at + ev.duration if ev.duration else None)
        result = []
        for start, end in intervals:
            if start < cut_start:
                result.append((start, cut_start if end is None else min(end, cut_start)))
            if cut_end is not None and (end is None or end > cut_end):
                result.append((max(start, cut_end), end))
        intervals = [(s, e) for s, e in result if e is None or e > s]
    return replace(channel, live=tuple(intervals))


def load_scenario(source: str | Path | Mapping[str, Any]) -> Scenario:
    """A scenario from a shipped name (``demo``), a YAML/JSON path, or a dict."""
    if isinstance(source, Mapping):
        return parse_scenario(source, default_name="custom")
    path = Path(source)
    if not path.suffix and not path.exists():
        path = SCENARIO_DIR / f"{source}.yaml"
        if not path.exists():
            shipped = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
            raise ScenarioError(f"scenario {source!r}: no such file or shipped scenario ({shipped})")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"scenario {str(source)!r}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScenarioError(f"scenario {str(path)!r}: not valid YAML/JSON: {exc}") from None
    return parse_scenario(data, default_name=path.stem)


def parse_scenario(data: Any, default_name: str = "custom") -> Scenario:
    data = _mapping(data, "scenario")
    _check_keys(data, "", {"name", "description", "seed", "channels", "generate", "events", "faults", "bot", "client"})
    seed = _int(data.get("seed", 1), "seed")
    values: dict[str, Any] = {
        "name": _string(data.get("name", default_name), "name"),
        "description": str(data.get("description", "")),
        "seed": seed,
    }
    channels = [_channel(c, f"channels[{i}]", i) for i, c in enumerate(_list(data.get("channels", []), "channels"))]
    if "generate" in data:
        channels += _generated(data["generate"], "generate", seed, len(channels))
    if not channels:
        raise ScenarioError("channels: a scenario needs at least one channel")
    seen: dict[str, str] = {}
    for i, ch in enumerate(channels):
        for key in (ch.login, ch.id):
            if key in seen:
                raise ScenarioError(f"channels[{i}]: login/id {key!r} already used by {seen[key]}")
            seen[key] = f"channels[{i}]"
    logins = {ch.login for ch in channels}
    events = [_event(e, f"events[{i}]", logins) for i, e in enumerate(_list(data.get("events", []), "events"))]
    channels = [_fold_offline(ch, events) for ch in channels]
    values["channels"] = tuple(channels)
    values["events"] = tuple(e for e in events if e.type != "offline")
    values["faults"] = tuple(_fault(f, f"faults[{i}]") for i, f in enumerate(_list(data.get("faults", []), "faults")))
    if "bot" in data:
        bot = _mapping(data["bot"], "bot")
        _check_keys(bot, "bot", {"login", "id"})
        values["bot_login"] = _string(bot.get("login", Scenario.bot_login), "bot.login").lower()
        values["bot_id"] = _string(bot.get("id", Scenario.bot_id), "bot.id")
    if "client" in data:
        client = _mapping(data["client"], "client")
        _check_keys(client, "client", {"id", "secret"})
        values["client_id"] = _string(client.get("id", Scenario.client_id), "client.id")
        values["client_secret"] = _string(client.get("secret", Scenario.client_secret), "client.secret")
    return Scenario(**values)
