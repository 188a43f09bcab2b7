"""Reads of the use-case register."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.accounts.models import Organisation, User
from apps.usecases.models import UseCase, UseCaseRevision
from apps.usecases.permissions import visible_to


def usecases_for(user: User, organisation: Organisation | None = None, status: str | None = None) -> QuerySet[UseCase]:
    queryset = visible_to(user).select_related("owner", "organisation")
    if organisation is not None:
        queryset = queryset.filter(organisation=organisation)
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def usecase_history(usecase: UseCase) -> list[dict[str, Any]]:
    """Revisions newest first, each with what changed from the one before (field, old, new) and who changed it."""
    revisions = list(UseCaseRevision.objects.filter(usecase=usecase).select_related("author").order_by("number"))
    history = []
    previous: dict[str, Any] = {}
    for revision in revisions:
        changes = (
            [
                {"field": field, "old": previous.get(field), "new": revision.snapshot.get(field)}
                for field in revision.changed_fields
            ]
            if previous
            else []
        )
        history.append({"revision": revision, "changes": changes})
        previous = revision.snapshot
    history.reverse()
    return history
