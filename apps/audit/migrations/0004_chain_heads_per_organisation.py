"""One head row per chain (an organisation's, or the platform's), built from the re-chained events."""

import django.db.models.deletion
from django.db import migrations, models

PLATFORM = "platform"


def build_heads(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    last = {}
    for organisation_id, sequence, digest in AuditEvent.objects.order_by("id").values_list(
        "organisation_id", "sequence", "hash"
    ):
        last[organisation_id] = (sequence, digest)
    AuditChainHead.objects.bulk_create(
        AuditChainHead(
            chain=str(organisation_id) if organisation_id else PLATFORM,
            organisation_id=organisation_id,
            sequence=sequence,
            hash=digest,
        )
        for organisation_id, (sequence, digest) in last.items()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("audit", "0003_rechain_per_organisation"),
    ]

    operations = [
        migrations.DeleteModel(name="AuditChainHead"),
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "chain",
                    models.CharField(help_text="The organisation's id, or 'platform'.", max_length=40, unique=True),
                ),
                ("sequence", models.PositiveBigIntegerField(default=0)),
                ("hash", models.CharField(max_length=64)),
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
        ),
        migrations.RunPython(build_heads, migrations.RunPython.noop),
        migrations.AlterModelOptions(name="auditevent", options={"ordering": ["-id"]}),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("organisation__isnull", False)),
                fields=("organisation", "sequence"),
                name="audit_event_chain_sequence",
            ),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("organisation__isnull", True)),
                fields=("sequence",),
                name="audit_event_platform_sequence",
            ),
        ),
    ]
