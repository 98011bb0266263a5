"""The monitor against the simulator and the stack's real Kafka, Redis and Postgres."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter

import psycopg
import pytest
from conftest import free_port
from monitor_harness import RunningMonitor, consume, create_topics, monitor_settings, wait_for

from streamscout.common.schemas import validate_chat_message, validate_lifecycle_event

pytestmark = pytest.mark.integration


def step(before: float, at: float, after: float) -> list[list[float]]:
    """Viewers that jump from ``before`` to ``after`` at scenario second ``at``."""
    return [[0, before], [at - 0.05, before], [at, after]]


def channel(login: str, cid: str, viewers, rate: float = 20.0, **extra) -> dict:
    return {"login": login, "id": cid, "display_name": login, "viewers": viewers, "chat": {"rate": rate}, **extra}


# join rank 2, leave rank 3. Phases of 8 s:
#   0-8   f 1500, a 1000, b 900, c 800, d 700, e 50 -> join f, a
#   8-16  a drops to 600 (rank 5 > 3) -> leave a (rank); b is rank 2 -> join b
#   16-24 e rises to 2000 -> join e; b is rank 3: stays (hysteresis)
#   24-   f goes offline -> left as offline once its liveness key expires; c (rank 3) not joined
RANKS = {
    "name": "monitor-ranks",
    "seed": 7,
    "channels": [
        channel("f_chan", "1006", 1500, live=[[0, 24]]),
        channel("a_chan", "1001", step(1000, 8, 600)),
        channel("b_chan", "1002", 900),
        channel("c_chan", "1003", 800),
        channel("d_chan", "1004", 700),
        channel("e_chan", "1005", step(50, 16, 2000)),
    ],
}


def test_joins_and_leaves_follow_the_rank_changes(sim, settings, postgres_dsn):
    s = sim(RANKS)
    cfg = monitor_settings(settings, s, postgres_dsn, free_port(), monitor_join_rank=2, monitor_leave_rank=3)
    create_topics(cfg)
    with RunningMonitor(cfg, s) as run:
        wait_for(lambda: run.joined_logins() == {"f_chan", "a_chan"}, 15, "f and a joined")
        wait_for(lambda: run.joined_logins() == {"f_chan", "b_chan"}, 15, "a left, b joined")
        wait_for(lambda: run.joined_logins() == {"f_chan", "b_chan", "e_chan"}, 15, "e joined, b kept")
        wait_for(lambda: run.joined_logins() == {"b_chan", "e_chan"}, 20, "f offline")
        health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{cfg.monitor_port}/health", timeout=5))
        assert health["status"] == "ok", health
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{cfg.monitor_port}/metrics", timeout=5).read().decode()
        assert "streamscout_monitor_streams_monitored 2.0" in metrics
    assert run.stopped_in is not None and run.stopped_in < 10

    events = [validate_lifecycle_event(v) for _, v in consume(cfg, cfg.topic_lifecycle)]
    by_channel: dict[str, list[tuple[str, str | None]]] = {}
    for e in sorted(events, key=lambda e: e["timestamp"]):
        by_channel.setdefault(e["broadcaster_login"], []).append((e["event_type"], e.get("reason")))
    assert by_channel == {
        "f_chan": [("online", None), ("offline", "offline")],
        "a_chan": [("online", None), ("offline", "rank")],
        "b_chan": [("online", None), ("offline", "shutdown")],
        "e_chan": [("online", None), ("offline", "shutdown")],
    }
    with psycopg.connect(postgres_dsn) as conn:
        rows = conn.execute(
            "SELECT streamer_login, first_seen_at < last_seen_at FROM streamers ORDER BY streamer_login"
        ).fetchall()
    assert [r[0] for r in rows] == ["a_chan", "b_chan", "c_chan", "d_chan", "e_chan", "f_chan"]
    assert all(later for _, later in rows)  # first_seen_at kept, last_seen_at moved on

    chat = [(k, validate_chat_message(v)) for k, v in consume(cfg, cfg.topic_chat)]
    ids = {1006, 1001, 1002, 1005}
    assert chat and {v["broadcaster_id"] for _, v in chat} <= ids
    assert all(k == str(v["broadcaster_id"]).encode() for k, v in chat)


def test_clipping_refused_channel_is_skipped_and_the_next_joined(sim, settings, postgres_dsn):
    s = sim(RANKS)
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute(
            "INSERT INTO streamers (broadcaster_id, streamer_login, allows_clipping, clipping_refused_at) "
            "VALUES (1001, 'a_chan', false, (NOW() AT TIME ZONE 'UTC') - interval '1 day'), "
            "(1006, 'f_chan', false, (NOW() AT TIME ZONE 'UTC') - interval '8 days') "
            "ON CONFLICT (broadcaster_id) DO UPDATE "
            "SET allows_clipping = false, clipping_refused_at = EXCLUDED.clipping_refused_at"
        )
    cfg = monitor_settings(settings, s, postgres_dsn, free_port(), monitor_join_rank=2, monitor_leave_rank=3)
    create_topics(cfg)
    try:
        with RunningMonitor(cfg, s) as run:
            # a refused a day ago: skipped, b takes its slot; f refused 8 days ago: re-checked, joined
            wait_for(lambda: run.joined_logins() == {"f_chan", "b_chan"}, 15, "f and b joined")
            run.call(run.monitor.poll_once)
            assert run.joined_logins() == {"f_chan", "b_chan"}
    finally:
        with psycopg.connect(postgres_dsn) as conn:
            conn.execute("UPDATE streamers SET allows_clipping = true, clipping_refused_at = NULL")


REPLAY = "go-twitch-irc/channel_xqcow_2019-09-15.irc.txt"


def test_every_replayed_message_arrives_once_with_the_spec_schema(sim, settings, postgres_dsn, datasets_dir):
    path = datasets_dir / REPLAY
    if not path.exists():
        pytest.skip(f"{path} not found")
    expected = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if " PRIVMSG #" in line or " USERNOTICE #" in line:
            tags = dict(t.partition("=")[::2] for t in line[1:].split(" ", 1)[0].split(";"))
            expected[tags["id"]] = "USERNOTICE" if " USERNOTICE #" in line else "PRIVMSG"
    # 463 s of chat at 40x: about 12 s
    s = sim({"name": "replay", "channels": [channel("quiet", "1", 10, rate=0)]}, replay=[path], replay_speed=40)
    cfg = monitor_settings(settings, s, postgres_dsn, free_port())
    create_topics(cfg)
    with RunningMonitor(cfg, s) as run:
        wait_for(lambda: run.metric("streamscout_monitor_messages_received_total") >= len(expected), 60,
                 "every replayed line received")
        wait_for(lambda: run.metric("streamscout_monitor_messages_published_total")
                 >= run.metric("streamscout_monitor_messages_received_total"), 30, "everything published")
    records = [validate_chat_message(v) for _, v in consume(cfg, cfg.topic_chat)]
    counts = Counter(r["message_id"] for r in records)
    assert set(counts) == set(expected)
    assert max(counts.values()) == 1
    events = [r for r in records if "event" in r]
    assert len(events) == list(expected.values()).count("USERNOTICE") == 9
    assert {r["broadcaster_id"] for r in records} == {71092938}


def test_dropped_chat_websocket_is_rebuilt(sim, settings, postgres_dsn):
    s = sim(RANKS)
    cfg = monitor_settings(settings, s, postgres_dsn, free_port(), monitor_join_rank=2, monitor_leave_rank=3,
                           monitor_stall_seconds=3.0)
    create_topics(cfg)
    with RunningMonitor(cfg, s) as run:
        wait_for(lambda: run.joined_logins() == {"f_chan", "a_chan"}, 15, "joined")
        for _ in range(2):
            before = run.metric("streamscout_monitor_messages_received_total")
            assert s.drop_chat() >= 1
            # messages flow again on a new connection with both channels joined
            wait_for(lambda: run.metric("streamscout_monitor_messages_received_total") > before + 100, 30,
                     "messages after the drop")
            wait_for(lambda: len(s.chat.listeners.get("a_chan", ())) == 1
                     and len(s.chat.listeners.get("f_chan", ())) == 1, 15, "rejoined")
        assert run.metric("streamscout_monitor_chat_connected") == 1
        rebuilds = run.metric("streamscout_monitor_chat_rebuilds_total")
        gaps = run.metric("streamscout_monitor_chat_gap_seconds_count", cause="rebuild")
        assert gaps == 2 * rebuilds  # two channels resumed per rebuild, each gap reported once


STATIC = {"name": "static", "channels": [channel("f_chan", "1006", 1500), channel("a_chan", "1001", 1000),
                                         channel("b_chan", "1002", 900)]}


def test_chat_missed_during_a_restart_is_measured_and_bounded(sim, settings, postgres_dsn):
    """The next process reports, per channel, the time from the last message before the restart
    to the first after: at least the downtime, at most downtime + start-up + the 5 s save interval."""
    s = sim(STATIC)
    cfg = monitor_settings(settings, s, postgres_dsn, free_port(), monitor_join_rank=2, monitor_leave_rank=3)
    create_topics(cfg)
    with RunningMonitor(cfg, s) as first:
        wait_for(lambda: first.joined_logins() == {"f_chan", "a_chan"}, 15, "joined")
        time.sleep(6)  # one periodic save of the chat positions
    down = 4.0
    time.sleep(down)
    restarted = time.monotonic()
    with RunningMonitor(cfg, s) as second:
        wait_for(lambda: second.metric("streamscout_monitor_chat_gap_seconds_count", cause="restart") == 2, 20,
                 "a gap reported for each channel")
        bound = time.monotonic() - restarted + down + 5.0
        total = second.metric("streamscout_monitor_chat_gap_seconds_sum", cause="restart")
        assert 2 * down <= total <= 2 * bound, (total, bound)
        assert second.metric("streamscout_monitor_chat_gap_seconds_count", cause="rebuild") == 0


def test_redis_and_postgres_down_degrade_but_chat_keeps_flowing(sim, settings, postgres_dsn):
    s = sim(STATIC)
    dead = free_port()
    cfg = monitor_settings(settings, s, f"postgresql://streamscout@127.0.0.1:{dead}/nothing", free_port(),
                           monitor_join_rank=2, monitor_leave_rank=3, redis_url=f"redis://127.0.0.1:{dead}/0")
    create_topics(cfg)
    with RunningMonitor(cfg, s) as run:
        wait_for(lambda: run.joined_logins() == {"f_chan", "a_chan"}, 20, "joined without Redis and Postgres")
        wait_for(lambda: run.metric("streamscout_monitor_messages_published_total") > 100, 20, "chat published")
        wait_for(lambda: run.metric("streamscout_monitor_poll_errors_total") >= 2, 10, "degraded rounds counted")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{cfg.monitor_port}/health", timeout=10)
            raise AssertionError("/health answered 200 with Redis and Postgres down")
        except urllib.error.HTTPError as error:
            assert error.code == 503
            body = json.load(error)
        ok = {name: c["ok"] for name, c in body["components"].items()}
        assert ok == {"chat": True, "kafka": True, "redis": False, "postgres": False}
        # without Redis nobody is declared offline: both channels stay joined
        assert run.joined_logins() == {"f_chan", "a_chan"}


ODD_LINES = r"""@badge-info=;badges=;color=;display-name=A\sB\:C;emotes=;flags=;id=odd-1;mod=0;room-id=777;subscriber=0;tmi-sent-ts=1568505600501;turbo=0;user-id=1;user-type= :ab!ab@ab.tmi.twitch.tv PRIVMSG #oddchan :plain
@badges=subscriber/3;display-name=테스트;emotes=25:0-4,x-2/bad;id=odd-2;mod=0;room-id=777;subscriber=1;tmi-sent-ts=1568505600601;user-id=2;bogus :t!t@t.tmi.twitch.tv PRIVMSG #oddchan :Kappa ÄÖÜ 👌
@badges=;display-name=;emotes=;mod=0;room-id=777;tmi-sent-ts=1568505600701;user-id= :n!n@n.tmi.twitch.tv PRIVMSG #oddchan :no id, no user id, no name
@badges=moderator/1;display-name=Mod;id=odd-4;mod=1;room-id=777;subscriber=0;tmi-sent-ts=1568505600801;user-id=4;a=b=c :m!m@m.tmi.twitch.tv PRIVMSG #oddchan :last
"""


def test_odd_lines_through_the_real_chat_client_all_arrive_and_chat_goes_on(sim, settings, postgres_dsn, tmp_path):
    # `bogus` (a tag without "=") ends stock pyTwitchAPI's receive loop; here it is just a tag
    recording = tmp_path / "odd.irc.txt"
    recording.write_text(ODD_LINES, encoding="utf-8")
    s = sim({"name": "odd", "channels": [channel("steady", "4001", 10, rate=20)]}, replay=[recording], replay_speed=1)
    cfg = monitor_settings(settings, s, postgres_dsn, free_port())
    create_topics(cfg)
    with RunningMonitor(cfg, s) as run:
        wait_for(lambda: run.joined_logins() == {"steady", "oddchan"}, 20, "both joined")
        time.sleep(2)  # the four odd lines play within 0.3 s of the join
        after_odd = run.metric("streamscout_monitor_messages_received_total")
        wait_for(lambda: run.metric("streamscout_monitor_messages_received_total") > after_odd + 20, 20,
                 "chat still read after the odd lines")
        assert run.metric("streamscout_monitor_chat_rebuilds_total") == 0
    odd = {r["message_id"]: r for _, r in consume(cfg, cfg.topic_chat)
           if validate_chat_message(r)["broadcaster_id"] == 777}
    assert len(odd) == 4
    assert odd["odd-1"]["user_name"] == "A B;C"
    assert odd["odd-2"]["user_name"] == "테스트" and odd["odd-2"]["text"] == "Kappa ÄÖÜ 👌"
    assert odd["odd-2"]["metadata"]["emotes"] == {"25": ["0-4"]} and odd["odd-2"]["metadata"]["is_subscriber"]
    assert odd["odd-4"]["metadata"]["is_mod"] is True
    (no_id,) = [r for mid, r in odd.items() if not mid.startswith("odd-")]
    assert no_id["user_id"] == 0 and no_id["user_name"] == "n" and no_id["text"] == "no id, no user id, no name"
