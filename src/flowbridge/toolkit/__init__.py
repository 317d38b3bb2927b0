"""Pieces every adapter needs and none should write twice (framework-free).

- :mod:`flowbridge.toolkit.procs`: tag the processes an adapter starts, find and
  kill them by tag (a task's command, a whole owned cluster), and a reaper that
  kills them when their owner dies without cleaning up.
"""
