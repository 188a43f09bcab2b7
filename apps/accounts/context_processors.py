"""Template context: the current organisation, the user's roles in it, and the organisations to switch to."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.accounts.models import Role
from apps.accounts.selectors import organisations_visible_to


def organisation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    roles = getattr(request, "roles", set())
    return {
        "current_organisation": getattr(request, "organisation", None),
        "current_roles": roles,
        "current_role_labels": [label for value, label in Role.choices if value in roles],
        "switchable_organisations": organisations_visible_to(user).order_by("name"),
    }
