"""Who may see and act on reviews.

Every role of the organisation, and an external auditor, reads its reviews (auditors read-only). Board members vote,
recuse, confirm checklist items and vote on waivers; separation of duties and recusal are checked in the services,
which know the review's people. Owners and admins request deployment reviews and waivers; the chair closes.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.ethics.models import ReviewRequest

WRITER_ROLES = {Role.ADMIN, Role.OWNER, Role.STEWARD, Role.BOARD}


def visible_to(user: User, action: str = "view") -> QuerySet[ReviewRequest]:
    if action != "view":
        raise ValueError(f"unknown action {action!r}")
    return ReviewRequest.objects.filter(organisation_id__in=organisation_ids_for(user)).select_related(
        "usecase", "model_version", "requested_by", "organisation"
    )


def can(user: User, action: str, review: ReviewRequest) -> bool:
    roles = roles_in(user, review.organisation)
    if action == "view":
        return bool(roles)
    if action in ("vote", "recuse", "stance", "waiver_vote"):
        return Role.BOARD in roles
    if action == "comment":
        return bool(roles & WRITER_ROLES)
    if action == "request_waiver" and review.recusals.filter(member=user).exists():
        return False  # a recused member takes no part in the review or its waivers
    if action == "answer":
        # The checklist is answered by whoever asked (or the use case's owner, or an admin); reviewers confirm or
        # dispute the answers with stances.
        return bool(roles) and (
            review.requested_by_id == user.id or review.usecase.owner_id == user.id or Role.ADMIN in roles
        )
    if action == "request_waiver":
        return bool(roles & {Role.OWNER, Role.ADMIN, Role.BOARD}) or review.requested_by_id == user.id
    if action == "close":
        from apps.ethics.selectors import board_of

        return board_of(review.organisation).chair_id == user.id
    return False
