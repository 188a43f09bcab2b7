"""Reads of jobs."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Organisation, User
from apps.jobs.models import Job
from apps.jobs.permissions import visible_to


def jobs_for(user: User, organisation: Organisation | None = None, kind: str | None = None) -> QuerySet[Job]:
    queryset = visible_to(user).select_related("created_by")
    if organisation is not None:
        queryset = queryset.filter(organisation=organisation)
    if kind:
        queryset = queryset.filter(kind=kind)
    return queryset.order_by("-created_at")
