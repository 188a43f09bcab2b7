"""Who may see and record third-party models.

Every role of the organisation (and an external auditor) reads them, as they read the use case. The use case's owner
and org admins record and change them: they answer for the use case and its suppliers.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.thirdparty.models import ThirdPartyModel
from apps.usecases.models import UseCase


def visible_to(user: User, action: str = "view") -> QuerySet[ThirdPartyModel]:
    if action != "view":
        raise ValueError(f"unknown action {action!r}")
    return ThirdPartyModel.objects.filter(organisation_id__in=organisation_ids_for(user)).select_related(
        "usecase", "organisation"
    )


def may_record_for(user: User, usecase: UseCase) -> bool:
    """Whether ``user`` may record a third-party model in ``usecase`` (its owner, or an org admin)."""
    roles = roles_in(user, usecase.organisation)
    return Role.ADMIN in roles or (Role.OWNER in roles and usecase.owner_id == user.id)


def can(user: User, action: str, model: ThirdPartyModel) -> bool:
    if action == "view":
        return bool(roles_in(user, model.organisation))
    if action == "change":
        return may_record_for(user, model.usecase)
    return False
