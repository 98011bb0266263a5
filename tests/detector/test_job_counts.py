"""The job's bucket counts, computed by Flink itself with the job's own configuration.

The window query runs over a JSON file that stands in for the Kafka topic (same columns, event
time and watermark as the Kafka table), in a local mini-cluster with every table option of
``job_configuration`` (mini-batches, two-phase aggregation, object reuse). The counts must be
exact: at-least-once duplicates counted once, commands and channel events apart, malformed rows
counted, nothing lost in the local/global split.
"""

from __future__ import annotations

import json

import pytest

from streamscout.common.config import load_settings
from streamscout.detector.job import MALFORMED_KEY, counts_sql, job_configuration, source_ddl

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000  # a multiple of 5 s


def chat(broadcaster, ts, mid, text="hello", **extra):
    return {"broadcaster_id": broadcaster, "timestamp": ts, "message_id": mid, "text": text, "user_id": 1,
            "user_name": "u", "metadata": {"emotes": {}, "badges": {}, "is_subscriber": False, "is_mod": False},
            **extra}


def records():
    out = []
    # broadcaster 1, bucket [T0, T0+5s): 10 chat lines, 3 of them delivered twice; 2 commands;
    # a raid (a flood) and a sub (an event, not a flood); 2 malformed rows
    for i in range(10):
        out.append(chat(1, T0 + i * 100, f"c{i}"))
    out += [chat(1, T0 + 50 + i * 100, f"c{i}") for i in range(3)]
    out += [chat(1, T0 + 2000, "k1", "!socials"), chat(1, T0 + 2100, "k2", "!uptime")]
    out += [chat(1, T0 + 3000, "r1", "", event={"type": "raid", "count": 500}),
            chat(1, T0 + 3100, "s1", "", event={"type": "sub"})]
    out += [chat(1, T0 + 4000, None), {"broadcaster_id": 1, "timestamp": T0 + 4100, "message_id": "x"}]
    # broadcaster 2, bucket [T0+5s, T0+10s): 5 chat lines
    out += [chat(2, T0 + 5000 + i * 10, f"b{i}") for i in range(5)]
    # no broadcaster: counted under the malformed key
    out.append({"timestamp": T0 + 1000, "message_id": "m", "text": "who"})
    # a later line for each, so the watermark passes both buckets before the input ends
    out += [chat(1, T0 + 20_000, "late1"), chat(2, T0 + 20_000, "late2")]
    return out


def test_counts_are_exact_under_the_jobs_configuration(tmp_path):
    from pyflink.table import EnvironmentSettings, TableEnvironment

    settings = load_settings({})
    source = tmp_path / "chat"
    source.mkdir()
    (source / "part-0.json").write_text("".join(json.dumps(r) + "\n" for r in records()) + "{not json\n")
    kafka_ddl = source_ddl(settings, "earliest")
    ddl = kafka_ddl[: kafka_ddl.index(") WITH (")] + (
        f") WITH ('connector' = 'filesystem', 'path' = '{source.as_uri()}', 'format' = 'json',"
        " 'json.ignore-parse-errors' = 'true')"
    )
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    table_config = t_env.get_config()
    job_options = job_configuration(settings, "process").to_dict()
    for key, value in job_options.items():
        if key.startswith("table.") or key in ("pipeline.object-reuse", "parallelism.default"):
            table_config.set(key, value)
    assert job_options["table.exec.mini-batch.enabled"] == "true"  # the configuration under test
    t_env.execute_sql(ddl)
    plan = t_env.explain_sql(counts_sql(settings))
    assert "LocalWindowAggregate" in plan and "GlobalWindowAggregate" in plan, plan  # two phases run
    with t_env.sql_query(counts_sql(settings)).execute().collect() as results:
        rows = {(r[0], r[1] // 5000 * 5000): tuple(r[2:]) for r in results}

    # (raw rows, chat, commands, channel events, floods, malformed)
    assert rows[(1, T0)] == (19, 10, 2, 2, 1, 2)
    assert rows[(2, T0 + 5000)] == (5, 5, 0, 0, 0, 0)
    assert rows[(MALFORMED_KEY, T0)] == (1, 1, 0, 0, 0, 0)
    assert rows[(1, T0 + 20_000)] == (1, 1, 0, 0, 0, 0)
    assert len(rows) == 5
