"""Following a run from the terminal: each step's transitions, printed as they happen."""

from __future__ import annotations

import json
import time
import uuid

import click

from automation.choices import RunStatus


def follow(run_id: str, *, timeout: float) -> str:
    """Print each step's transitions until the run ends; returns its final status."""
    from automation.models import StepRun, WorkflowRun
    from automation.secrets import mask

    seen: dict[str, tuple[str, int]] = {}
    deadline = time.monotonic() + timeout
    while True:
        status = WorkflowRun.objects.values_list("status", flat=True).get(id=run_id)
        for step in StepRun.objects.filter(run_id=uuid.UUID(run_id)).order_by("position"):
            key = (step.status, step.attempts)
            if seen.get(step.name) != key:
                seen[step.name] = key
                detail = f" attempt {step.attempts}" if step.attempts > 1 else ""
                if step.status == RunStatus.SUCCEEDED:
                    detail += f"  {json.dumps(mask(step.output), default=str)[:300]}"
                elif step.error:
                    detail += f"  {step.error[:300]}"
                click.echo(f"  {time.strftime('%H:%M:%S')}  {step.name:<28} {step.status:<10}{detail}")
        if status in RunStatus.TERMINAL:
            click.echo(f"run {run_id}: {status}")
            return str(status)
        if time.monotonic() > deadline:
            click.echo(f"run {run_id}: still {status} after {timeout} s")
            return str(status)
        time.sleep(0.2)
