"""Readers of recorded chat: raw IRC, 'ts ;;; line' logs and VOD-comment JSON."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamscout.common.recordings import (ChatRecord, RecordingError, detect_format, iter_messages, iter_records,
                                           parse_emotes, parse_irc_line, unescape_tag)
from streamscout.sim.chatmodel import emote_ranges, escape_tag
from streamscout.sim.scenario import TWITCH_EMOTES

pytestmark = pytest.mark.unit

PRIVMSG = ("@badge-info=subscriber/10;badges=subscriber/9;color=#2693E2;display-name=DevilBalrog;"
           "emotes=932291:12-15;flags=;id=d10eb06b-2c8f-4813-95c1-e7bed5b70afa;mod=0;room-id=71092938;"
           "subscriber=1;tmi-sent-ts=1568505600861;turbo=0;user-id=82563640;user-type= "
           ":devilbalrog!devilbalrog@devilbalrog.tmi.twitch.tv PRIVMSG #xqcow :DansGame xqcL ppHop")


def test_parse_privmsg():
    r = parse_irc_line(PRIVMSG)
    assert (r.channel, r.timestamp_ms, r.user, r.text, r.command) == (
        "xqcow", 1568505600861, "devilbalrog", "DansGame xqcL ppHop", "PRIVMSG")
    assert (r.user_id, r.room_id, r.message_id) == ("82563640", "71092938", "d10eb06b-2c8f-4813-95c1-e7bed5b70afa")
    assert r.emotes == (("932291", 12, 15),) and r.tags["badges"] == "subscriber/9" and r.raw == PRIVMSG


def test_parse_clearchat_usernotice_and_non_channel_lines():
    clear = parse_irc_line("@ban-duration=150;room-id=7;target-user-id=48;tmi-sent-ts=5 :tmi.twitch.tv CLEARCHAT #x :onche")
    assert (clear.command, clear.user, clear.user_id, clear.text) == ("CLEARCHAT", "onche", "48", "onche")
    notice = parse_irc_line("@login=bob;msg-id=resub;system-msg=a\\sb;tmi-sent-ts=9 :tmi.twitch.tv USERNOTICE #x :hi")
    assert (notice.user, notice.tags["system-msg"], notice.text) == ("bob", "a b", "hi")
    assert parse_irc_line(":tmi.twitch.tv 001 me :Welcome, GLHF!") is None
    assert parse_irc_line("PING :tmi.twitch.tv") is None
    assert parse_irc_line(":a!a@a PRIVMSG #x :no time stamp") is None
    assert parse_irc_line(":a!a@a PRIVMSG #x :with given time", timestamp_ms=7).timestamp_ms == 7


def test_tag_unescaping_and_emote_ranges():
    assert unescape_tag(r"a\sb\:c\\d\n") == "a b;c\\d\n"
    assert parse_emotes("25:0-4,12-16/1902:6-10") == (("25", 0, 4), ("1902", 6, 10), ("25", 12, 16))
    assert parse_emotes("") == ()


def test_timestamped_log(tmp_path):
    path = tmp_path / "chat.log"
    path.write_text("2019-04-30_08:56:59 ;;; START OF RECORDED CHAT\n\n"
                    "2019-04-30_08:56:59 ;;; :tmi.twitch.tv 001 me :Welcome, GLHF!\n"
                    "2019-04-30_08:57:01 ;;; :bob!bob@bob.tmi.twitch.tv PRIVMSG #admiral :hello there\n")
    assert detect_format(path) == "timestamped"
    assert list(iter_messages(path)) == [ChatRecord("admiral", 1556614621000, "bob", "hello there", raw=
                                                    ":bob!bob@bob.tmi.twitch.tv PRIVMSG #admiral :hello there")]
    path.write_text("garbage ;;; :bob!bob@bob.tmi.twitch.tv PRIVMSG #admiral :hi\n")
    with pytest.raises(RecordingError, match="chat.log:1: bad time stamp"):
        list(iter_records(path))


def vod_comment(offset: int, created: str, text: str, emote: bool = False) -> dict:
    fragments = [{"emote": None, "text": "hi "}]
    if emote:
        fragments.append({"emote": {"emoteID": "emotesv2_abc", "from": 3}, "text": text})
    else:
        fragments[0]["text"] += text
    return {"id": f"c{offset}", "commenter": {"id": "9", "login": "Ann", "displayName": "Ann"},
            "contentOffsetSeconds": offset, "createdAt": created,
            "message": {"fragments": fragments, "userBadges": [{"setID": "subscriber", "version": "3"}], "userColor": "#FF0000"}}


def write_vod(tmp_path, comments, start="2026-05-20 08:00:00"):
    folder = tmp_path / "data" / "somechannel" / "2026-05-20_08-00-00_1"
    folder.mkdir(parents=True)
    (folder / "vod.json").write_text(json.dumps({"created_at": start}))
    path = folder / "verbose_chat.json.gz"
    with gzip.open(path, "wt") as handle:
        json.dump(comments, handle)
    return path


def test_vod_json_uses_created_at_with_seven_digit_fractions(tmp_path):
    path = write_vod(tmp_path, [vod_comment(12, "2026-05-20T08:00:12.1234567Z", "Kappa", emote=True),
                                vod_comment(5, "2026-05-20T08:00:05.5Z", "first")])
    records = list(iter_messages(path))
    assert [r.timestamp_ms % 100000 for r in records] == [5500, 12123]  # sorted by time
    first, second = records
    assert (first.channel, first.user, first.text, first.user_id) == ("somechannel", "ann", "hi first", "9")
    assert second.emotes == (("emotesv2_abc", 3, 7),) and second.text[3:8] == "Kappa"
    assert second.tags["badges"] == "subscriber/3"


def test_vod_json_falls_back_to_offset_when_created_at_is_wrong(tmp_path):
    # arypie-style: createdAt stuck near the stream start while the offset moves on
    path = write_vod(tmp_path, [vod_comment(3600, "2026-05-20T08:00:02.000Z", "late")])
    (record,) = iter_messages(path)
    assert record.timestamp_ms == 1779264000000 + 3600 * 1000


def test_malformed_vod_json_names_the_comment(tmp_path):
    path = write_vod(tmp_path, [{"id": "x", "commenter": {}, "createdAt": "2026-05-20T08:00:00Z"}])
    with pytest.raises(RecordingError, match="comment 0"):
        list(iter_records(path))


def test_real_xqcow_transcript(datasets_dir):
    path = datasets_dir / "go-twitch-irc" / "channel_xqcow_2019-09-15.irc.txt"
    records = list(iter_records(path))
    counts = {c: sum(r.command == c for r in records) for c in ("PRIVMSG", "CLEARCHAT", "USERNOTICE")}
    assert counts == {"PRIVMSG": 4933, "CLEARCHAT": 58, "USERNOTICE": 9}
    assert all(r.channel == "xqcow" for r in records)
    assert records[0].timestamp_ms == 1568505600501
    with_emotes = [r for r in records if r.emotes]
    assert with_emotes and all(0 <= start <= end < len(r.text) for r in with_emotes for _, start, end in r.emotes)


def test_real_admiralbulldog_log(datasets_dir):
    path = datasets_dir / "dsteffan-admiralbulldog" / "data" / "logs" / "chat_admiralbulldog_4_30.log"
    messages = list(iter_messages(path))
    assert len(messages) == 28844  # as the datasets README counts them
    assert {m.channel for m in messages} == {"admiralbulldog"}
    assert all(a.timestamp_ms <= b.timestamp_ms for a, b in zip(messages, messages[1:]))


def test_real_bocru_vods(datasets_dir):
    """One broadcast per channel (arypie's has the broken createdAt): times stay inside it."""
    channels = sorted((datasets_dir / "bocru-twitch-chats" / "data").iterdir())
    assert len(channels) == 4
    for channel in channels:
        path = sorted(channel.glob("*/verbose_chat.json.gz"))[0]
        vod = json.loads((path.parent / "vod.json").read_text())
        messages = list(iter_messages(path))
        assert messages and {m.channel for m in messages} == {channel.name}
        start = messages[0].timestamp_ms
        span_ms = (messages[-1].timestamp_ms - start)
        assert 0.5 * vod["duration"] * 1000 <= span_ms <= (vod["duration"] + 600) * 1000


tag_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
chat_text = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n"), min_size=1, max_size=80)


@given(tag_text)
def test_tag_escaping_round_trips(value):
    assert unescape_tag(escape_tag(value)) == value


@given(chat_text, tag_text, st.from_regex(r"[a-z0-9_]{1,25}", fullmatch=True),
       st.integers(min_value=0, max_value=2**45))
def test_built_privmsg_parses_back(text, display_name, login, ts):
    line = (f"@display-name={escape_tag(display_name)};emotes={emote_ranges(text)};id=x;room-id=1;"
            f"tmi-sent-ts={ts};user-id=2 :{login}!{login}@{login}.tmi.twitch.tv PRIVMSG #chan :{text}")
    record = parse_irc_line(line)
    assert (record.channel, record.user, record.text, record.timestamp_ms) == ("chan", login, text, ts)
    assert record.tags["display-name"] == display_name
    for _, start, end in record.emotes:
        assert record.text[start:end + 1] in TWITCH_EMOTES
