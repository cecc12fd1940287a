"""Receivers: what the alerting domain sends an alert to (PagerDuty, an Alertmanager-shaped webhook, email).

Each module holds one receiver's parameters (a pydantic model) and the message it builds from them; the
action tasks of `tasks/notification.py` send it as an engine step, which gives retries and one effect
per run and step.
"""
