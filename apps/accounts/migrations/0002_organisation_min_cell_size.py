import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="organisation",
            name="min_cell_size",
            field=models.PositiveIntegerField(
                default=10,
                help_text="Profiles show a quasi-identifier's value or bin only when at least this many rows share it.",
                validators=[
                    django.core.validators.MinValueValidator(2),
                    django.core.validators.MaxValueValidator(1000),
                ],
                verbose_name="minimum cell size",
            ),
        ),
    ]
