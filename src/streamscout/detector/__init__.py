"""The clip detector: chat spike statistics, the clip lifecycle, and the PyFlink job around them.

Pure parts (``stats``, ``lifecycle``) import nothing from Flink and are reused by the backtest;
``clips`` holds the Twitch and Postgres I/O; ``job`` is the Flink job; ``submit`` talks to the
standalone cluster.
"""
