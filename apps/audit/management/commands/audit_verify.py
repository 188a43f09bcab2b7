"""Walk the audit chains and name the first broken event of each (exit status 1 when any chain is broken)."""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Organisation
from apps.audit.verify import audit_chain_verify, audit_chains_verify


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class Command(BaseCommand):
    help = (
        "Verify the hash-chained audit log: every chain (one per organisation, and the platform's), or one of them; "
        "names the first broken event."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--organisation", help="Verify only this organisation's chain (its slug or id).")
        which.add_argument("--platform", action="store_true", help="Verify only the platform chain.")
        parser.add_argument(
            "--expect-head",
            help="A chain head hash published earlier; it must still be in the chain (needs --organisation or "
            "--platform).",
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        slug_or_id = options.get("organisation")
        if slug_or_id or options.get("platform"):
            organisation = None
            if slug_or_id:
                organisation = Organisation.objects.filter(slug=slug_or_id).first()
                if organisation is None and _is_uuid(slug_or_id):
                    organisation = Organisation.objects.filter(id=slug_or_id).first()
                if organisation is None:
                    raise CommandError(f"No organisation {slug_or_id!r}.")
            results = [audit_chain_verify(organisation=organisation, expect_head=options.get("expect_head"))]
        elif options.get("expect_head"):
            raise CommandError("--expect-head names a head of one chain: give --organisation or --platform.")
        else:
            results = audit_chains_verify()
        broken = []
        for result in results:
            if result.ok:
                self.stdout.write(
                    f"OK: {result.checked} events in chain {result.chain}, head #{result.head_sequence} {result.head_hash}"
                )
                continue
            where = f"event #{result.broken_sequence}" if result.broken_sequence else "chain"
            broken.append(
                f"chain {result.chain} BROKEN at {where}: {result.reason} ({result.checked} events verified before it)"
            )
        if not results:
            self.stdout.write("OK: no audit events yet.")
        if broken:
            raise CommandError("; ".join(broken))
