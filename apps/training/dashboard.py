"""Dashboard cards of private training."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.dashboard import card
from apps.training.models import ModelVersion, PrivacyBudget, TrainingRun


@card(Role.OWNER, order=20)
def training(request: HttpRequest) -> dict[str, Any]:
    organisation = request.organisation  # type: ignore[attr-defined]
    running = TrainingRun.objects.filter(
        organisation=organisation, status="pending", job__status__in=["queued", "running"]
    ).count()
    models = ModelVersion.objects.filter(organisation=organisation).count()
    budgets = PrivacyBudget.objects.filter(dataset__organisation=organisation)
    tightest = min((b.remaining for b in budgets), default=None)
    body = (
        f"{running} run{'s' if running != 1 else ''} in progress; {models} model version{'s' if models != 1 else ''}."
    )
    if tightest is not None:
        body += f" Smallest remaining privacy budget: epsilon {tightest:.2f}."
    return {
        "title": "Private training",
        "count": models,
        "body": body,
        "url": reverse("training:home"),
        "link_text": "Train with differential privacy",
    }


def _models(request: HttpRequest) -> dict[str, Any]:
    organisation = request.organisation  # type: ignore[attr-defined]
    models = ModelVersion.objects.filter(organisation=organisation)
    return {
        "title": "Trained models",
        "count": models.count(),
        "body": "Each with its epsilon, manifest and hashes.",
        "url": reverse("training:home"),
        "link_text": "See models",
    }


card(Role.BOARD, order=40)(_models)
card(Role.AUDITOR, order=40)(_models)
card(Role.ADMIN, order=40)(_models)
