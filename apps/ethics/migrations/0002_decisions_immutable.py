"""Make board decisions immutable in the database itself: once recorded, no UPDATE or DELETE can change them."""

from django.db import migrations

from apps.core.db import refuse_row_changes

forward, backward = refuse_row_changes("ethics_decision", "board decisions are immutable")


class Migration(migrations.Migration):
    dependencies = [("ethics", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
