"""Backtest: replay recorded or simulated chat through the detector's own statistics.

``streamscout backtest`` turns chat into per-broadcast bucket counts (:mod:`.series`), optionally
adds seeded ground-truth bursts (:mod:`.inject`), pushes the counts through
:class:`streamscout.detector.stats.SpikeDetector` -- the very class the Flink job uses -- and
scores the detections (:mod:`.engine`), then prints a table, JSON or a plot (:mod:`.report`).
"""
