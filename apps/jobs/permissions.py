"""Who may see and act on jobs: members (and auditors) of the job's organisation; system jobs only superusers."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.accounts.models import Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.jobs.models import Job


def visible_to(user: User, action: str = "view") -> QuerySet[Job]:
    if not user.is_authenticated:
        return Job.objects.none()
    scope = Q(organisation_id__in=organisation_ids_for(user))
    if user.is_superuser:
        scope |= Q(organisation__isnull=True)
    return Job.objects.filter(scope)


def can(user: User, action: str, job: Job) -> bool:
    roles = roles_in(user, job.organisation) if job.organisation_id else set()
    if action == "view":
        return bool(roles) or user.is_superuser
    if action == "cancel":
        return job.created_by_id == user.id or Role.ADMIN in roles or user.is_superuser
    return False


def can_run_diagnostics(user: User, organisation) -> bool:  # type: ignore[no-untyped-def]
    return Role.ADMIN in roles_in(user, organisation)
