"""Seed the demo: an organisation with one user per role, a second organisation, and a registered use case.

Idempotent: running it again changes nothing and prints the same logins.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts import services as accounts
from apps.accounts.models import AuditorGrant, Organisation, Role, User

DEMO_ORGANISATION = {
    "name": "Ministry of Digital Services",
    "slug": "mods",
    "country": "GB",
    "address": "1 Example Square, London SW1A 0AA",
    "controller_contact": "Permanent Secretary, Ministry of Digital Services",
    "dpo_name": "Dana Protection",
    "dpo_email": "dpo@mods.example.gov",
    "processing_purposes": ["Benefit eligibility triage", "Service improvement", "Fraud and error detection"],
}
OTHER_ORGANISATION = {
    "name": "Northshire County Council",
    "slug": "northshire",
    "country": "GB",
    "processing_purposes": ["Social care planning"],
}

# username, full name, roles, password. Demo passwords only: they pass the validators and are printed on purpose.
DEMO_USERS: list[tuple[str, str, tuple[str, ...], str]] = [
    ("admin", "Amira Admin", (Role.ADMIN,), "attest-demo-admin-2026"),
    ("owner", "Oliver Owner", (Role.OWNER,), "attest-demo-owner-2026"),
    ("steward", "Sofia Steward", (Role.STEWARD,), "attest-demo-steward-2026"),
    ("board1", "Bola Board", (Role.BOARD,), "attest-demo-board1-2026"),
    ("board2", "Bernd Board", (Role.BOARD,), "attest-demo-board2-2026"),
    ("board3", "Beatriz Board", (Role.BOARD,), "attest-demo-board3-2026"),
    ("auditor", "Aidan Auditor", (Role.AUDITOR,), "attest-demo-auditor-2026"),
    ("privacy", "Priya Privacy", (Role.PRIVACY,), "attest-demo-privacy-2026"),
]
REGULATOR = ("regulator", "Rania Regulator", "attest-demo-regulator-2026")
OTHER_ADMIN = ("northshire", "Nia Northshire", "attest-demo-northshire-2026")


class Command(BaseCommand):
    help = "Create (or confirm) the demo organisation, users per role and demo content; prints the logins."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            organisation = self._organisation(DEMO_ORGANISATION)
            other = self._organisation(OTHER_ORGANISATION)
            for username, full_name, roles, password in DEMO_USERS:
                self._user(organisation, username, full_name, roles, password)
            self._user(other, OTHER_ADMIN[0], OTHER_ADMIN[1], (Role.ADMIN,), OTHER_ADMIN[2])
            regulator = self._user(None, *REGULATOR[:2], (), REGULATOR[2])
            if not AuditorGrant.objects.filter(user=regulator, organisation=organisation, revoked_at=None).exists():
                accounts.auditor_grant_create(
                    actor=None, organisation=organisation, user=regulator, reason="Supervisory authority (demo)"
                )
        from django.test.utils import override_settings

        from apps.core.demo import seed_demo_content

        # The seeded reviews notify the board; keep those e-mails out of the printed logins (in-app notices stay).
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            seed_demo_content(organisation, self.stdout)
        self._print_logins(organisation, other)

    def _organisation(self, data: dict[str, Any]) -> Organisation:
        organisation, _created = Organisation.objects.get_or_create(slug=data["slug"], defaults=data)
        return organisation

    def _user(
        self, organisation: Organisation | None, username: str, full_name: str, roles: tuple[str, ...], password: str
    ) -> User:
        existing = User.objects.filter(username=username).first()
        if existing is not None:
            return existing
        if organisation is None:
            user = User(username=username, email=f"{username}@demo.example", full_name=full_name)
            user.set_password(password)
            user.save()
            return user
        return accounts.user_create(
            actor=None,
            organisation=organisation,
            username=username,
            email=f"{username}@demo.example",
            full_name=full_name,
            password=password,
            roles=list(roles),
        )

    def _print_logins(self, organisation: Organisation, other: Organisation) -> None:
        rows = [(u, p, ", ".join(Role(r).label for r in roles), organisation.name) for u, _n, roles, p in DEMO_USERS]
        rows.append((REGULATOR[0], REGULATOR[2], "External auditor (grant)", organisation.name))
        rows.append((OTHER_ADMIN[0], OTHER_ADMIN[2], Role.ADMIN.label, other.name))
        width = max(len(r[0]) for r in rows)
        pwidth = max(len(r[1]) for r in rows)
        self.stdout.write("\nDemo logins (http://127.0.0.1:8000/accounts/login/):")
        self.stdout.write(f"  {'username'.ljust(width)}  {'password'.ljust(pwidth)}  role / organisation")
        for username, password, role, org_name in rows:
            self.stdout.write(f"  {username.ljust(width)}  {password.ljust(pwidth)}  {role} / {org_name}")
        self.stdout.write("")
