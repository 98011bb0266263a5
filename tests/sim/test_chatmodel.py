"""The synthetic chat: reproducible, clustered (not Poisson), bursts and realistic lines."""

from __future__ import annotations

import random
import statistics

import pytest

from streamscout.common.recordings import parse_irc_line
from streamscout.sim.chatmodel import ChannelChat, emote_ranges, escape_tag, poisson
from streamscout.sim.scenario import Channel, ChatModel

pytestmark = pytest.mark.unit


def counts(model: ChatModel, seconds: float = 1800, dt: float = 0.05, seed: int = 1, multiplier=lambda t: 1.0):
    chat = ChannelChat(Channel("c", "1", "C", chat=model), seed)
    return [chat.counts(i * dt, dt, multiplier(i * dt)) for i in range(int(seconds / dt))]


def per_bucket(series: list[int], size: int = 100) -> list[int]:
    return [sum(series[i:i + size]) for i in range(0, len(series) - size + 1, size)]


def test_same_seed_same_counts_and_lines():
    model = ChatModel(rate=5)
    assert counts(model, 60, seed=3) == counts(model, 60, seed=3)
    assert counts(model, 60, seed=3) != counts(model, 60, seed=4)
    a = ChannelChat(Channel("c", "1", "C", chat=model), 9).lines(20, 1_000_000, 50, "1")
    b = ChannelChat(Channel("c", "1", "C", chat=model), 9).lines(20, 1_000_000, 50, "1")
    assert a == b


def test_mean_rate_matches_the_model():
    series = counts(ChatModel(rate=4, burstiness=0.4), seconds=3600)
    assert statistics.mean(series) / 0.05 == pytest.approx(4, rel=0.2)


def test_bursty_chat_is_overdispersed_and_plain_poisson_is_not():
    bursty = per_bucket(counts(ChatModel(rate=3, burstiness=0.6, excitation=0.4)))
    plain = per_bucket(counts(ChatModel(rate=3, burstiness=0.0, excitation=0.0)))
    dispersion = lambda xs: statistics.variance(xs) / statistics.mean(xs)  # noqa: E731
    assert dispersion(plain) == pytest.approx(1.0, abs=0.3)
    assert dispersion(bursty) > 2.0


def test_a_burst_multiplies_the_rate_while_it_lasts():
    series = counts(ChatModel(rate=2, burstiness=0.3), seconds=600,
                    multiplier=lambda t: 10.0 if 300 <= t < 330 else 1.0)
    before = sum(series[int(240 / 0.05):int(270 / 0.05)])
    during = sum(series[int(300 / 0.05):int(330 / 0.05)])
    assert during > 5 * before


def test_lines_are_privmsgs_with_the_twitch_tag_set():
    chat = ChannelChat(Channel("chan", "4242", "Chan", chat=ChatModel(rate=5, commands=0.5)), 2)
    lines = chat.lines(400, 1_700_000_000_000, 50, "4242")
    records = [parse_irc_line(line) for line in lines]
    privmsgs = [r for r in records if r.command == "PRIVMSG"]
    assert len(privmsgs) == 400
    needed = {"badge-info", "badges", "color", "display-name", "emotes", "first-msg", "flags", "id", "mod",
              "returning-chatter", "room-id", "subscriber", "tmi-sent-ts", "turbo", "user-id", "user-type"}
    for record in privmsgs:
        assert needed <= set(record.tags)
        assert record.channel == "chan" and record.room_id == "4242"
        for emote_id, start, end in record.emotes:
            assert record.text[start:end + 1] in ("Kappa", "PogChamp", "LUL", "Kreygasm", "BibleThump",
                                                   "ResidentSleeper", "4Head", "SeemsGood", "NotLikeThis")
    timestamps = [r.timestamp_ms for r in privmsgs]
    assert timestamps == sorted(timestamps) and 1_700_000_000_000 - 50 <= timestamps[0]
    assert 0.35 < sum(r.text.startswith("!") for r in privmsgs) / 400 < 0.65
    assert len({r.message_id for r in privmsgs}) == 400
    assert any("reply-parent-msg-id" in r.tags for r in privmsgs)
    for record in privmsgs:
        only_emotes = all(any(s <= i <= e for _, s, e in record.emotes) for i, ch in enumerate(record.text) if ch != " ")
        assert (record.tags.get("emote-only") == "1") == (bool(record.emotes) and only_emotes)
    assert any(r.tags.get("emote-only") == "1" for r in privmsgs)


def test_raid_and_gift_sub_notices():
    chat = ChannelChat(Channel("chan", "4242", "Chan"), 2)
    raid = parse_irc_line(chat.raid(1, "4242", "friend", 700)[0])
    assert (raid.command, raid.tags["msg-id"], raid.tags["msg-param-viewerCount"]) == ("USERNOTICE", "raid", "700")
    gifts = [parse_irc_line(line) for line in chat.gift_subs(1, "4242", 5)]
    assert [g.tags["msg-id"] for g in gifts] == ["submysterygift"] + ["subgift"] * 5
    assert gifts[0].tags["system-msg"].endswith("Chan's community!")


def test_emote_ranges_and_escaping():
    assert emote_ranges("Kappa hi Kappa LUL KEKW") == "25:0-4,9-13/425618:15-17"
    assert emote_ranges("no emotes here") == ""
    assert escape_tag("a b;c\\") == "a\\sb\\:c\\\\"


def test_poisson_mean_small_and_large():
    rng = random.Random(1)
    assert statistics.mean(poisson(rng, 0.5) for _ in range(20000)) == pytest.approx(0.5, rel=0.05)
    assert statistics.mean(poisson(rng, 200) for _ in range(5000)) == pytest.approx(200, rel=0.02)
    assert poisson(rng, 0) == 0
