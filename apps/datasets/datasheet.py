"""The datasheet of a dataset version (Gebru et al., "Datasheets for Datasets"): seven sections, prefilled."""

from __future__ import annotations

from typing import Any

SECTIONS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "motivation",
        "Motivation",
        [
            ("purpose", "For what purpose was the dataset created?"),
            ("creators", "Who created it, on behalf of which entity, and who funded it?"),
        ],
    ),
    (
        "composition",
        "Composition",
        [
            ("instances", "What do the instances represent? How many are there?"),
            ("fields", "What data does each instance consist of?"),
            ("sensitive", "Does it contain data that might be considered sensitive?"),
            ("missing", "Is any information missing from individual instances?"),
        ],
    ),
    (
        "collection",
        "Collection process",
        [
            ("how", "How was the data acquired, over what timeframe?"),
            ("consent", "Were individuals notified and did they consent? How can consent be revoked?"),
        ],
    ),
    (
        "preprocessing",
        "Preprocessing, cleaning, labelling",
        [("steps", "What preprocessing was done?"), ("raw_kept", "Was the raw data saved?")],
    ),
    (
        "uses",
        "Uses",
        [
            ("intended", "What tasks is the dataset intended for?"),
            ("not_for", "Are there tasks it should not be used for?"),
        ],
    ),
    ("distribution", "Distribution", [("shared", "Will it be shared outside the organisation, and how?")]),
    (
        "maintenance",
        "Maintenance",
        [
            ("maintainer", "Who maintains it and how can they be contacted?"),
            ("retention", "When will it be erased?"),
            ("updates", "Will it be updated, and how are erasure requests handled?"),
        ],
    ),
]


def empty_datasheet() -> dict[str, dict[str, str]]:
    return {key: {q: "" for q, _label in questions} for key, _title, questions in SECTIONS}


def normalise_datasheet(raw: dict[str, Any]) -> dict[str, dict[str, str]]:
    sheet = empty_datasheet()
    for key, _title, questions in SECTIONS:
        answers = raw.get(key) or {}
        if isinstance(answers, dict):
            for question, _label in questions:
                value = answers.get(question)
                sheet[key][question] = value.strip() if isinstance(value, str) else ""
    return sheet


def prefill_datasheet(version: Any, coverage: dict[str, Any] | None = None) -> dict[str, dict[str, str]]:
    """Facts Attest already knows: counts, columns, sensitive attributes, missing shares, consent and lineage."""
    sheet = empty_datasheet()
    dataset, usecase = version.dataset, version.dataset.usecase
    columns = list(version.columns.all())
    profile = {c["name"]: c for c in (version.profile or {}).get("columns", [])}
    sheet["motivation"]["purpose"] = f"Created for use case {usecase.reference} ({usecase.title}): {usecase.purpose}."
    sheet["motivation"]["creators"] = f"{dataset.organisation.name}; uploaded by {version.created_by.display_name}."
    sheet["composition"]["instances"] = f"{version.row_count:,} rows, one per data subject record."
    sheet["composition"]["fields"] = ", ".join(f"{c.name} ({c.get_role_display() or c.kind})" for c in columns)
    sensitive = [c.name for c in columns if (c.role or c.suggested_role) == "sensitive"]
    identifiers = [c.name for c in columns if (c.role or c.suggested_role) in ("direct_identifier", "subject_key")]
    sheet["composition"]["sensitive"] = (
        f"Sensitive attributes: {', '.join(sensitive) or 'none found'}. Identifiers: {', '.join(identifiers) or 'none'}."
    )
    missing = [f"{name} {p['missing_share']:.1%}" for name, p in profile.items() if p.get("missing")]
    sheet["composition"]["missing"] = ("Missing values: " + ", ".join(missing)) if missing else "No missing values."
    if coverage:
        counts = coverage["counts"]
        sheet["collection"]["consent"] = (
            f"Consent for '{coverage['purpose']}' as of {coverage['as_of'][:10]}: {counts['granted']:,} rows granted, "
            f"{counts['withdrawn']:,} withdrawn, {counts['refused']:,} refused, {counts['unknown']:,} unknown. "
            "Subjects withdraw through the organisation's consent system; withdrawals reach Attest through its API."
        )
    if version.parent_id:
        spec = version.transform or {}
        sheet["preprocessing"]["steps"] = (
            f"Derived from v{version.parent.number}: {spec.get('rows_removed_without_consent', 0):,} rows without "
            f"valid consent removed; columns dropped: {', '.join(spec.get('columns_dropped', [])) or 'none'}; "
            "subject key replaced by a keyed pseudonym."
        )
        sheet["preprocessing"]["raw_kept"] = "The raw version is kept encrypted until its retention date."
    sheet["uses"]["intended"] = f"Training and evaluating models for {usecase.reference} only."
    sheet["maintenance"]["retention"] = (
        f"Erased on {version.retention_until:%d %B %Y} by destroying its encryption key."
        if version.retention_until
        else usecase.retention
    )
    return sheet
