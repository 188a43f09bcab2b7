"""Published chain heads: insert-only rows recording each head that left the database (head API, signed audit extract),
which verification checks the chain against, so a chain emptied or rewritten after publication fails."""

import django.db.models.deletion
from django.db import migrations, models

from apps.core.db import refuse_row_changes

forward, backward = refuse_row_changes("audit_publishedhead", "published audit heads are insert-only")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("audit", "0004_chain_heads_per_organisation"),
    ]

    operations = [
        migrations.CreateModel(
            name="PublishedHead",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("chain", models.CharField(help_text="The organisation's id, or 'platform'.", max_length=40)),
                ("sequence", models.PositiveBigIntegerField()),
                ("hash", models.CharField(max_length=64)),
                ("published_at", models.DateTimeField()),
                (
                    "source",
                    models.CharField(help_text="Where it went: 'api' (the head endpoint) or 'report'.", max_length=40),
                ),
                (
                    "organisation",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="accounts.organisation",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("chain", "sequence"), name="audit_published_head_once")
                ],
            },
        ),
        migrations.RunPython(forward, backward),
    ]
