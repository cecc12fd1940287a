"""Metric sources: where rules read their series (each module one kind of source)."""
