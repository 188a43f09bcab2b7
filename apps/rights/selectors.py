"""Reads of data-subject requests: the officer's list with due and overdue filters, and what a request still needs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import Organisation, User
from apps.rights.models import RetrainingTask, SubjectRequest
from apps.rights.permissions import visible_to

DUE_SOON_DAYS = 7
FILTERS = ("open", "due_soon", "overdue", "waiting", "completed", "all")


def requests_for(user: User, organisation: Organisation | None, *, show: str = "open", kind: str = "") -> QuerySet:
    """The requests ``user`` may see in ``organisation``, narrowed by ``show`` (one of FILTERS) and ``kind``."""
    queryset = visible_to(user).select_related("assignee", "duplicate_of")
    if organisation is not None:
        queryset = queryset.filter(organisation=organisation)
    today = timezone.localdate()
    open_requests = queryset.exclude(status=SubjectRequest.Status.COMPLETED)
    if show == "open":
        queryset = open_requests
    elif show == "due_soon":
        queryset = open_requests.filter(due_on__gte=today, due_on__lte=today + timedelta(days=DUE_SOON_DAYS))
    elif show == "overdue":
        queryset = open_requests.filter(due_on__lt=today)
    elif show == "waiting":
        queryset = queryset.filter(status=SubjectRequest.Status.WAITING)
    elif show == "completed":
        queryset = queryset.filter(status=SubjectRequest.Status.COMPLETED)
    if kind in SubjectRequest.Kind.values:
        queryset = queryset.filter(kind=kind)
    return queryset.order_by("due_on", "-created_at")


def deadline_counts(organisation: Organisation) -> dict[str, int]:
    today = timezone.localdate()
    open_requests = SubjectRequest.objects.filter(organisation=organisation).exclude(
        status=SubjectRequest.Status.COMPLETED
    )
    return {
        "open": open_requests.count(),
        "overdue": open_requests.filter(due_on__lt=today).count(),
        "due_soon": open_requests.filter(due_on__gte=today, due_on__lte=today + timedelta(days=DUE_SOON_DAYS)).count(),
    }


def undecided_models(request: SubjectRequest) -> list[dict[str, Any]]:
    """Traced models without a recorded decision (an erasure waits for all of them)."""
    decided = {str(pk) for pk in request.decisions.values_list("model_version_id", flat=True)}
    return [m for m in request.trace.get("models", []) if m["model_version_id"] not in decided]


def open_retraining_tasks(organisation: Organisation, usecase_ids: Any = None) -> QuerySet[RetrainingTask]:
    tasks = RetrainingTask.objects.filter(organisation=organisation, status=RetrainingTask.Status.OPEN)
    if usecase_ids is not None:
        tasks = tasks.filter(usecase_id__in=usecase_ids)
    return tasks.select_related("model_version", "usecase", "request")
