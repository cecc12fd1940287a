from django.db import migrations


class Migration(migrations.Migration):
    """A run now counts only its steps without dependents (see WorkflowRun.remaining_sinks)."""

    dependencies = [
        ("automation", "0002_step_touched_at"),
    ]

    operations = [
        migrations.RenameField(model_name="workflowrun", old_name="remaining_steps", new_name="remaining_sinks"),
    ]
