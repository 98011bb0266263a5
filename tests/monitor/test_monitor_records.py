"""IRC lines -> chat-messages records, and the record schemas."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamscout.common.schemas import (
    SchemaError,
    chat_message,
    encode,
    lifecycle_event,
    validate_chat_message,
    validate_lifecycle_event,
)
from streamscout.monitor.irc import chat_record, event_record, parse_line, parse_tags, unescape

pytestmark = pytest.mark.unit

XQC = "go-twitch-irc/channel_xqcow_2019-09-15.irc.txt"
LINE = (
    "@badge-info=subscriber/1;badges=subscriber/0;color=;display-name=MrRagerLUL;"
    "emotes=300235054:0-8,12-20,24-32;flags=;id=4cc7a725-d09f-47ae-b745-71570da7c492;mod=0;"
    "room-id=71092938;subscriber=1;tmi-sent-ts=1568505601336;turbo=0;user-id=88916605;user-type= "
    ":mrragerlul!mrragerlul@mrragerlul.tmi.twitch.tv PRIVMSG #xqcow :forsenJoy 👌 forsenJoy 👌 forsenJoy 👌"
)


def record(line: str, **kw):
    return chat_record(parse_line(line), received_ms=1_000, **kw)


def test_real_line_becomes_the_spec_record():
    rec = validate_chat_message(record(LINE))
    assert rec == {
        "broadcaster_id": 71092938,
        "timestamp": 1568505601336,
        "message_id": "4cc7a725-d09f-47ae-b745-71570da7c492",
        "text": "forsenJoy 👌 forsenJoy 👌 forsenJoy 👌",
        "user_id": 88916605,
        "user_name": "MrRagerLUL",
        "metadata": {
            "emotes": {"300235054": ["0-8", "12-20", "24-32"]},
            "badges": {"subscriber": "0"},
            "is_subscriber": True,
            "is_mod": False,
        },
    }
    assert json.loads(encode(rec)) == rec
    assert "👌".encode() in encode(rec)  # UTF-8, not \\u escapes


def test_escaped_display_name_and_odd_tags():
    line = (
        "@badges=;display-name=A\\sB\\:C\\\\;emotes=;id=;mod=1;room-id=5;subscriber=;"
        "tmi-sent-ts=;user-id=;bogus;=x;a=b=c :u!u@u PRIVMSG #chan :hi"
    )
    tags = parse_tags(line[1:].split(" ")[0])
    assert tags["a"] == "b=c" and tags["bogus"] is None and tags["emotes"] is None
    rec = validate_chat_message(record(line))
    assert rec["user_name"] == "A B;C\\"
    assert rec["timestamp"] == 1_000  # missing tmi-sent-ts: receive time
    assert rec["user_id"] == 0
    assert rec["message_id"]  # missing id: a deterministic uuid
    assert rec["message_id"] == record(line)["message_id"]
    assert rec["metadata"] == {"emotes": {}, "badges": {}, "is_subscriber": False, "is_mod": True}


def test_malformed_emotes_keep_the_good_ranges():
    line = "@emotes=25:0-4,x-2,9-3/bad/:1-2/33:;room-id=5;tmi-sent-ts=7 :u!u@u PRIVMSG #c :Kappa"
    rec = validate_chat_message(record(line))
    assert rec["metadata"]["emotes"] == {"25": ["0-4"]}


def test_non_ascii_login_and_action_message():
    line = "@display-name=테스트;room-id=5;tmi-sent-ts=7;user-id=3 :t!t@t PRIVMSG #c :\x01ACTION tanzt ÄÖÜ\x01"
    rec = validate_chat_message(record(line))
    assert rec["user_name"] == "테스트" and rec["text"] == "tanzt ÄÖÜ"


def test_missing_room_id_uses_the_channel_map_or_gives_up():
    line = "@tmi-sent-ts=7;user-id=3 :t!t@t PRIVMSG #Chan :x"
    assert record(line) is None
    assert record(line, channel_ids={"chan": 42})["broadcaster_id"] == 42


def test_user_name_falls_back_to_the_nick():
    rec = record("@room-id=5;tmi-sent-ts=7 :nick!nick@host PRIVMSG #c :x")
    assert rec["user_name"] == "nick"


@pytest.mark.parametrize(
    "line",
    ["", "@", "@a=b", ":onlysource", "@a=b :src", "PRIVMSG", "@room-id=5 :s PRIVMSG #c", "\x00\x01"],
)
def test_garbage_lines_return_none_or_a_valid_record(line):
    parsed = parse_line(line)
    rec = chat_record(parsed, received_ms=1)
    assert rec is None or validate_chat_message(rec)


def test_raid_and_gift_flood_become_event_records():
    raid = (
        "@badges=;display-name=Raider;login=raider;msg-id=raid;msg-param-viewerCount=1234;room-id=5;"
        "system-msg=1234\\sraiders\\sfrom\\sRaider;tmi-sent-ts=9;user-id=8 :tmi.twitch.tv USERNOTICE #c"
    )
    rec = validate_chat_message(event_record(parse_line(raid), received_ms=1))
    assert rec["event"] == {"type": "raid", "count": 1234, "system_text": "1234 raiders from Raider"}
    assert rec["text"] == "" and rec["user_name"] == "Raider"
    gift = (
        "@login=g;msg-id=submysterygift;msg-param-mass-gift-count=50;room-id=5;tmi-sent-ts=9;user-id=8 "
        ":tmi.twitch.tv USERNOTICE #c"
    )
    rec = validate_chat_message(event_record(parse_line(gift), received_ms=1))
    assert rec["event"]["type"] == "submysterygift" and rec["event"]["count"] == 50
    assert "event" not in record(LINE)


def test_every_line_of_the_real_transcript(datasets_dir):
    path = datasets_dir / XQC
    if not path.exists():
        pytest.skip(f"{path} not found")
    kinds: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parsed = parse_line(line)
        assert parsed is not None
        command = parsed["command"]["command"]
        kinds[command] = kinds.get(command, 0) + 1
        if command == "PRIVMSG":
            rec = validate_chat_message(chat_record(parsed, received_ms=0))
            assert rec["broadcaster_id"] == 71092938 and rec["timestamp"] > 1568505599000
            for ranges in rec["metadata"]["emotes"].values():
                for r in ranges:
                    start, end = map(int, r.split("-"))
                    assert end < len(rec["text"].encode("utf-16-le")) // 2 + 1
        elif command == "USERNOTICE":
            rec = validate_chat_message(event_record(parsed, received_ms=0))
            assert rec["event"]["type"] in {"sub", "resub", "subgift", "submysterygift", "raid"}
            assert "\\s" not in rec["event"]["system_text"]
    assert kinds == {"PRIVMSG": 4933, "CLEARCHAT": 58, "USERNOTICE": 9}


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_never_raises(text):
    for line in (text, "@" + text, f"@room-id=1;{text} :u!u@u PRIVMSG #c :{text}"):
        parsed = parse_line(line)
        for build in (chat_record, event_record):
            rec = build(parsed, received_ms=5)
            assert rec is None or validate_chat_message(rec)


@settings(max_examples=200)
@given(st.dictionaries(st.text("abcdefghij-", min_size=1, max_size=8), st.text(max_size=20), max_size=8))
def test_any_tag_values_never_raise(tags):
    raw = ";".join(f"{k}={v.replace(';', '').replace(' ', '')}" for k, v in tags.items())
    rec = chat_record(parse_line(f"@room-id=3;{raw} :u!u@u PRIVMSG #c :x"), received_ms=5)
    assert rec is None or validate_chat_message(rec)


@settings(max_examples=300)
@given(
    st.sampled_from(["room-id", "tmi-sent-ts", "user-id", "emotes", "badges", "mod", "subscriber", "id"]),
    st.one_of(st.text(max_size=30), st.sampled_from(["²", "١٢٣", "9" * 30, "25:²-4", "25:0-²", "-1", "1e3"])),
)
def test_odd_values_of_the_tags_a_record_is_built_from(tag, value):
    """Unicode digits ("²".isdigit() is True, int("²") raises) and numbers beyond 64 bits must
    give a record that encodes, or none, never an exception in the chat receive loop."""
    value = value.replace(";", "").replace(" ", "").replace("\r", "").replace("\n", "")
    line = f"@room-id=3;tmi-sent-ts=1700000000000;{tag}={value} :u!u@u PRIVMSG #c :x"
    rec = chat_record(parse_line(line), received_ms=5)
    if rec is not None:
        assert validate_chat_message(rec) and json.loads(encode(rec)) == rec


def test_unescape():
    assert unescape("a\\sb\\:c\\\\d\\ne\\") == "a b;c\\d\ne"
    assert unescape("\\x") == "x"


def test_validator_names_the_bad_field():
    good = chat_message(broadcaster_id=1, timestamp=2, message_id="m", text="t", user_id=3, user_name="u")
    validate_chat_message(good)
    validate_chat_message(encode(good))
    cases = [
        ({**good, "broadcaster_id": "1"}, "broadcaster_id: expected int"),
        ({**good, "timestamp": True}, "timestamp: expected int, got bool"),
        ({k: v for k, v in good.items() if k != "text"}, "text: missing"),
        ({**good, "extra": 1}, "extra: unknown field"),
        ({**good, "message_id": ""}, "message_id: must not be empty"),
        ({**good, "metadata": {**good["metadata"], "is_mod": 0}}, "metadata.is_mod"),
        ({**good, "metadata": {**good["metadata"], "emotes": {"1": ["4-2"]}}}, "metadata.emotes.1"),
        ({**good, "event": {"type": ""}}, "event.type"),
        ("{not json", "not JSON"),
        ([], "expected a JSON object"),
    ]
    for bad, message in cases:
        with pytest.raises(SchemaError, match=message.replace(".", r"\.")):
            validate_chat_message(bad)


def test_lifecycle_record():
    rec = lifecycle_event(
        event_type="online", broadcaster_id=1, broadcaster_login="a", rank=3, timestamp=1704067200
    )
    assert validate_lifecycle_event(encode(rec)) == {
        "event_type": "online", "broadcaster_id": 1, "broadcaster_login": "a", "rank": 3, "timestamp": 1704067200,
    }
    left = lifecycle_event(
        event_type="offline", broadcaster_id=1, broadcaster_login="a", rank=None, timestamp=1, reason="offline"
    )
    assert validate_lifecycle_event(left)["reason"] == "offline"
    for bad, message in [
        ({**rec, "event_type": "gone"}, "event_type"),
        ({**rec, "rank": 0}, "rank"),
        ({**rec, "broadcaster_login": ""}, "broadcaster_login"),
        ({k: v for k, v in rec.items() if k != "rank"}, "rank: missing"),
    ]:
        with pytest.raises(SchemaError, match=message):
            validate_lifecycle_event(bad)
