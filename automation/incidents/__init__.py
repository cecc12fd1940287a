"""Incidents: the service dependency graph, root-cause ranking (graph, timing, changes) and the generated
cascading failures that measure it. Pure parts only so far: no models, no I/O."""
