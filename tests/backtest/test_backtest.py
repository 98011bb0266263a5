"""`streamscout backtest` on small inputs whose detections are known in advance."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings as hsettings, strategies as st

from streamscout.backtest import engine
from streamscout.backtest.inject import InjectSpec, InjectSpecError, inject
from streamscout.backtest.series import Broadcast
from streamscout.backtest.sources import InputError, load
from streamscout.cli import cli
from streamscout.detector.stats import DetectorParams, SpikeDetector, bucket_start_ms, is_command, variant_names

pytestmark = pytest.mark.unit

B = 5000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % B  # an epoch-aligned start


def privmsg(ts: int, text: str, user: str = "viewer", channel: str = "tinychan") -> str:
    return (f"@badge-info=;badges=;color=;display-name={user};emotes=;id=m{ts};mod=0;room-id=1;"
            f"tmi-sent-ts={ts};user-id=2 :{user}!{user}@{user}.tmi.twitch.tv PRIVMSG #{channel} :{text}")


def raid(ts: int, channel: str = "tinychan") -> str:
    return (f"@display-name=Raider;id=r{ts};login=raider;msg-id=raid;msg-param-viewerCount=300;room-id=1;"
            f"tmi-sent-ts={ts};user-id=3 :tmi.twitch.tv USERNOTICE #{channel}")


def transcript(tmp_path: Path) -> Path:
    """80 buckets of 2 messages; bucket 40 adds 30 commands, bucket 70 adds 10 messages."""
    lines = []
    for bucket in range(80):
        start = T0 + bucket * B
        lines += [privmsg(start + 1000, "hello"), privmsg(start + 3000, "LUL")]
        if bucket == 40:
            lines += [privmsg(start + 100 + i, "!uptime") for i in range(30)]
        if bucket == 70:
            lines += [privmsg(start + 200 + i, "POG") for i in range(10)]
    lines.append(raid(T0 + 75 * B + 10))
    path = tmp_path / "tiny.irc.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, ["backtest", *args], env={"STREAMSCOUT_TEST_DATASETS": None})


def test_known_detection_in_a_tiny_transcript(tmp_path):
    result = invoke(str(transcript(tmp_path)), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    [broadcast] = report["broadcasts"]
    assert broadcast["messages"] == 80 * 2 + 30 + 10
    assert broadcast["commands"] == 30
    assert broadcast["flood_events"] == 1
    assert broadcast["detections"] == [{
        "time": "2023-11-14T22:19:10.000Z", "bucket_start_ms": T0 + 70 * B, "count": 12,
        "mean": 2.0, "stddev": 0.0, "score": 30.0, "threshold": 3.0,
    }]
    assert broadcast["detections_per_hour"] == pytest.approx(1 / (80 * 5 / 3600), abs=1e-3)
    assert broadcast["ground_truth"] is None


def test_cli_json_shape(tmp_path):
    report = json.loads(invoke(str(transcript(tmp_path)), "--json", "--detector", "floor",
                               "--inject", "5x:5-10@400").stdout)
    assert set(report) == {"detector", "params", "inject", "seed", "broadcasts", "summary"}
    assert report["detector"] == "floor" and report["inject"] == "5x:5-10@400" and report["seed"] == 1
    assert report["params"]["variant"] == "floor"
    [broadcast] = report["broadcasts"]
    assert set(broadcast) == {"broadcast", "file", "start", "end", "hours", "messages", "commands",
                              "flood_events", "buckets", "detections", "detections_per_hour", "ground_truth"}
    assert set(broadcast["ground_truth"]) == {"bursts", "detected", "recall", "precision", "median_delay_s",
                                              "flood_detections", "by_multiplier", "truth"}
    assert set(report["summary"]) == {"broadcasts", "hours", "messages", "detections", "detections_per_hour",
                                      "ground_truth"}


def test_table_and_plot(tmp_path):
    png = tmp_path / "out.png"
    result = invoke(str(transcript(tmp_path)), "--plot", str(png))
    assert result.exit_code == 0, result.output
    assert "tiny tinychan" in result.stdout
    assert "2023-11-14T22:19:10.000Z" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _truncated_gzip(tmp_path: Path) -> Path:
    data = gzip.compress(json.dumps([{"createdAt": "2024-01-01T00:00:00Z", "message": {"fragments": [{"text": "hi"}]},
                                      "commenter": {"login": "a"}}] * 500).encode())
    path = tmp_path / "chan" / "vod" / "verbose_chat.json.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("make, reason", [
    (_truncated_gzip, "truncated"),
    (lambda p: (p / "empty.irc.txt").touch() or p / "empty.irc.txt", "empty file"),
    (lambda p: (p / "notes.txt").write_text("just some notes\nnot chat\n") and p / "notes.txt", "no chat messages"),
    (lambda p: (p / "bad.json").write_text('{"not": "a list"}') and p / "bad.json", "JSON array"),
    (lambda p: p / "missing.log", "no such file"),
    (lambda p: (p / "counts.csv").write_text("2024-01-01 00:00:00,many\n") and p / "counts.csv", "counts.csv:1"),
])
def test_bad_input_names_the_file(tmp_path, make, reason):
    path = make(tmp_path)
    result = invoke(str(path))
    assert result.exit_code == 1
    assert f"error: {path}" in result.stderr
    assert reason in result.stderr


def test_wrong_explicit_format_names_the_file(tmp_path):
    path = transcript(tmp_path)
    result = invoke(str(path), "--format", "log")
    assert result.exit_code == 1
    assert str(path) in result.stderr and "reading it as log" in result.stderr


def test_one_bad_file_fails_the_run_but_every_error_is_shown(tmp_path):
    good = transcript(tmp_path)
    result = invoke(str(good), str(tmp_path / "a.txt"), str(tmp_path / "b.txt"))
    assert result.exit_code == 1
    assert "a.txt: no such file" in result.stderr and "b.txt: no such file" in result.stderr


def test_bad_inject_spec_is_a_usage_error(tmp_path):
    result = invoke(str(transcript(tmp_path)), "--inject", "lots")
    assert result.exit_code == 2
    assert "--inject" in result.output


# --- the detector as the Flink job drives it -------------------------------------------------


@hsettings(max_examples=60, deadline=None)
@example(counts=[0] * 69 + [1], variant="spec", raid_at=10)  # a silent start: gaps fill the window
@given(counts=st.lists(st.integers(0, 4) | st.integers(0, 60), min_size=70, max_size=200),
       variant=st.sampled_from(variant_names()), raid_at=st.integers(0, 199))
def test_pushing_only_non_empty_buckets_gives_the_same_detections(counts, variant, raid_at):
    """The Flink job never sees empty buckets; gap filling must make that irrelevant.

    Both start at the same first bucket: a broadcaster's history starts with its first message.
    """
    params = DetectorParams(variant=variant)
    events = {raid_at: 1}
    dense = SpikeDetector(1, params)
    sparse = SpikeDetector(1, params)
    expected, found = [], []
    for i, count in enumerate(counts):
        if d := dense.push(i * B, count, events.get(i, 0)):
            expected.append(d)
        if i == 0 or count or events.get(i):
            if d := sparse.push(i * B, count, events.get(i, 0)):
                found.append(d)
    assert found == expected


def steady(hours: float, rate_per_bucket: float, seed: int = 3) -> Broadcast:
    rng = random.Random(seed)
    counts = {}
    for i in range(int(hours * 720)):
        n = sum(1 for _ in range(int(rate_per_bucket * 4)) if rng.random() < 0.25)
        if n:
            counts[T0 + i * B] = n
    return Broadcast("steady", "memory", B, counts, messages=sum(counts.values()))


def test_injected_five_x_bursts_are_all_found_on_steady_chat():
    spec = InjectSpec.parse("5x:5-20@600")
    broadcast = inject(steady(2.0, 10), spec, seed=7)
    assert len(broadcast.truth) == 12  # slots at 6 min + 10 min steps
    assert all(5000 <= b.end_ms - b.start_ms <= 20000 for b in broadcast.truth)
    score = engine.score(engine.run(broadcast, DetectorParams()))
    assert score.recall == 1.0
    assert 0 < score.median_delay_s <= 10


def test_injection_is_reproducible_per_seed():
    spec = InjectSpec.parse("2x,3x,5x")
    base = steady(1.5, 6)
    first = inject(base, spec, seed=1)
    assert inject(base, spec, seed=1) == first
    assert inject(base, spec, seed=2).truth != first.truth
    assert len(first.truth) == 9  # 1.5 h: slots at 6, 16, ..., 86 minutes
    assert [b.multiplier for b in first.truth] == [2.0, 3.0, 5.0] * 3
    # extra messages = (m - 1) * the 5-minute rate before the burst * its duration
    added = sum(first.counts.values()) - sum(base.counts.values())
    assert added == sum(b.extra_messages for b in first.truth) > 0


@pytest.mark.parametrize("text, expected", [
    ("2x,3x,5x", InjectSpec((2.0, 3.0, 5.0))),
    ("3:10-15@900", InjectSpec((3.0,), 10.0, 15.0, 900.0)),
    ("5x:5-20s@600s", InjectSpec((5.0,), 5.0, 20.0, 600.0)),
])
def test_inject_spec_parses(text, expected):
    assert InjectSpec.parse(text) == expected


@pytest.mark.parametrize("text", ["", "x", "1x", "2x:20-5", "2x@100", "2x:a-b"])
def test_inject_spec_rejects(text):
    with pytest.raises(InjectSpecError):
        InjectSpec.parse(text)


# --- other inputs ---------------------------------------------------------------------------


def test_per_second_counts_csv(tmp_path):
    rows = [",0"] + [f"2024-01-01 00:{m:02d}:{s:02d},1" for m in range(10) for s in range(60)]
    rows[400] = rows[400].rsplit(",", 1)[0] + ",40"  # second 399 -> bucket 79 (minute 6:35)
    path = tmp_path / "chan_mps.csv"
    path.write_text("\n".join(rows) + "\n")
    [broadcast] = load(path, "auto", B)
    result = engine.run(broadcast, DetectorParams())
    assert [d.count for d in result.detections] == [44]
    assert broadcast.messages == 599 + 40


SCENARIO = """
name: tiny
seed: 5
channels:
  - {login: solo, id: "1234", viewers: 1000, chat: {rate: 4, burstiness: 0.2, excitation: 0.1}}
