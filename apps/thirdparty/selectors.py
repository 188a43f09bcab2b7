"""Reads of third-party models for other apps (inventory, applicability, reviews, search)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import Organisation, User
from apps.thirdparty.models import ThirdPartyModel
from apps.thirdparty.permissions import visible_to


def third_party_models_for_usecases(usecase_ids: Iterable[Any]) -> dict[Any, list[ThirdPartyModel]]:
    """The models in use (not retired) of each use case, in one query; use cases without one are absent."""
    grouped: dict[Any, list[ThirdPartyModel]] = defaultdict(list)
    for model in ThirdPartyModel.objects.filter(usecase_id__in=list(usecase_ids)).exclude(
        status=ThirdPartyModel.Status.RETIRED
    ):
        grouped[model.usecase_id].append(model)
    return dict(grouped)


def third_party_models_for(user: User, organisation: Organisation | None, status: str | None = None) -> QuerySet:
    queryset = visible_to(user)
    if organisation is not None:
        queryset = queryset.filter(organisation=organisation)
    if status:
        queryset = queryset.filter(status=status)
    return queryset.select_related("usecase").order_by("supplier", "name", "version")


def review_overdue(model: ThirdPartyModel, today: date | None = None) -> bool:
    """A model still in use whose periodic re-assessment date has passed."""
    today = today or timezone.localdate()
    return (
        model.status != ThirdPartyModel.Status.RETIRED
        and model.review_due_on is not None
        and model.review_due_on < today
    )


def review_binding(models: Iterable[ThirdPartyModel]) -> list[dict[str, Any]]:
    """What an ethics review binds of a use case's third-party models: identity, version and documentation hash."""
    return [
        {
            "id": str(model.id),
            "supplier": model.supplier,
            "name": model.name,
            "version": model.version,
            "status": model.status,
            "documentation_sha256": model.documentation_sha256,
        }
        for model in sorted(models, key=lambda m: str(m.id))
    ]


# Re-assessments due within this many days are shown on the dashboard beside overdue ones.
DUE_SOON_DAYS = 30


def needing_attention(queryset: QuerySet, today: date | None = None) -> QuerySet:
    """Models in use whose re-assessment is overdue or due soon, or whose documentation was never recorded."""
    from datetime import timedelta

    from django.db.models import Q

    today = today or timezone.localdate()
    return queryset.exclude(status=ThirdPartyModel.Status.RETIRED).filter(
        Q(review_due_on__lte=today + timedelta(days=DUE_SOON_DAYS)) | Q(documentation_sha256="")
    )
