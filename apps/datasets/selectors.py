"""Dataset reads: versions, lineage, consent coverage."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.datasets.models import Dataset, DatasetVersion


def lineage(dataset: Dataset) -> list[dict[str, Any]]:
    """Versions as a forest (raw roots, derived children), each node with its depth for display."""
    versions = list(dataset.versions.select_related("created_by", "parent").order_by("number"))
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


def prepare_blocker(version: DatasetVersion, coverage: dict[str, Any] | None = None) -> str:
    """Why preparing this version cannot succeed now, in plain words; empty when it can. The page offers "Prepare"
    only when this is empty and the service refuses with the same words, so nobody is offered a job that must fail.
    ``coverage`` may be passed when the caller already computed it (it reads the whole file)."""
    if version.kind != DatasetVersion.Kind.RAW:
        return "Only raw versions are prepared; this one is already derived."
    if version.status != DatasetVersion.Status.READY:
        return "The version is not profiled yet (or was erased)."
    if not version.roles_confirmed_at:
        return "Confirm the column roles first."
    if not version.subject_key_column:
        return "Mark the column that identifies the data subject (subject key) so rows can be matched with consent."
    coverage = coverage if coverage is not None else version_coverage(version)
    if coverage is not None and not coverage["counts"].get("granted"):
        return (
            f"No row has valid consent for \"{version.dataset.usecase.purpose}\" now, so a prepared version would be "
            "empty. Import the consent records for this purpose first."
        )
    return ""
