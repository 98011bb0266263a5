"""Real chat replayed through the simulator reaches pyTwitchAPI unchanged."""

from __future__ import annotations

import asyncio
import re

import pytest
from sim_helpers import user_client, wait_for
from twitchAPI.chat import Chat, ChatMessage
from twitchAPI.type import ChatEvent

from streamscout.common.recordings import iter_messages

pytestmark = pytest.mark.unit
ACTION = re.compile(r"^\x01ACTION (?P<msg>.*)\x01$")


def expected_emotes(record) -> dict[str, list[dict[str, str]]] | None:
    """The record's emote ranges in the shape pyTwitchAPI's ChatMessage.emotes has."""
    raw = record.tags.get("emotes", "")
    if not raw:
        return None
    return {group.split(":")[0]: [{"start_position": a, "end_position": b}
                                  for a, b in (span.split("-") for span in group.split(":")[1].split(","))]
            for group in raw.split("/")}


def test_xqcow_transcript_reaches_pytwitchapi_intact(sim, datasets_dir):
    path = datasets_dir / "go-twitch-irc" / "channel_xqcow_2019-09-15.irc.txt"
    if not path.exists():
        pytest.skip(f"{path} missing")
    records = list(iter_messages(path))
    assert len(records) == 4933
    s = sim("steady", replay=[path], replay_speed=2000)

    async def main():
        twitch = await user_client(s)
        chat = await Chat(twitch, connection_url=s.info["chat_url"], initial_channel=["xqcow"])
        chat.log_no_registered_command_handler = False
        received: dict[str, ChatMessage] = {}

        async def on_message(message: ChatMessage) -> None:
            received[message.id] = message

        chat.register_event(ChatEvent.MESSAGE, on_message)
        chat.start()
        try:
            await wait_for(lambda: len(received) >= len(records), timeout=30)
        finally:
            chat.stop()
        return received

    received = asyncio.run(main())
    assert len(received) == len(records)
    for record in records:
        message = received[record.message_id]
        action = ACTION.match(record.text)
        assert message.text == (action.group("msg") if action else record.text)
        assert message.user.name == record.user and message.user.id == record.user_id
        assert message.emotes == expected_emotes(record)
    truth = s.ground_truth()
    assert (truth["replays"][0]["channel"], truth["replays"][0]["records"]) == ("xqcow", 5000)
    assert truth["chat"]["xqcow"] == {"generated": 4933, "delivered": 4933}


def test_streams_list_the_replayed_channel(sim, datasets_dir):
    path = datasets_dir / "go-twitch-irc" / "channel_xqcow_2019-09-15.irc.txt"
    if not path.exists():
        pytest.skip(f"{path} missing")
    s = sim("steady", replay=[path])
    assert s.world.channel("xqcow").id == "71092938"  # the recording's room-id
