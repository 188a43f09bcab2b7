"""Who may see and do what with organisations, memberships, grants and tokens.

Each app has one ``visible_to(user, action)`` and one ``can(user, action, obj)``, used by the API and the HTML views
alike. Invisible objects answer 404; visible ones the user may not change answer 403.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.accounts.models import ApiToken, AuditorGrant, Invitation, Membership, Organisation, Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in


def visible_to(user: User, action: str = "view", model: type = Organisation) -> QuerySet[Any]:
    """Objects of ``model`` that ``user`` may ``view`` (or ``manage``: org admins only)."""
    roles = [Role.ADMIN] if action == "manage" else None
    org_ids = organisation_ids_for(user, roles)
    if model is Organisation:
        return Organisation.objects.filter(id__in=org_ids)
    if model is Membership:
        return Membership.objects.filter(organisation_id__in=org_ids).select_related("user", "organisation")
    if model is AuditorGrant:
        return AuditorGrant.objects.filter(organisation_id__in=organisation_ids_for(user, [Role.ADMIN])).select_related(
            "user", "organisation"
        )
    if model is Invitation:
        # Invitations carry the invited address: only the organisation's admins see them.
        return Invitation.objects.filter(organisation_id__in=organisation_ids_for(user, [Role.ADMIN])).select_related(
            "organisation", "invited_by"
        )
    if model is ApiToken:
        return ApiToken.objects.filter(user=user) if user.is_authenticated else ApiToken.objects.none()
    raise ValueError(f"no visibility rule for {model.__name__}")


def can(user: User, action: str, obj: Any) -> bool:
    """Whether ``user`` may ``action`` ``obj`` (an Organisation, Membership, AuditorGrant, Invitation or ApiToken)."""
    if isinstance(obj, ApiToken):
        return obj.user_id == user.id
    organisation = obj if isinstance(obj, Organisation) else getattr(obj, "organisation", None)
    roles = roles_in(user, organisation)
    if action == "view":
        return bool(roles)
    if action in {"manage", "change", "add_member", "remove_member", "grant_auditor"}:
        return Role.ADMIN in roles
    return False
