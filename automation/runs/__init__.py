"""Runs: their state transitions (services), step execution (executor) and dispatch."""