events:
  - {type: burst, channel: solo, at: 420, duration: 15, multiplier: 8}
  - {type: raid, channel: solo, at: 700, count: 900}
  - {type: burst, channel: solo, at: 1000, duration: 20, multiplier: 8}
"""


def test_scenario_ground_truth_and_raid_discounting(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SCENARIO)
    [broadcast] = load(path, "auto", B)
    assert [(b.start_ms - broadcast.start_ms) // 1000 for b in broadcast.truth] == [420, 1000]
    assert [f.cause for f in broadcast.floods] == ["raid"]
    assert sum(broadcast.events.values()) == 1
    spec = engine.score(engine.run(broadcast, DetectorParams()))
    discount = engine.score(engine.run(broadcast, DetectorParams(variant="spec+discount")))
    assert spec.recall == discount.recall == 1.0
    assert spec.flood_detections >= 1  # the raid's x3 surge looks like a moment to the spec rule
    assert discount.flood_detections == 0


def test_bad_scenario_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("channels: [{viewers: 3}]\n")
    with pytest.raises(InputError, match=r"broken.yaml: not a valid scenario: channels\[0\].login: required"):
        load(path, "auto", B)


# --- real chat (skipped without ../shared/datasets) -----------------------------------------


def test_new_years_countdown_is_detected(datasets_dir):
    path = datasets_dir / "bocru-twitch-chats/data/neppienep/2025-12-31_18-07-12_2657721531/verbose_chat.json.gz"
    [broadcast] = load(path, "auto", B)
    for variant in ("spec", "floor"):
        times = [d.bucket_start_ms for d in engine.run(broadcast, DetectorParams(variant=variant)).detections]
        midnight = 1_767_225_600_000
        assert any(midnight <= t <= midnight + 30_000 for t in times), variant


def test_every_shared_recording_format_counts_what_the_readme_says(datasets_dir):
    """The message totals of ../shared/datasets/README.md, through the backtest's loaders."""
    def messages(pattern):
        return sum(b.messages for path in sorted(datasets_dir.glob(pattern)) for b in load(path, "auto", B))

    assert messages("go-twitch-irc/channel_xqcow_2019-09-15.irc.txt") == 4933
    assert messages("dsteffan-admiralbulldog/data/logs/chat_admiralbulldog_4_30.log") == 28844
    assert messages("dsteffan-admiralbulldog/data/formatted/xqcow_5_03_mps.csv") == 104836
    assert messages("bocru-twitch-chats/data/*/*/verbose_chat.json.gz") == 108518


def test_backtest_counts_what_the_monitor_publishes(datasets_dir):
    """The backtest reads recordings with its own parser; the Flink job sees the monitor's
    records. On the xqcow transcript both give the same buckets, so the job-vs-backtest
    agreement test (tests/detector) transfers to `streamscout backtest`."""
    from collections import Counter

    from streamscout.monitor.irc import chat_record, parse_line

    path = datasets_dir / "go-twitch-irc/channel_xqcow_2019-09-15.irc.txt"
    params = DetectorParams(bucket_seconds=2.0, baseline_buckets=30, cooldown_seconds=10.0)
    published = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        parsed = parse_line(line)
        if parsed and (parsed.get("command") or {}).get("command") == "PRIVMSG":
            record = chat_record(parsed, 0)
            if not is_command(record["text"]):
                published[bucket_start_ms(record["timestamp"], params.bucket_ms)] += 1
    [broadcast] = load(path, "irc", params.bucket_ms)
    assert broadcast.counts == dict(sorted(published.items()))
    assert len(engine.run(broadcast, params).detections) >= 3
