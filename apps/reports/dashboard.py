"""Dashboard cards of the report library: what an auditor or an admin can download and check."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.dashboard import card
from apps.reports.models import Report


def _library(request: HttpRequest) -> dict[str, Any]:
    current = Report.objects.filter(
        organisation=request.organisation,  # type: ignore[attr-defined]
        status=Report.Status.READY,
        superseded_by__isnull=True,
    )
    count = current.count()
    return {
        "title": "Signed reports",
        "count": count,
        "body": "Model cards, Annex IV documentation, datasheets, DPIAs, the Art. 30 record, decision records and "
        "audit extracts as signed PDF/A-3 files. Check any copy you were sent on the verify page.",
        "url": reverse("reports:library"),
        "link_text": "Open the report library",
    }


card(Role.AUDITOR, order=5)(_library)
card(Role.ADMIN, order=25)(_library)
