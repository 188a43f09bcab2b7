"""``migrate`` as the owner role (``DATABASE_MIGRATE_URL``) when one is configured; the portal's role is then granted
only what it needs (apps/audit/dbroles.py)."""

from __future__ import annotations

from django.core.management.commands.migrate import Command as MigrateCommand

from apps.audit.dbroles import as_owner


class Command(MigrateCommand):
    help = MigrateCommand.help + " Runs as the owner role (DATABASE_MIGRATE_URL) when one is set."

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        with as_owner(options["database"]):
            return super().handle(*args, **options)
