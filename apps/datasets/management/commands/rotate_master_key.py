"""Re-wrap every data key under the newest master key (put the new key first in ATTEST_MASTER_KEYS)."""

from django.core.management.base import BaseCommand

from apps.datasets.services import master_key_rotate


class Command(BaseCommand):
    help = "Re-wrap all stored data keys with the first configured master key; then the old key can be removed."

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        count = master_key_rotate()
        self.stdout.write(f"Re-wrapped {count} data keys under the newest master key.")
