"""Who may see and act on deployments and their monitoring.

Every role of the organisation, and an external auditor, reads its deployments, windows, batches and tokens (never a
token's secret, which nobody can read back). Use-case owners and org admins, who launch training and ask for reviews,
deploy, promote, roll back, withdraw, manage scoring tokens, post production data and late labels. Objects of other
organisations answer 404: querysets are narrowed to the user's organisations before anything else.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.accounts.models import Organisation, Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.deployments.models import Deployment

ACT_ROLES = (Role.OWNER, Role.ADMIN)
ACTIONS = ("view", "act")


def visible_to(user: User, action: str = "view", model: type = Deployment) -> QuerySet[Any]:
    """Rows of ``model`` (Deployment, or any monitoring model with an ``organisation``) the user may see or act on."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    ids = organisation_ids_for(user, None if action == "view" else ACT_ROLES)
    return model.objects.filter(organisation_id__in=ids)


def can(user: User, action: str, organisation: Organisation) -> bool:
    """``view``: any role in the organisation; ``act``: its owners and admins."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    roles = roles_in(user, organisation)
    if action == "view":
        return bool(roles)
    return bool(roles & set(ACT_ROLES))
