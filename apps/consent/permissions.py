"""Who may see and change consent data.

Stewards and org admins manage consent; auditors read it. Board members and owners see coverage figures (on the
datasets and review pages) but not the per-subject history.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Organisation, Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.consent.models import ConsentImport, ConsentRecord

READ_ROLES = (Role.STEWARD, Role.ADMIN, Role.AUDITOR)
WRITE_ROLES = (Role.STEWARD, Role.ADMIN)


def visible_to(user: User, action: str = "view", model: type = ConsentRecord) -> QuerySet:
    roles = READ_ROLES if action == "view" else WRITE_ROLES
    return model.objects.filter(organisation_id__in=organisation_ids_for(user, roles))


def can(user: User, action: str, organisation: Organisation) -> bool:
    roles = roles_in(user, organisation)
    if action == "view":
        return bool(roles & set(READ_ROLES))
    if action in {"import", "record"}:
        return bool(roles & set(WRITE_ROLES))
    return False


def imports_visible_to(user: User) -> QuerySet[ConsentImport]:
    return visible_to(user, "view", ConsentImport)
