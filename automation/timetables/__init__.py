"""Scheduled workflows: a workflow started by Beat on a cron expression or every N seconds, one run per
slot however many Beats run (the slot is the run's idempotency key). Stored in django-celery-beat's own
tables, beside the engine's monitoring jobs."""
