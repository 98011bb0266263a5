"""Which chat timestamps the job trusts as event time, checked by Flink itself.

The window query of the job runs over a JSON file that stands in for the Kafka topic (the job's
own columns, computed columns and watermark), in a local mini-cluster with the job's table
options. Timestamps that are missing, negative or far ahead of the wall clock must not become
event time: such a record would either move the watermark into the future (every later chat line
late: the detector deaf) or hand the Python operator a bucket it cannot judge (``first_ts``
NULL, or in the year 3000: that broadcaster's detector deaf). They get event time 0 instead, so
they are dropped as late once the watermark runs (Flink's ``numLateRecordsDropped``).
"""

from __future__ import annotations

import json
import time

import pytest

from streamscout.common.config import load_settings
from streamscout.detector.job import EVENT_MS, FUTURE_TOLERANCE_SECONDS, counts_sql, job_configuration, source_ddl

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000  # a multiple of 5 s, in the past
YEAR_3000_MS = 32_503_680_000_000


def chat(broadcaster, ts, mid, text="hello"):
    return {"broadcaster_id": broadcaster, "timestamp": ts, "message_id": mid, "text": text}


def test_source_ddl_trusts_only_plausible_timestamps():
    ddl = source_ddl(load_settings({}), "earliest")
    assert f"UNIX_TIMESTAMP() * 1000 + {FUTURE_TOLERANCE_SECONDS * 1000}" in ddl
    assert f"ts AS TO_TIMESTAMP_LTZ({EVENT_MS}, 3)" in ddl
    assert f"MIN({EVENT_MS}) AS first_ts" in counts_sql(load_settings({}))


def test_implausible_timestamps_never_become_event_time(tmp_path):
    from pyflink.table import EnvironmentSettings, TableEnvironment

    now = int(time.time() * 1000)
    bad = [
        chat(2, YEAR_3000_MS, "future"),  # the year 3000
        chat(2, now + 3_600_000, "hour-ahead"),
        chat(2, 2**63 - 1, "long-max"),
        chat(3, None, "no-ts"),
        chat(3, -1, "negative"),
        chat(3, -(2**63), "long-min"),
    ]
    records = [chat(1, T0 + i * 100, f"a{i}") for i in range(3)] + bad
    records += [chat(1, T0 + 5_000 + i * 100, f"b{i}") for i in range(4)]
    records += [chat(1, T0 + 20_000, "last")]  # the watermark passes the buckets above
    settings = load_settings({})
    source = tmp_path / "chat"
    source.mkdir()
    (source / "part-0.json").write_text("".join(json.dumps(r) + "\n" for r in records))
    kafka_ddl = source_ddl(settings, "earliest")
    ddl = kafka_ddl[: kafka_ddl.index(") WITH (")] + (
        f") WITH ('connector' = 'filesystem', 'path' = '{source.as_uri()}', 'format' = 'json',"
        " 'json.ignore-parse-errors' = 'true')"
    )
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in job_configuration(settings, "process").to_dict().items():
        if key.startswith("table.") or key in ("pipeline.object-reuse", "parallelism.default"):
            t_env.get_config().set(key, value)
    t_env.execute_sql(ddl)
    with t_env.sql_query(counts_sql(settings)).execute().collect() as results:
        rows = [tuple(r) for r in results]

    by_key = {(r[0], r[1]): r[2:] for r in rows}
    # The real chat is counted, in its own buckets, before and after the bad records.
    assert by_key[(1, T0)][:2] == (3, 3) and by_key[(1, T0 + 5_000)][:2] == (4, 4)
    # Bad timestamps land at event time 0 (if not dropped as late there): no bucket in the
    # future, none NULL, none negative.
    for broadcaster, first_ts, *_ in rows:
        assert first_ts is not None and (first_ts == 0 or T0 <= first_ts <= T0 + 20_000), rows
