"""Reliability drills: faults (broker and database restarts, killed workers, poison messages, duplicate
Beats and deliveries) run against real processes, measured at a real HTTP receiver and in PostgreSQL.

`python -m drills [--quick]` (or `make drills`) runs them and writes RELIABILITY.md.
"""
