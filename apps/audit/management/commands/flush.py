"""``flush`` (TRUNCATE of every table, used between transactional tests) as the owner role when one is configured: the
portal's role may not truncate the audit log."""

from __future__ import annotations

from django.core.management.commands.flush import Command as FlushCommand

from apps.audit.dbroles import as_owner


class Command(FlushCommand):
    help = FlushCommand.help + " Runs as the owner role (DATABASE_MIGRATE_URL) when one is set."

    def handle(self, **options):  # type: ignore[no-untyped-def]
        with as_owner(options["database"]):
            return super().handle(**options)
