"""Who may see and launch training: every role reads; use-case owners and org admins launch."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Organisation, Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.training.models import ModelVersion, TrainingRun

LAUNCH_ROLES = (Role.OWNER, Role.ADMIN)


def visible_to(user: User, action: str = "view", model: type = TrainingRun) -> QuerySet:
    ids = organisation_ids_for(user, None if action == "view" else LAUNCH_ROLES)
    return model.objects.filter(organisation_id__in=ids)


def can(user: User, action: str, organisation: Organisation) -> bool:
    roles = roles_in(user, organisation)
    if action == "view":
        return bool(roles)
    return bool(roles & set(LAUNCH_ROLES))


def models_visible_to(user: User) -> QuerySet[ModelVersion]:
    return visible_to(user, "view", ModelVersion)
