"""A trivial PyFlink job for tests/stack: Kafka topic -> Python UDF -> Kafka topic, bounded.

Run on the stack's standalone cluster with `flink run --python ... --jarfile <connector>`;
it proves the cluster, its Python workers and the Kafka connector work together.
"""

import sys

from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
from pyflink.table.udf import udf


@udf(result_type=DataTypes.STRING())
def shout(line: str) -> str:
    return line.upper() + "!"


def main(bootstrap: str, source_topic: str, sink_topic: str) -> None:
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t_env.create_temporary_function("shout", shout)
    common = f"'connector' = 'kafka', 'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'raw'"
    t_env.execute_sql(
        f"""CREATE TABLE src (line STRING) WITH ({common}, 'topic' = '{source_topic}',
            'properties.group.id' = 'stack-test', 'scan.startup.mode' = 'earliest-offset',
            'scan.bounded.mode' = 'latest-offset')"""
    )
    t_env.execute_sql(f"CREATE TABLE dst (line STRING) WITH ({common}, 'topic' = '{sink_topic}')")
    t_env.execute_sql("INSERT INTO dst SELECT shout(line) FROM src").wait()


if __name__ == "__main__":
    main(*sys.argv[1:4])
