"""Dashboard cards of third-party models: the suppliers' models that need a look (the monitoring path of a model
Attest does not run is its re-assessment date and its documentation)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.core.dashboard import card
from apps.thirdparty.models import ThirdPartyModel
from apps.thirdparty.selectors import DUE_SOON_DAYS, needing_attention


def _card(models: QuerySet) -> dict[str, Any] | None:
    today = timezone.localdate()
    counts = list(needing_attention(models, today).values_list("review_due_on", "documentation_sha256"))
    overdue = due = undocumented = 0
    for review_due_on, sha256 in counts:
        if review_due_on is not None and review_due_on < today:
            overdue += 1
        elif review_due_on is not None and review_due_on <= today + timedelta(days=DUE_SOON_DAYS):
            due += 1
        if not sha256:
            undocumented += 1
    if not (overdue or due or undocumented):
        return None
    parts = []
    if overdue:
        parts.append(f"{overdue} re-assessment{'s' if overdue != 1 else ''} overdue")
    if due:
        parts.append(f"{due} due within {DUE_SOON_DAYS} days")
    if undocumented:
        parts.append(f"{undocumented} without recorded documentation")
    return {
        "title": "Third-party models to check",
        "count": len(counts),
        "body": "; ".join(parts) + ".",
        "url": reverse("thirdparty:list") + "?attention=1",
        "link_text": "Open third-party models",
        "tone": "warning" if overdue else None,
    }


@card(Role.OWNER, order=40)
def my_third_party_models(request: HttpRequest) -> dict[str, Any] | None:
    return _card(
        ThirdPartyModel.objects.filter(
            organisation=request.organisation,  # type: ignore[attr-defined]
            usecase__owner=request.user,
        )
    )


@card(Role.ADMIN, order=40)
def organisation_third_party_models(request: HttpRequest) -> dict[str, Any] | None:
    return _card(ThirdPartyModel.objects.filter(organisation=request.organisation))  # type: ignore[attr-defined]
