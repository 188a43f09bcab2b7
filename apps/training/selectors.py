"""Training reads: runs, budgets with their ledger, trainable versions."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.accounts.models import Organisation, User
from apps.datasets.models import DatasetVersion
from apps.datasets.permissions import visible_to as versions_visible_to
from apps.training.models import PrivacyBudget
from apps.usecases.models import UseCase


def trainable_versions(user: User, organisation: Organisation) -> QuerySet[DatasetVersion]:
    return (
        versions_visible_to(user, "view", DatasetVersion)
        .filter(
            dataset__organisation=organisation,
            kind__in=["prepared", "anonymised"],
            status="ready",
            dataset__usecase__status__in=[UseCase.Status.APPROVED, UseCase.Status.IN_PRODUCTION],
        )
        .select_related("dataset__usecase")
        .order_by("dataset__name", "-number")
    )


def budget_summary(budget: PrivacyBudget | None) -> dict[str, Any] | None:
    if budget is None:
        return None
    return {
        "cap": budget.epsilon_cap,
        "delta": budget.delta,
        "people": budget.people,
        "accountant": budget.accountant,
        "composed_spent": budget.composed_spent,
        "naive_spent": budget.naive_spent,
        "reserved": budget.reserved,
        "remaining": budget.remaining,
        "entries": list(budget.entries.select_related("run").order_by("created_at")),
    }
