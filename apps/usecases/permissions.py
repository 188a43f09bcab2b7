"""Who may see and change use cases.

Every role of the organisation (and an external auditor) may read its use cases. Owners and admins register them;
the use case's owner or an admin edits it while it is a draft. Transitions have their own rules in ``TRANSITIONS``.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.usecases.models import UseCase

EDITABLE_STATUSES = (UseCase.Status.DRAFT,)


def visible_to(user: User, action: str = "view") -> QuerySet[UseCase]:
    if action == "view":
        return UseCase.objects.filter(organisation_id__in=organisation_ids_for(user))
    if action == "create":
        return UseCase.objects.filter(organisation_id__in=organisation_ids_for(user, [Role.OWNER, Role.ADMIN]))
    raise ValueError(f"unknown action {action!r}")


def can(user: User, action: str, usecase: UseCase) -> bool:
    roles = roles_in(user, usecase.organisation)
    if action == "view":
        return bool(roles)
    if action == "change":
        is_owner = usecase.owner_id == user.id and Role.OWNER in roles
        return (is_owner or Role.ADMIN in roles) and usecase.status in EDITABLE_STATUSES
    if action == "tighten_gate":
        # Tightening never weakens a protection, so no state is needed (the service refuses a retired use case).
        return (usecase.owner_id == user.id and Role.OWNER in roles) or Role.ADMIN in roles
    from apps.usecases.services import TRANSITIONS

    transition = TRANSITIONS.get(action)
    if transition is None:
        return False
    if usecase.status not in transition.sources:
        return False
    if transition.owner_may and usecase.owner_id == user.id and Role.OWNER in roles:
        return True
    return transition.admin_may and Role.ADMIN in roles
