"""Walk the audit chain and name the first broken event (exit status 1 when the chain is broken)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.audit.verify import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the hash-chained audit log; names the first broken event."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--expect-head", help="A chain head hash published earlier; it must still be in the chain.")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        result = audit_chain_verify(expect_head=options.get("expect_head"))
        if result.ok:
            self.stdout.write(f"OK: {result.checked} events, head #{result.head_sequence} {result.head_hash}")
            return
        where = f"event #{result.broken_sequence}" if result.broken_sequence else "chain"
        raise CommandError(f"BROKEN at {where}: {result.reason} ({result.checked} events verified before it)")
