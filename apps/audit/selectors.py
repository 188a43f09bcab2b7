"""Reads of the audit trail, scoped: org admins and auditors (members or granted) see their organisations' events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from apps.accounts.models import Role, User
from apps.accounts.selectors import organisation_ids_for
from apps.audit.chain import GENESIS_HASH, chain_key
from apps.audit.models import AuditChainHead, AuditEvent

READ_ROLES = (Role.ADMIN, Role.AUDITOR)


def audit_events_visible_to(user: User) -> QuerySet[AuditEvent]:
    if not user.is_authenticated:
        return AuditEvent.objects.none()
    scope = Q(organisation_id__in=organisation_ids_for(user, READ_ROLES))
    if user.is_superuser:
        scope |= Q(organisation__isnull=True)
    return AuditEvent.objects.filter(scope)


def audit_events_filtered(
    queryset: QuerySet[AuditEvent],
    *,
    organisation: Any = None,
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    actor: str = "",
    request_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Apply validated filter values one by one (never expand client input into filter kwargs)."""
    if organisation:
        queryset = queryset.filter(organisation_id=organisation)
    if action:
        queryset = queryset.filter(action__startswith=action)
    if object_type:
        queryset = queryset.filter(object_type=object_type)
    if object_id:
        queryset = queryset.filter(object_id=object_id)
    if actor:
        queryset = queryset.filter(actor_label=actor)
    if request_id:
        queryset = queryset.filter(request_id=request_id)
    if since:
        queryset = queryset.filter(created_at__gte=since)
    if until:
        queryset = queryset.filter(created_at__lt=until)
    # Newest first; within one chain the id follows the sequence, across chains it follows the time of writing.
    return queryset.order_by("-id")


def audit_chain_head(organisation: Any) -> dict[str, Any]:
    """The head of one organisation's chain (None: the platform chain), to show and to publish outside the database.

    Only that chain's own count and hash: nothing here depends on any other organisation's activity.
    """
    organisation_id = getattr(organisation, "pk", organisation)
    head = AuditChainHead.objects.filter(chain=chain_key(organisation_id)).first()
    return {
        "organisation": organisation_id,
        "sequence": head.sequence if head else 0,
        "hash": head.hash if head else GENESIS_HASH,
    }
