"""Dashboard cards of the consent register."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.consent.models import ConsentImport, DataSubject
from apps.core.dashboard import card


@card(Role.STEWARD, order=20)
def consent(request: HttpRequest) -> dict[str, Any]:
    organisation = request.organisation  # type: ignore[attr-defined]
    subjects = DataSubject.objects.filter(organisation=organisation).count()
    failed = ConsentImport.objects.filter(
        organisation=organisation, status=ConsentImport.Status.PENDING, job__status__in=["failed", "cancelled"]
    ).count()
    body = f"{subjects:,} data subjects with consent records."
    if failed:
        body += f" {failed} import{'s' if failed != 1 else ''} failed: check the file and import again."
    return {
        "title": "Consent records",
        "count": subjects,
        "body": body,
        "url": reverse("consent:home"),
        "link_text": "Import and review consent",
        "tone": "warning" if failed else None,
    }
