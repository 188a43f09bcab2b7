"""Dashboard cards of the datasets app."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.dashboard import card
from apps.datasets.models import DatasetVersion


@card(Role.STEWARD, order=10)
def datasets_to_prepare(request: HttpRequest) -> dict[str, Any]:
    versions = DatasetVersion.objects.filter(dataset__organisation=request.organisation)  # type: ignore[attr-defined]
    unconfirmed = versions.filter(kind="raw", status="ready", roles_confirmed_at__isnull=True).count()
    unprepared = versions.filter(kind="raw", roles_confirmed_at__isnull=False, children__isnull=True).count()
    body = (
        f"{unconfirmed} version{'s' if unconfirmed != 1 else ''} need their column roles confirmed; "
        f"{unprepared} confirmed raw version{'s' if unprepared != 1 else ''} not yet prepared."
    )
    return {
        "title": "Datasets",
        "count": versions.count(),
        "body": body,
        "url": reverse("datasets:list"),
        "link_text": "Upload and prepare data",
        "tone": "warning" if unconfirmed else None,
    }


def _datasets(request: HttpRequest) -> dict[str, Any]:
    prepared = DatasetVersion.objects.filter(
        dataset__organisation=request.organisation,  # type: ignore[attr-defined]
        kind="prepared",
    ).count()
    return {
        "title": "Prepared data",
        "count": prepared,
        "body": "Consent-filtered, de-identified versions with datasheets and lineage.",
        "url": reverse("datasets:list"),
        "link_text": "See datasets",
    }


card(Role.OWNER, order=30)(_datasets)
card(Role.BOARD, order=30)(_datasets)
card(Role.AUDITOR, order=30)(_datasets)


@card(Role.STEWARD, order=12)
def versions_to_anonymise(request: HttpRequest) -> dict[str, Any] | None:
    """Prepared versions with no anonymised child yet: the step both workflows put right after collection."""
    prepared = DatasetVersion.objects.filter(
        dataset__organisation=request.organisation,  # type: ignore[attr-defined]
        kind=DatasetVersion.Kind.PREPARED,
        status=DatasetVersion.Status.READY,
    ).exclude(children__kind=DatasetVersion.Kind.ANONYMISED)
    first = prepared.first()
    return {
        "title": "Anonymisation",
        "count": prepared.count(),
        "body": "Prepared versions not yet generalised to k-anonymity."
        if first
        else "Every prepared version has an anonymised version.",
        "url": reverse("datasets:anonymise", kwargs={"version_id": first.id}) if first else reverse("datasets:list"),
        "link_text": "Anonymise" if first else "Datasets",
    }
