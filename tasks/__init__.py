"""Celery tasks: one module per action family, plus the workflow entry points and monitoring jobs."""
