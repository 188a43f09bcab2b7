"""Who may see and change the risk register and the inventory.

Every role of the organisation (and an external auditor) reads the inventory and the register. Org admins, use-case
owners and privacy officers record and work risks: they are the people who answer for them (the DPIA's own risks are
changed in the DPIA, by whoever may edit the use case).
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.portfolio.models import Risk

RISK_WRITERS = (Role.ADMIN, Role.OWNER, Role.PRIVACY)


def visible_to(user: User, action: str = "view") -> QuerySet[Risk]:
    if action == "view":
        return Risk.objects.filter(organisation_id__in=organisation_ids_for(user))
    if action == "change":
        return Risk.objects.filter(organisation_id__in=organisation_ids_for(user, RISK_WRITERS))
    raise ValueError(f"unknown action {action!r}")


def can(user: User, action: str, risk: Risk) -> bool:
    roles = roles_in(user, risk.organisation)
    if action == "view":
        return bool(roles)
    if action in ("change", "close"):
        return bool(roles & set(RISK_WRITERS)) and (action == "change" or risk.status == Risk.Status.OPEN)
    return False


def can_record(user: User, organisation: object) -> bool:
    """Whether ``user`` may add risks to ``organisation``'s register."""
    return bool(roles_in(user, organisation) & set(RISK_WRITERS))  # type: ignore[arg-type]
