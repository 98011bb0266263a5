"""The SQL text the job builds (no cluster: the planner validates it in-process)."""

import pytest

from streamscout.common.config import load_settings
from streamscout.detector.job import _interval, counts_sql, source_ddl

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "seconds, literal",
    [(5, "INTERVAL '0 00:00:05.000' DAY TO SECOND(3)"), (0.5, "INTERVAL '0 00:00:00.500' DAY TO SECOND(3)"),
     (120, "INTERVAL '0 00:02:00.000' DAY TO SECOND(3)"), (90061.5, "INTERVAL '1 01:01:01.500' DAY TO SECOND(3)")],
)
def test_interval_literal(seconds, literal):
    assert _interval(seconds) == literal


def test_planner_accepts_the_source_and_the_window_query():
    from pyflink.table import EnvironmentSettings, TableEnvironment

    from streamscout.stack import flink_kafka_connector_jar

    settings = load_settings({"STREAMSCOUT_DETECTOR_OUT_OF_ORDERNESS_SECONDS": "120"})
    try:
        jar = flink_kafka_connector_jar(settings)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t_env.get_config().set("pipeline.jars", jar.as_uri())
    t_env.execute_sql(source_ddl(settings, "earliest", bounded=True))
    columns = list(t_env.sql_query(counts_sql(settings)).get_resolved_schema().get_column_names())
    assert columns == ["broadcaster_id", "first_ts", "raw_rows", "chat", "commands", "channel_events", "floods", "malformed"]
    assert "`event` IS NULL" in counts_sql(settings)  # USERNOTICE records are not chat
    assert "COUNT(DISTINCT message_id)" in counts_sql(settings)  # at-least-once duplicates count once
    assert "NOT LIKE '!%'" in counts_sql(settings)


def test_detector_state_keeps_pyflinks_state_cache():
    """PyFlink drops its Python-side state cache for some TTL settings, and every state access
    then waits on the JVM: the detector's state must keep the read-write cache (job.state_descriptor)."""
    from types import SimpleNamespace

    from pyflink.fn_execution.state_impl import SynchronousKvRuntimeState, SynchronousValueRuntimeState

    from streamscout.detector.job import STATE_TTL_HOURS, state_descriptor

    ttl = state_descriptor()._ttl_config  # PyFlink has no public getter
    assert ttl.get_ttl().to_milliseconds() == STATE_TTL_HOURS * 3600 * 1000
    cache = SimpleNamespace(_max_entries=1000)
    backend = SimpleNamespace(_state_handler=SimpleNamespace(_state_cache=SimpleNamespace(_cache=cache)))
    state = SynchronousValueRuntimeState("broadcaster", None, backend)
    state.enable_time_to_live(ttl)
    assert state._cache_type == SynchronousKvRuntimeState.CacheType.ENABLE_READ_WRITE_CACHE
    assert cache._max_entries == 1000
