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
    if not version.subject_key_column or version.status in (
        DatasetVersion.Status.ERASED,
        DatasetVersion.Status.REPLACED,
    ):
        return None
    import pyarrow as pa

    from apps.consent.selectors import consent_coverage
    from apps.consent.services import pseudonym_secret
    from apps.datasets.tables import version_batches
    from workers.engine.datasets.prepare import subject_pseudonyms

    organisation, purpose, now = version.dataset.organisation, version.dataset.usecase.purpose, timezone.now()
    secret = pseudonym_secret(organisation) if version.kind == DatasetVersion.Kind.RAW else None
    coverage: dict[str, Any] | None = None
    # Only the subject-key column is read, a batch at a time; the counts of each batch are summed.
    with version_batches(version, columns=[version.subject_key_column]) as reader:
        for batch in reader:
            column = batch.column(0)
            if secret is not None:
                pseudonyms = subject_pseudonyms(column, secret).to_pylist()
            else:  # derived versions already carry pseudonyms in the subject-key column
                pseudonyms = column.cast(pa.string()).to_pylist()
            part = consent_coverage(organisation, purpose, now, pseudonyms)
            if coverage is None:
                coverage = part
            else:
                coverage["total"] += part["total"]
                for name, count in part["counts"].items():
                    coverage["counts"][name] += count
    if coverage is None:
        coverage = consent_coverage(organisation, purpose, now, [])
    total = coverage["total"]
    coverage["shares"] = {name: (count / total if total else 0.0) for name, count in coverage["counts"].items()}
    return coverage


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
            f'No row has valid consent for "{version.dataset.usecase.purpose}" now, so a prepared version would be '
            "empty. Import the consent records for this purpose first."
        )
    return ""
