from django.db import migrations


def count_remaining_sinks(apps, schema_editor):
    """Runs in flight counted every step; they now count the steps without dependents not yet succeeded."""
    WorkflowRun = apps.get_model("automation", "WorkflowRun")
    StepRun = apps.get_model("automation", "StepRun")
    for run in WorkflowRun.objects.filter(status__in=("pending", "running")).select_related("version"):
        actions = run.version.definition["actions"]
        sinks = {a["name"] for a in actions} - {d for a in actions for d in a["depends_on"]}
        done = StepRun.objects.filter(run_id=run.id, name__in=sinks, status="succeeded").count()
        WorkflowRun.objects.filter(id=run.id).update(remaining_sinks=len(sinks) - done)


class Migration(migrations.Migration):
    """A run now counts only its steps without dependents (see WorkflowRun.remaining_sinks)."""

    dependencies = [
        ("automation", "0002_step_touched_at"),
    ]

    operations = [
        migrations.RenameField(model_name="workflowrun", old_name="remaining_steps", new_name="remaining_sinks"),
        migrations.RunPython(count_remaining_sinks, migrations.RunPython.noop),
    ]
