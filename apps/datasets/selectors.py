"""Dataset reads: versions, lineage, consent coverage."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.datasets.models import Dataset, DatasetVersion


def lineage(dataset: Dataset) -> list[dict[str, Any]]:
    """Versions as a forest (raw roots, derived children), each node with its depth for display."""
    versions = list(dataset.versions.select_related("created_by").order_by("number"))
    children: dict[Any, list[DatasetVersion]] = {}
    for version in versions:
        children.setdefault(version.parent_id, []).append(version)
    rows: list[dict[str, Any]] = []

    def walk(version: DatasetVersion, depth: int) -> None:
        rows.append({"version": version, "depth": depth})
        for child in children.get(version.id, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return rows


def version_coverage(version: DatasetVersion) -> dict[str, Any] | None:
    """Consent coverage of a version's rows for its use case's purpose, now (None without a subject key)."""
    if not version.subject_key_column or version.status == DatasetVersion.Status.ERASED:
        return None
    from apps.consent.selectors import consent_coverage
    from apps.consent.services import pseudonym_secret
    from apps.datasets.services import read_version_table
    from workers.engine.datasets.prepare import subject_pseudonyms

    table = read_version_table(version)
    if version.kind == DatasetVersion.Kind.RAW:
        secret = pseudonym_secret(version.dataset.organisation)
        pseudonyms = subject_pseudonyms(table, version.subject_key_column, secret)
    else:  # derived versions already carry pseudonyms in the subject-key column
        pseudonyms = table.column(version.subject_key_column).to_pylist()
    return consent_coverage(version.dataset.organisation, version.dataset.usecase.purpose, timezone.now(), pseudonyms)
