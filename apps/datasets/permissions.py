"""Who may see and change datasets: every role of the organisation reads; stewards and admins write."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Organisation, Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.datasets.models import Dataset, DatasetVersion

WRITE_ROLES = (Role.STEWARD, Role.ADMIN)


def visible_to(user: User, action: str = "view", model: type = Dataset) -> QuerySet:
    roles = None if action == "view" else WRITE_ROLES
    ids = organisation_ids_for(user, roles)
    if model is DatasetVersion:
        return DatasetVersion.objects.filter(dataset__organisation_id__in=ids)
    return Dataset.objects.filter(organisation_id__in=ids)


def can(user: User, action: str, organisation: Organisation) -> bool:
    roles = roles_in(user, organisation)
    if action == "view":
        return bool(roles)
    return bool(roles & set(WRITE_ROLES))
