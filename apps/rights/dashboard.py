"""Dashboard cards: requests due and overdue for whoever handles them, retraining tasks for model owners."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.dashboard import card
from apps.rights.permissions import officer_roles
from apps.rights.selectors import deadline_counts, open_retraining_tasks


def _requests_card(request: HttpRequest, role: str) -> dict[str, Any] | None:
    organisation = getattr(request, "organisation", None)
    if organisation is None or role not in officer_roles(organisation):
        return None
    counts = deadline_counts(organisation)
    if role != Role.PRIVACY and not counts["open"]:
        return None  # admins and stewards standing in see the card only when there is something to do
    body = f"{counts['open']} open; {counts['due_soon']} due within 7 days; {counts['overdue']} overdue."
    return {
        "title": "Data-subject requests",
        "count": counts["open"],
        "body": body,
        "url": reverse("rights:list") + ("?show=overdue" if counts["overdue"] else ""),
        "link_text": "Handle requests",
        "tone": "danger" if counts["overdue"] else ("warning" if counts["due_soon"] else None),
    }


@card(Role.PRIVACY, order=5)
def requests_for_officer(request: HttpRequest) -> dict[str, Any] | None:
    return _requests_card(request, Role.PRIVACY)


@card(Role.ADMIN, order=60)
def requests_for_admin(request: HttpRequest) -> dict[str, Any] | None:
    return _requests_card(request, Role.ADMIN)


@card(Role.STEWARD, order=60)
def requests_for_steward(request: HttpRequest) -> dict[str, Any] | None:
    return _requests_card(request, Role.STEWARD)


@card(Role.OWNER, order=15)
def retraining_tasks(request: HttpRequest) -> dict[str, Any] | None:
    organisation = getattr(request, "organisation", None)
    if organisation is None:
        return None
    from apps.usecases.models import UseCase

    owned = UseCase.objects.filter(organisation=organisation, owner=request.user).values("id")
    tasks = list(open_retraining_tasks(organisation, owned)[:20])
    if not tasks:
        return None
    names = ", ".join(sorted({f"{t.usecase.title} model v{t.model_version.number}" for t in tasks}))
    return {
        "title": "Retrain after an erasure",
        "count": len(tasks),
        "body": f"A person's data was erased and these non-private models were trained on it: {names}. Retrain "
        "them on the replaced dataset versions.",
        "url": reverse("evaluation:model", args=[tasks[0].model_version_id]),
        "link_text": "Open the model",
        "tone": "warning",
    }
