"""Benchmarks run by ``make bench`` (``python -m bench.run``).

Every figure is a ratio against a baseline timed in the same run, so results from
different machines can be compared. Speed and memory targets live here and never in
timed tests.
"""
