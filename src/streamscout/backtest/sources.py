"""Input files -> :class:`~streamscout.backtest.series.Broadcast` objects.

Chat recordings are parsed by :mod:`streamscout.common.recordings` (the simulator replays the
same files); this module only counts them. Two inputs are not chat recordings:

* ``counts``: per-second message counts as CSV (``YYYY-MM-DD HH:MM:SS,count``, the dsteffan
  ``*_mps.csv`` files) -- busy-channel traffic without text, so commands cannot be dropped;
* ``scenario``: a simulator scenario, whose chat is generated offline with the simulator's own
  chat model (:class:`streamscout.sim.chatmodel.ChannelChat`) on a fixed clock; its scheduled
  bursts are the ground truth and its raid / gift-sub surges are recorded as floods.

Every failure names the file: :class:`InputError`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Callable

from streamscout.backtest.series import Broadcast, Burst, SeriesBuilder
from streamscout.common import recordings

FORMATS = ("auto", "irc", "vod-json", "log", "counts", "scenario")
_RECORDING_FORMATS = {"irc": recordings.RAW_IRC, "vod-json": recordings.VOD_JSON, "log": recordings.TIMESTAMPED}
# Scenario time starts here (any fixed instant works; it keeps scenario runs reproducible).
SCENARIO_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SCENARIO_TICK_S = 0.05  # the simulator's chat tick
SCENARIO_TAIL_S = 300.0  # scenario chat runs this long after its last event

Progress = Callable[[int], None]


class InputError(ValueError):
    """An input file cannot be backtested; the message starts with the file name."""


def resolve_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    name = path.name.lower()
    if name.endswith((".yaml", ".yml")):
        return "scenario"
    if name.endswith((".csv", ".csv.gz")):
        return "counts"
    if name.endswith((".json", ".json.gz")):
        return "vod-json"
    try:
        detected = recordings.detect_format(path)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {_reason(exc)}") from None
    return "log" if detected == recordings.TIMESTAMPED else "irc"


def load(path: Path, fmt: str, bucket_ms: int, progress: Progress | None = None) -> list[Broadcast]:
    """The broadcasts of one file (one per channel it holds)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    fmt = resolve_format(path, fmt)
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: empty file")
    try:
        if fmt == "scenario":
            broadcasts = _scenario(path, bucket_ms)
        elif fmt == "counts":
            broadcasts = _counts(path, bucket_ms)
        else:
            broadcasts = _recording(path, fmt, bucket_ms, progress)
    except InputError:
        raise
    except recordings.RecordingError as exc:
        message = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
        raise InputError(f"{message} (reading it as {fmt})") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {_reason(exc)}") from None
    if not broadcasts:
        raise InputError(f"{path}: no chat messages found (is it really a {fmt} file? try --format)")
    return broadcasts


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "truncated compressed file"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _recording(path: Path, fmt: str, bucket_ms: int, progress: Progress | None) -> list[Broadcast]:
    builder = SeriesBuilder(bucket_ms)
    done = 0
    for record in recordings.iter_records(path, _RECORDING_FORMATS[fmt]):
        if record.command == "PRIVMSG":
            builder.add_message(record.channel, record.timestamp_ms, record.text)
        elif record.command == "USERNOTICE":
            builder.add_event(record.channel, record.timestamp_ms, record.tags.get("msg-id", ""))
        if progress and record.raw:
            done += len(record.raw) + 1
            if done >= 1 << 20:
                progress(done)
                done = 0
    if progress:
        progress(done)
    if fmt == "vod-json":
        # data/<channel>/<vod>/verbose_chat.json.gz: name it by the broadcast folder
        return builder.broadcasts(str(path), name_prefix=f"{path.parent.name} ") if path.parent.name else builder.broadcasts(str(path))
    return builder.broadcasts(str(path), name_prefix=f"{path.name.split('.')[0]} ")


def _counts(path: Path, bucket_ms: int) -> list[Broadcast]:
    """``time,count`` rows (header / blank-time rows skipped); the channel is the file's stem."""
    builder = SeriesBuilder(bucket_ms)
    channel = path.name.split(".")[0]
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            stamp, sep, count = line.strip().partition(",")
            if not stamp or not sep:
                continue
            try:
                ts = int(dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
                n = int(count)
            except ValueError:
                raise InputError(f"{path}:{number}: expected 'YYYY-MM-DD HH:MM:SS,count', got {line.strip()[:60]!r}") from None
            if n < 0:
                raise InputError(f"{path}:{number}: negative count {n}")
            if n:
                builder.add_count(channel, ts, n)
    return builder.broadcasts(str(path))


def _scenario(path: Path, bucket_ms: int) -> list[Broadcast]:
    # The simulator is imported only for scenarios (it pulls in aiohttp).
    from streamscout.sim.chatmodel import ChannelChat
    from streamscout.sim.scenario import ScenarioError, load_scenario
    from streamscout.sim.world import World

    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        raise InputError(f"{path}: not a valid scenario: {exc}") from None
    world = World(scenario, clock=lambda: SCENARIO_EPOCH_MS / 1000)
    end_s = max((ev.at + ev.duration for ev in scenario.events), default=0.0) + SCENARIO_TAIL_S
    end_s = max(end_s, 900.0)
    builder = SeriesBuilder(bucket_ms)
    tick_ms = int(SCENARIO_TICK_S * 1000)
    chats = {ch.login: ChannelChat(ch, world.seed) for ch in world.channels.values()}
    pending = sorted((ev.at, i, ev) for i, ev in enumerate(scenario.events) if ev.type in ("raid", "gift_subs"))
    step = 0
    while True:
        t = step * SCENARIO_TICK_S
        if t >= end_s:
            break
        step += 1
        now_ms = SCENARIO_EPOCH_MS + step * tick_ms
        while pending and pending[0][0] <= t + SCENARIO_TICK_S:
            _, _, ev = pending.pop(0)
            channel = world.channels[ev.channel]
            chat = chats[ev.channel]
            lines = (chat.raid(now_ms, channel.id, ev.source, ev.count or 500) if ev.type == "raid"
                     else chat.gift_subs(now_ms, channel.id, ev.count or 10))
            for line in lines:
                record = recordings.parse_irc_line(line)
                builder.add_event(record.channel, record.timestamp_ms, record.tags.get("msg-id", ""))
        for channel in world.channels.values():
            if channel.chat.rate <= 0 or not channel.live_at(t):
                continue
            chat = chats[channel.login]
            multiplier = world.burst_multiplier(channel.login, t)
            n = chat.counts(t, SCENARIO_TICK_S, multiplier)
            if n:
                for line in chat.lines(n, now_ms, tick_ms, channel.id, hype=multiplier > 1.5):
                    record = recordings.parse_irc_line(line)
                    if record is not None and record.command == "PRIVMSG":
                        builder.add_message(record.channel, record.timestamp_ms, record.text)
    broadcasts = builder.broadcasts(str(path), name_prefix=f"{scenario.name} ")
    truth: dict[str, list[Burst]] = {}
    floods: dict[str, list[Burst]] = {}
    for burst in world.truth.bursts:
        target = truth if burst["cause"] == "scheduled" else floods
        target.setdefault(burst["channel"], []).append(
            Burst(burst["start_ms"], burst["end_ms"], burst["multiplier"], burst["cause"]))
    out = []
    for broadcast in broadcasts:
        login = broadcast.name.split(" ", 1)[1]
        out.append(replace(broadcast, truth=tuple(truth.get(login, ())), floods=tuple(floods.get(login, ()))))
    return out
