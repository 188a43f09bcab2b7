"""Dashboard cards of the audit app."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.audit.models import AuditChainHead, AuditEvent
from apps.core.dashboard import card


def _trail(request: HttpRequest) -> dict[str, Any]:
    organisation = request.organisation  # type: ignore[attr-defined]
    head = AuditChainHead.objects.first()
    events = AuditEvent.objects.filter(organisation=organisation).count()
    return {
        "title": "Audit trail",
        "count": events,
        "body": f"Hash-chained record of every change. Chain head #{head.sequence if head else 0}: "
        f"{(head.hash[:16] + '...') if head else 'empty'}. Verify it and export it.",
        "url": reverse("audit:trail"),
        "link_text": "Open the audit trail",
    }


card(Role.ADMIN, order=70)(_trail)
card(Role.AUDITOR, order=10)(_trail)
