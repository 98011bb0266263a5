"""``/chat``: Twitch's IRC over WebSocket, fed by the scenario's chat model and replays.

Speaks what ``irc-ws.chat.twitch.tv`` speaks to pyTwitchAPI: CAP REQ/ACK, PASS (the
token is checked) + NICK, the 001-004/375/372/376 welcome, JOIN/PART (20 JOINs per 10 s
per account; extra JOINs get a NOTICE and are dropped), PING/PONG, RECONNECT, 421 for
unknown commands. Each tick, every joined channel's new lines go to its listeners as one
WebSocket frame of ``\\r\\n``-separated lines, built once and shared by all listeners; that
is how Twitch batches too, and it is what lets one process push >= 50,000 messages/s.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSMsgType, web

from streamscout.common.recordings import ChatRecord, iter_records
from streamscout.sim.chatmodel import emote_ranges, escape_tag
from streamscout.sim.scenario import Channel, ChatModel
from streamscout.sim.timeline import Timeline
from streamscout.sim.world import World

log = logging.getLogger(__name__)
SERVER = ":tmi.twitch.tv"
JOIN_LIMIT, JOIN_WINDOW = 20, 10.0
RECONNECT_GRACE = 2.0
PING_INTERVAL = 240.0  # Twitch pings a little under every 5 minutes
TS_TAG = re.compile(r"(?<=[@;])tmi-sent-ts=\d+")
ROOM_TAG = re.compile(r"(?<=[@;])room-id=\d*")  # not source-room-id
REPLAY_SEND = ("PRIVMSG", "USERNOTICE", "CLEARCHAT", "CLEARMSG")


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    request: web.Request
    opened: float = 0.0  # scenario seconds
    nick: str = ""
    token_ok: bool = False
    registered: bool = False
    caps: set[str] = field(default_factory=set)
    channels: set[str] = field(default_factory=set)

    @property
    def cap_key(self) -> tuple[bool, bool]:
        return "twitch.tv/tags" in self.caps, "twitch.tv/commands" in self.caps

    async def send(self, *lines: str) -> None:
        """Send lines as one frame (as this client's caps allow); a socket that went away
        meanwhile is not an error."""
        frame = render(list(lines), *self.cap_key)
        if frame and not self.ws.closed:
            try:
                await self.ws.send_str(frame)
            except ConnectionError:
                pass


# Without twitch.tv/commands Twitch sends none of these; without twitch.tv/tags, no tags.
COMMANDS_CAP_ONLY = frozenset(("USERNOTICE", "CLEARCHAT", "CLEARMSG", "ROOMSTATE", "USERSTATE", "GLOBALUSERSTATE",
                               "RECONNECT", "HOSTTARGET", "WHISPER"))


def _command(line: str) -> str:
    rest = line.partition(" ")[2] if line.startswith("@") else line
    if rest.startswith(":"):
        rest = rest.partition(" ")[2]
    return rest.partition(" ")[0]


def render(lines: list[str], tags: bool, commands: bool) -> str:
    """The frame a client with these caps gets for these lines."""
    if not commands:
        lines = [line for line in lines if _command(line) not in COMMANDS_CAP_ONLY]
    if not tags:
        lines = [line.partition(" ")[2] if line.startswith("@") else line for line in lines]
    return "\r\n".join(lines)


@dataclass
class Replay:
    """A recording played on a channel, starting when someone first joins it."""

    channel: str
    records: list[ChatRecord]
    speed: float
    started: float | None = None  # wall seconds
    position: int = 0


class ChatServer:
    def __init__(self, world: World, tick: float = 0.05) -> None:
        self.world = world
        self.tick = tick
        self.connections: set[Connection] = set()
        self.listeners: dict[str, set[Connection]] = {}
        self.joins: dict[str, deque[float]] = {}  # per account
        self.timeline = Timeline(world, tick)
        self.replays: list[Replay] = []
        self._faults_done: set[int] = set()

    # --- replay ------------------------------------------------------------------------
    def add_replay(self, path: Path, speed: float = 1.0) -> list[str]:
        """Replay a recording; its channels join the world (as top streams) if new."""
        by_channel: dict[str, list[ChatRecord]] = {}
        for record in iter_records(path):
            by_channel.setdefault(record.channel, []).append(record)
        for login, records in by_channel.items():
            records.sort(key=lambda r: r.timestamp_ms)
            if self.world.channel(login) is None:
                room_id = next((r.room_id for r in records if r.room_id), "") or str(300000 + len(self.world.channels))
                rank_viewers = 200000 - 1000 * len(self.replays)
                self.world.add_channel(Channel(login=login, id=room_id, display_name=login, viewers=((0.0, rank_viewers),),
                                               title=f"{login} (replayed chat)", chat=ChatModel(rate=0.0)))
            self.replays.append(Replay(login, records, speed))
            self.world.truth.replays.append({"file": str(path), "channel": login, "records": len(records),
                                             "speed": speed, "first_ts": records[0].timestamp_ms,
                                             "last_ts": records[-1].timestamp_ms})
        return list(by_channel)

    # --- HTTP / WebSocket --------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [web.get("/chat", self.handle)]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(ws, request, opened=self.world.now())
        self.connections.add(conn)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                for line in msg.data.split("\n"):
                    line = line.strip("\r")
                    if line:
                        await self.command(conn, line)
                if ws.closed:
                    break
        finally:
            self._forget(conn)
        return ws

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for login in conn.channels:
            self.listeners.get(login, set()).discard(conn)

    def stalled(self, conn: Connection) -> bool:
        """Whether an active `chat_stall` fault silences this (older) socket."""
        t = self.world.now()
        return any(a.fault.type == "chat_stall" and a.active(t) and a.start > conn.opened for a in self.world.faults)

    async def command(self, conn: Connection, line: str) -> None:
        if self.stalled(conn):
            return  # a stalled server reads and answers nothing
        if line.startswith("@"):  # client tags (e.g. reply-parent-msg-id) are allowed
            line = line.partition(" ")[2]
        verb, _, rest = line.partition(" ")
        verb = verb.upper()
        if verb == "CAP":
            if rest.upper().startswith("REQ"):
                caps = rest.partition(":")[2].split()
                known = [c for c in caps if c in ("twitch.tv/membership", "twitch.tv/tags", "twitch.tv/commands")]
                conn.caps.update(known)
                if len(known) == len(caps):
                    await conn.send(f"{SERVER} CAP * ACK :{' '.join(caps)}")
                else:
                    await conn.send(f"{SERVER} CAP * NAK :{' '.join(caps)}")
            return
        if verb == "PASS":
            token = self.world.tokens.valid(rest.strip().removeprefix("oauth:"))
            conn.token_ok = token is not None and token.login is not None
            conn.nick = token.login if conn.token_ok else ""
            return
        if verb == "NICK":
            nick = rest.strip().lower()
            if not conn.token_ok and nick.startswith("justinfan"):
                conn.nick = nick  # anonymous read-only login, as Twitch allows
            elif not conn.token_ok or nick != conn.nick:
                await conn.send(f"{SERVER} NOTICE * :Login authentication failed")
                await conn.ws.close()
                return
            conn.registered = True
            n = conn.nick
            welcome = [f"{SERVER} 001 {n} :Welcome, GLHF!", f"{SERVER} 002 {n} :Your host is tmi.twitch.tv",
                       f"{SERVER} 003 {n} :This server is rather new", f"{SERVER} 004 {n} :-",
                       f"{SERVER} 375 {n} :-", f"{SERVER} 372 {n} :You are in a maze of twisty passages, all alike.",
                       f"{SERVER} 376 {n} :>"]
            if conn.token_ok:
                welcome.append(f"@badge-info=;badges=;color=;display-name={n};emote-sets=0;"
                               f"user-id={self.world.scenario.bot_id};user-type= {SERVER} GLOBALUSERSTATE")
            await conn.send(*welcome)
            return
        if verb == "PING":
            await conn.send(f"{SERVER} PONG tmi.twitch.tv {rest or ':tmi.twitch.tv'}".rstrip())
            return
        if verb == "PONG":
            return
        if not conn.registered:
            return  # Twitch ignores everything before a successful login
        if verb == "JOIN":
            for name in rest.split(","):
                await self._join(conn, name.strip().lstrip("#").lower())
            return
        if verb == "PART":
            for name in rest.split(","):
                login = name.strip().lstrip("#").lower()
                conn.channels.discard(login)
                self.listeners.get(login, set()).discard(conn)
                await conn.send(f":{conn.nick}!{conn.nick}@{conn.nick}.tmi.twitch.tv PART #{login}")
            return
        if verb == "PRIVMSG":
            target, _, text = rest.partition(" :")
            login = target.strip().lstrip("#").lower()
            if login in conn.channels:
                await conn.send(f"@badge-info=;badges=;color=;display-name={conn.nick};emote-sets=0;mod=0;subscriber=0;user-type="
                                f" {SERVER} USERSTATE #{login}")
                echo = (f"@badge-info=;badges=;color=;display-name={conn.nick};emotes={emote_ranges(text)};first-msg=0;flags=;"
                        f"id=00000000-0000-4000-8000-{self.world.ms():012d};mod=0;returning-chatter=0;"
                        f"room-id={self.world.channels[login].id};subscriber=0;tmi-sent-ts={self.world.ms()};turbo=0;"
                        f"user-id={self.world.scenario.bot_id};user-type= :{conn.nick}!{conn.nick}@{conn.nick}.tmi.twitch.tv "
                        f"PRIVMSG #{login} :{text}")
                for other in list(self.listeners.get(login, ())):
                    if other is not conn:
                        await other.send(echo)
            return
        await conn.send(f"{SERVER} 421 {conn.nick} {verb} :Unknown command")

    async def _join(self, conn: Connection, login: str) -> None:
        if not login:
            return
        window = self.joins.setdefault(conn.nick, deque())
        now = self.world.clock()
        while window and window[0] <= now - JOIN_WINDOW:
            window.popleft()
        if len(window) >= JOIN_LIMIT:
            await conn.send(f"@msg-id=msg_ratelimit {SERVER} NOTICE #{login} :Your message was not sent because you are sending messages too quickly.")
            return
        window.append(now)
        channel = self.world.channels.get(login)
        if channel is None:
            await conn.send(f"@msg-id=msg_channel_suspended {SERVER} NOTICE #{login} :This channel does not exist or has been suspended.")
            return
        conn.channels.add(login)
        self.listeners.setdefault(login, set()).add(conn)
        n = conn.nick
        await conn.send(f":{n}!{n}@{n}.tmi.twitch.tv JOIN #{login}",
                        f":{n}.tmi.twitch.tv 353 {n} = #{login} :{n}",
                        f":{n}.tmi.twitch.tv 366 {n} #{login} :End of /NAMES list",
                        f"@badge-info=;badges=;color=;display-name={n};emote-sets=0;mod=0;subscriber=0;user-type= {SERVER} USERSTATE #{login}",
                        f"@emote-only=0;followers-only=-1;r9k=0;room-id={channel.id};slow=0;subs-only=0 {SERVER} ROOMSTATE #{login}")
        for replay in self.replays:
            if replay.channel == login and replay.started is None:
                replay.started = self.world.clock()

    # --- control -----------------------------------------------------------------------
    async def reconnect_all(self) -> int:
        """Send RECONNECT, then close the sockets a little later, as Twitch does before maintenance."""
        targets = list(self.connections)
        for conn in targets:
            await conn.send(f"{SERVER} RECONNECT")

        async def close_later() -> None:
            await asyncio.sleep(RECONNECT_GRACE)
            for conn in targets:
                await conn.ws.close()

        asyncio.get_running_loop().create_task(close_later())
        return len(targets)

    async def drop_all(self) -> int:
        """Close every socket without warning (a network drop)."""
        targets = list(self.connections)
        for conn in targets:
            if conn.request.transport is not None:
                conn.request.transport.abort()
            self._forget(conn)
        return len(targets)

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await conn.ws.close()

    # --- generation --------------------------------------------------------------------
    async def run(self) -> None:
        """The tick loop: advance the chat timeline, deliver to listeners, play replays."""
        step = 0
        ping_every = max(1, round(PING_INTERVAL / self.tick))
        loop = asyncio.get_running_loop()
        origin = loop.time()
        while True:
            step += 1
            delay = origin + step * self.tick - loop.time()
            await asyncio.sleep(max(delay, 0))  # behind schedule: still let HTTP handlers run
            try:
                await self._step(step, ping_every)
            except Exception:  # one bad tick must not end the chat for good
                log.exception("chat tick failed", extra={"step": step})

    async def _step(self, step: int, ping_every: int) -> None:
        now_ms = self.world.ms()
        if step % ping_every == 0:
            await self._ping()
        await self._chat_faults()
        batches = self.timeline.step(step, now_ms, wanted=lambda login: bool(self.listeners.get(login)))
        for login, lines in batches.items():
            listeners = self.listeners.get(login)
            if listeners:
                await self._deliver(listeners, lines)
        if self.replays:
            await self._replay(now_ms)

    async def _ping(self) -> None:
        for conn in list(self.connections):
            if conn.registered and not self.stalled(conn):
                await conn.send("PING :tmi.twitch.tv")

    async def _deliver(self, listeners: set[Connection], lines: list[str]) -> None:
        frames: dict[tuple[bool, bool], str] = {}  # rendered once per caps combination
        stall = any(a.fault.type == "chat_stall" for a in self.world.faults)
        for conn in list(listeners):
            if conn.ws.closed:
                self._forget(conn)
                continue
            if stall and self.stalled(conn):
                continue
            key = conn.cap_key
            frame = frames.get(key)
            if frame is None:
                frame = frames[key] = "\r\n".join(lines) if key == (True, True) else render(lines, *key)
            if not frame:
                continue
            try:
                await conn.ws.send_str(frame)
            except ConnectionError:
                self._forget(conn)

    async def _chat_faults(self) -> None:
        """Scheduled (or injected) socket drops and RECONNECTs whose time has come."""
        for index, active in enumerate(self.world.faults):
            kind = active.fault.type
            if kind in ("chat_drop", "chat_reconnect") and index not in self._faults_done and active.start <= self.world.now():
                self._faults_done.add(index)
                await (self.drop_all() if kind == "chat_drop" else self.reconnect_all())

    async def _replay(self, now_ms: int) -> None:
        now = self.world.clock()
        for replay in self.replays:
            if replay.started is None or replay.position >= len(replay.records):
                continue
            base = replay.records[0].timestamp_ms
            due_ms = base + (now - replay.started) * 1000 * replay.speed
            end = bisect.bisect_right(replay.records, due_ms, lo=replay.position, key=lambda r: r.timestamp_ms)
            if end == replay.position:
                continue
            channel = self.world.channels[replay.channel]
            start, replay.position = replay.position, end
            lines = [self._replay_line(r, channel, now_ms) for r in replay.records[start:end]]
            lines = [line for line in lines if line]
            listened = bool(self.listeners.get(replay.channel))
            privmsgs = sum(r.command == "PRIVMSG" for r in replay.records[start:end])
            self.world.truth.count_chat(replay.channel, generated=privmsgs, delivered=privmsgs if listened else 0)
            if lines and listened:
                await self._deliver(self.listeners[replay.channel], lines)

    @staticmethod
    def _replay_line(record: ChatRecord, channel: Channel, now_ms: int) -> str:
        """The recorded line as live chat: original tags, but now's time and this room's id."""
        if record.raw:
            if record.command not in REPLAY_SEND:
                return ""
            line = TS_TAG.sub(f"tmi-sent-ts={now_ms}", record.raw, count=1)
            return ROOM_TAG.sub(f"room-id={channel.id}", line, count=1)
        emotes = "/".join(f"{eid}:{start}-{end}" for eid, start, end in record.emotes)
        user = record.user or "unknown"
        display = record.tags.get("display-name") or user
        msg_id = record.message_id or f"00000000-0000-4000-8000-{now_ms:012d}"
        return (f"@badge-info=;badges={record.tags.get('badges', '')};color={record.tags.get('color', '')};"
                f"display-name={escape_tag(display)};emotes={emotes};first-msg=0;flags=;id={msg_id};mod=0;"
                f"returning-chatter=0;room-id={channel.id};subscriber=0;tmi-sent-ts={now_ms};turbo=0;"
                f"user-id={record.user_id};user-type= :{user}!{user}@{user}.tmi.twitch.tv PRIVMSG #{channel.login} :{record.text}")
