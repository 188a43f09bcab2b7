"""Who handles data-subject requests.

The privacy officer does. An organisation without one has its org admins and data stewards do it instead (Art. 38
expects someone independent; until the organisation names one, the people who already manage consent and erasure
keep the duty). Auditors read requests (pseudonyms, counts and outcomes only) and act on nothing. Objects of other
organisations are not found.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Membership, Organisation, Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.rights.models import SubjectRequest

FALLBACK_ROLES = frozenset({Role.ADMIN, Role.STEWARD})


def _organisations_with_officer(organisation_ids: set) -> set:
    return set(
        Membership.objects.filter(
            organisation_id__in=organisation_ids, role=Role.PRIVACY, user__is_active=True
        ).values_list("organisation_id", flat=True)
    )


def officer_roles(organisation: Organisation) -> frozenset[str]:
    """The roles that handle requests in ``organisation``: the privacy officer, else org admins and data stewards."""
    if _organisations_with_officer({organisation.pk}):
        return frozenset({Role.PRIVACY})
    return FALLBACK_ROLES


def officer_organisation_ids(user: User) -> set:
    """Organisations where ``user`` handles requests."""
    ids = organisation_ids_for(user, [Role.PRIVACY])
    fallback = organisation_ids_for(user, FALLBACK_ROLES) - ids
    return ids | (fallback - _organisations_with_officer(fallback))


def visible_to(user: User, action: str = "view") -> QuerySet[SubjectRequest]:
    ids = officer_organisation_ids(user)
    if action == "view":
        ids |= organisation_ids_for(user, [Role.AUDITOR])
    return SubjectRequest.objects.filter(organisation_id__in=ids)


def can(user: User, action: str, organisation: Organisation) -> bool:
    """``view`` for officers and auditors; ``manage`` (register, assign, extend, decide, execute, download the access
    export) for officers only."""
    roles = roles_in(user, organisation)
    if not roles:
        return False
    officer = bool(roles & officer_roles(organisation))
    if action == "view":
        return officer or Role.AUDITOR in roles
    if action == "manage":
        return officer
    return False
