"""Incidents: alerts correlated into incidents over the service dependency graph, their lifecycle and
timeline; on-call schedules and escalation policies that page people until one acknowledges; root-cause
ranking (graph, timing, changes) and the generated cascading failures that measure it. Models in
automation/models/incidents.py; state changed only through automation.incidents.services."""
