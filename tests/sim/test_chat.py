"""Chat over WebSocket, driven by pyTwitchAPI's Chat and by a bare IRC client."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from sim_helpers import RawIrc, user_client, wait_for
from twitchAPI.chat import Chat, ChatMessage
from twitchAPI.type import ChatEvent

from streamscout.common.recordings import parse_irc_line

pytestmark = pytest.mark.unit


async def start_chat(s, channels: list[str]) -> tuple[Chat, list[ChatMessage]]:
    twitch = await user_client(s)
    chat = await Chat(twitch, connection_url=s.info["chat_url"], initial_channel=channels)
    received: list[ChatMessage] = []

    async def on_message(message: ChatMessage) -> None:
        received.append(message)

    chat.register_event(ChatEvent.MESSAGE, on_message)
    chat.start()
    return chat, received


def test_joined_chat_delivers_messages_parsed_by_pytwitchapi(sim):
    s = sim("demo")

    async def main():
        chat, received = await start_chat(s, ["xqcow_sim"])
        try:
            await wait_for(lambda: len(received) >= 30)
            rooms = {(m.room.name, m.room.room_id) for m in received}  # the room cache dies with stop()
        finally:
            chat.stop()
        return received, rooms

    received, rooms = asyncio.run(main())
    assert rooms == {("xqcow_sim", "71092938")}
    now_ms = time.time() * 1000
    for message in received:
        assert message.user.name and message.user.id and message.user.display_name
        assert len(message.id) == 36 and message.text
        assert now_ms - 15000 < message.sent_timestamp <= now_ms
        for emote_id, ranges in (message.emotes or {}).items():
            for span in ranges:
                word = message.text[int(span["start_position"]):int(span["end_position"]) + 1]
                assert word and " " not in word
    assert any(m.user.badges for m in received)
    assert len({m.user.name for m in received}) > 5
    chat = s.ground_truth()["chat"]
    assert chat["xqcow_sim"]["generated"] >= chat["xqcow_sim"]["delivered"] >= len(received)
    assert chat["shroud_sim"]["generated"] > 0 and chat["shroud_sim"]["delivered"] == 0  # nobody joined it


def test_reconnect_is_honoured_by_pytwitchapi(sim):
    s = sim("demo")

    async def main():
        chat, received = await start_chat(s, ["xqcow_sim"])
        try:
            await wait_for(lambda: len(received) >= 5)
            old = set(s.chat.connections)
            assert s.reconnect_chat() == 1
            # pyTwitchAPI opens a new socket, logs in again and rejoins its channels
            await wait_for(lambda: any(c not in old and "xqcow_sim" in c.channels for c in s.chat.connections))
            await wait_for(lambda: not (old & s.chat.connections))
            count = len(received)
            await wait_for(lambda: len(received) >= count + 5)
        finally:
            chat.stop()

    asyncio.run(main())


def test_irc_protocol_answers(sim):
    s = sim("demo")

    async def main():
        irc = await RawIrc.connect(s)
        try:
            assert "CAP * ACK" in await irc.read_until(lambda l: " CAP " in l)
            await irc.read_until(lambda l: " 376 " in l)
            await irc.send("WHO #xqcow_sim")
            unknown = await irc.read_until(lambda l: " 421 " in l)
            await irc.send("this is not irc at all")
            garbage = await irc.read_until(lambda l: " 421 " in l and "THIS" in l)
            await irc.send("PING :tmi.twitch.tv")
            pong = await irc.read_until(lambda l: " PONG " in l)
            await irc.send("JOIN #nosuchchannel")
            suspended = await irc.read_until(lambda l: "msg_channel_suspended" in l)
            await irc.send("JOIN #xqcow_sim")
            roomstate = await irc.read_until(lambda l: " ROOMSTATE " in l)
            privmsg = await irc.read_until(lambda l: " PRIVMSG #xqcow_sim " in l)
            await irc.send("PART #xqcow_sim")
            await irc.read_until(lambda l: " PART #xqcow_sim" in l)
            return unknown, garbage, pong, suspended, roomstate, privmsg
        finally:
            await irc.close()

    unknown, garbage, pong, suspended, roomstate, privmsg = asyncio.run(main())
    assert unknown == f":tmi.twitch.tv 421 {s.info['bot_login']} WHO :Unknown command"
    assert garbage.endswith(" THIS :Unknown command")
    assert pong.startswith(":tmi.twitch.tv PONG")
    assert "room-id=71092938" in roomstate
    record = parse_irc_line(privmsg)
    assert record.channel == "xqcow_sim" and record.room_id == "71092938" and record.user


def test_wrong_token_fails_login(sim):
    s = sim("demo")

    async def main():
        irc = await RawIrc.connect(s, token="not-a-token")
        try:
            notice = await irc.read_until(lambda l: "NOTICE" in l)
            with pytest.raises(ConnectionError):
                await irc.read_until(lambda l: False, timeout=2)
            return notice
        finally:
            await irc.close()

    assert asyncio.run(main()) == ":tmi.twitch.tv NOTICE * :Login authentication failed"


def test_join_limit_is_20_per_10_seconds(sim):
    channels = [{"login": f"ch{i}", "id": str(1000 + i), "chat": {"rate": 0}} for i in range(22)]
    s = sim({"channels": channels})

    async def main():
        irc = await RawIrc.connect(s)
        try:
            await irc.read_until(lambda l: " 376 " in l)
            await irc.send("JOIN " + ",".join(f"#ch{i}" for i in range(22)))
            await irc.read_until(lambda l: "msg_ratelimit" in l and "#ch21" in l)
            return [l for l in irc.lines if " JOIN #" in l], [l for l in irc.lines if "msg_ratelimit" in l]
        finally:
            await irc.close()

    joined, limited = asyncio.run(main())
    assert len(joined) == 20 and len(limited) == 2


def test_raid_gift_subs_and_timeouts_reach_listeners(sim):
    s = sim({"channels": [{"login": "a", "id": "77", "chat": {"rate": 20, "timeouts": 0.2}}],
             "events": [{"type": "raid", "channel": "a", "at": 2.5, "count": 321, "source": "friend"},
                        {"type": "gift_subs", "channel": "a", "at": 2.7, "count": 3}]})

    async def main():
        irc = await RawIrc.connect(s)
        try:
            await irc.read_until(lambda l: " 376 " in l)
            await irc.send("JOIN #a")
            await irc.read_until(lambda l: sum("msg-id=subgift;" in x for x in irc.lines) == 3, timeout=10)
            await irc.read_until(lambda l: " CLEARCHAT #a " in l)
            return irc.lines
        finally:
            await irc.close()

    lines = asyncio.run(main())
    raid = parse_irc_line(next(l for l in lines if "msg-id=raid" in l))
    assert raid.tags["msg-param-viewerCount"] == "321" and raid.user == "friend"
    assert sum("msg-id=submysterygift" in l for l in lines) == 1
    truth = s.ground_truth()
    assert [b["cause"] for b in truth["bursts"]] == ["raid", "gift_subs"]
    assert [e["type"] for e in truth["events"]] == ["raid", "gift_subs"]


def test_offline_channel_is_silent_and_scheduled_drop_closes_sockets(sim):
    s = sim({"channels": [{"login": "on", "id": "1", "chat": {"rate": 50}},
                          {"login": "off", "id": "2", "live": False, "chat": {"rate": 50}}],
             "faults": [{"type": "chat_drop", "at": 3}]})

    async def main():
        irc = await RawIrc.connect(s)
        try:
            await irc.read_until(lambda l: " 376 " in l)
            await irc.send("JOIN #on,#off")
            await irc.read_until(lambda l: " PRIVMSG #on " in l)
            with pytest.raises(ConnectionError):
                await irc.read_until(lambda l: False, timeout=5)
            return irc.lines
        finally:
            await irc.close()

    lines = asyncio.run(main())
    assert any(" PRIVMSG #on " in l for l in lines)
    assert not any(" PRIVMSG #off " in l for l in lines)


def test_bursts_are_in_the_ground_truth_with_wall_clock_times(sim):
    s = sim({"channels": [{"login": "a", "id": "1"}],
             "events": [{"type": "burst", "channel": "a", "at": 100, "duration": 20, "multiplier": 5}]}, speed=10)
    truth = s.ground_truth()
    burst = truth["bursts"][0]
    assert burst["cause"] == "scheduled" and burst["multiplier"] == 5
    assert burst["start_ms"] - truth["started_ms"] == 10_000 and burst["end_ms"] - burst["start_ms"] == 2_000


def test_a_vanishing_client_does_not_stop_chat_for_the_others(sim):
    s = sim({"channels": [{"login": "a", "id": "1", "chat": {"rate": 100}}]})

    async def main():
        clients = [await RawIrc.connect(s) for _ in range(2)]
        try:
            for irc in clients:
                await irc.read_until(lambda l: " 376 " in l)
                await irc.send("JOIN #a")
                await irc.read_until(lambda l: " PRIVMSG #a " in l)
            clients[0].ws._response.connection.transport.abort()  # gone without a close frame
            survivor = clients[1]
            seen = len(survivor.lines)
            await survivor.read_until(lambda l: " PRIVMSG #a " in l and len(survivor.lines) > seen + 200)
            await wait_for(lambda: len(s.chat.connections) == 1)
        finally:
            for irc in clients:
                await irc.close()

    asyncio.run(main())


def test_caps_decide_what_a_client_gets_and_anonymous_login_reads(sim):
    s = sim({"channels": [{"login": "a", "id": "1", "chat": {"rate": 50, "timeouts": 0.3}}]})

    async def main():
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(s.info["chat_url"])
            irc = RawIrc(session, ws)
            try:
                await irc.send("NICK justinfan4711", "JOIN #a")  # no PASS, no CAP REQ
                await irc.read_until(lambda l: " 376 " in l)
                await irc.read_until(lambda l: sum(" PRIVMSG #a " in x for x in irc.lines) >= 100)
                return irc.lines
            finally:
                await irc.close()

    lines = asyncio.run(main())
    assert lines[0] == ":tmi.twitch.tv 001 justinfan4711 :Welcome, GLHF!"
    assert any(l.startswith(":justinfan4711!justinfan4711@justinfan4711.tmi.twitch.tv JOIN #a") for l in lines)
    assert not any(l.startswith("@") for l in lines)  # no tags without twitch.tv/tags
    assert not any(" CLEARCHAT " in l or " ROOMSTATE " in l or "GLOBALUSERSTATE" in l for l in lines)


def test_stall_silences_old_sockets_but_serves_new_ones(sim):
    s = sim({"channels": [{"login": "a", "id": "1", "chat": {"rate": 100}}]})

    async def main():
        old = await RawIrc.connect(s)
        try:
            await old.read_until(lambda l: " 376 " in l)
            await old.send("JOIN #a")
            await old.read_until(lambda l: " PRIVMSG #a " in l)
            s.inject_fault(type="chat_stall", duration=3)
            with pytest.raises(asyncio.TimeoutError):  # drain what was already in flight
                while True:
                    await old.ws.receive(timeout=0.3)
            await old.send("PING :still-there")
            with pytest.raises(asyncio.TimeoutError):
                await old.ws.receive(timeout=1.0)
            new = await RawIrc.connect(s)
            try:
                await new.read_until(lambda l: " 376 " in l)
                await new.send("JOIN #a")
                await new.read_until(lambda l: " PRIVMSG #a " in l)
            finally:
                await new.close()
            await old.read_until(lambda l: " PRIVMSG #a " in l, timeout=5)  # the stall ends
        finally:
            await old.close()

    asyncio.run(main())
