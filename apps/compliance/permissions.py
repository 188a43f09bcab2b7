"""Who may see and act on compliance.

Every role of an organisation, and its external auditors, read requirements, evidence and progress of its use cases
(objects of other organisations answer 404). Org admins, use-case owners and privacy officers link evidence and
confirm requirements; org admins load the organisation's own frameworks and policies.
"""

from __future__ import annotations

from typing import Any

from apps.accounts.models import Role
from apps.accounts.selectors import roles_in

ACT_ROLES = {Role.ADMIN, Role.OWNER, Role.PRIVACY}
ACTIONS = ("view", "act", "manage_frameworks")


def can(user: Any, action: str, organisation: Any) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    roles = roles_in(user, organisation)
    if action == "view":
        return bool(roles)
    if action == "act":
        return bool(roles & ACT_ROLES)
    return Role.ADMIN in roles


def visible_usecases(user: Any) -> Any:
    from apps.usecases.permissions import visible_to

    return visible_to(user)
