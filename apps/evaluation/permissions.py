"""Every role of the organisation reads evaluations (the board relies on them); owners and admins request them."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Organisation, Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.evaluation.models import Evaluation

REQUEST_ROLES = {Role.OWNER, Role.ADMIN}
# Mitigating a model and explaining one of its held-out rows: the people who answer for the model and its data.
MITIGATE_ROLES = {Role.OWNER, Role.STEWARD, Role.ADMIN}


def visible_to(user: User, action: str = "view") -> QuerySet[Evaluation]:
    return Evaluation.objects.filter(organisation_id__in=organisation_ids_for(user))


def can(user: User, action: str, organisation: Organisation) -> bool:
    """``view``: every role; ``request`` (a new evaluation, or the same one again): use-case owners and org admins;
    ``mitigate`` and ``explain`` (a held-out row): stewards, use-case owners and org admins."""
    roles = roles_in(user, organisation)
    if action == "view":
        return bool(roles)
    if action == "request":
        return bool(roles & REQUEST_ROLES)
    if action in ("mitigate", "explain"):
        return bool(roles & MITIGATE_ROLES)
    return False
