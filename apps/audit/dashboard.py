"""Dashboard cards of the audit app."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_head
from apps.core.dashboard import card


def _trail(request: HttpRequest) -> dict[str, Any]:
    organisation = request.organisation  # type: ignore[attr-defined]
    # This organisation's own chain: its head counts only its own events, never another organisation's.
    head = audit_chain_head(organisation)
    events = AuditEvent.objects.filter(organisation=organisation).count()
    return {
        "title": "Audit trail",
        "count": events,
        "body": f"Hash-chained record of every change. Chain head #{head['sequence']}: "
        f"{(head['hash'][:16] + '...') if head['sequence'] else 'empty'}. Verify it and export it.",
        "url": reverse("audit:trail"),
        "link_text": "Open the audit trail",
    }


card(Role.ADMIN, order=70)(_trail)
card(Role.AUDITOR, order=10)(_trail)
