"""What a column profile may show, to anyone: the one place that keeps personal data out of displayed profiles.

Every page, API response and report that shows a profile reads it through ``column_profiles`` (or
``redact_column_profile``), never from ``DatasetVersion.profile`` directly:

- a column flagged as personal data (confirmed or suggested role direct identifier or subject key, or a detected
  direct identifier such as a name, e-mail or national id) shows no values at all: counts of rows, missing and
  distinct values only;
- a quasi-identifier (role, or a detected date of birth or postcode) shows only values that at least the
  organisation's minimum cell size of rows share; its extremes (min, max) can be single people and are never shown,
  nor its equal-width histogram (whose edges give away min and max whatever the counts), nor the tail quantiles that
  fewer rows than the cell size determine;
- other columns are shown as profiled.

The stored profile of a column detected as personal data at profiling time holds no values either
(``workers.engine.datasets.profiling.without_values``); a role confirmed later is redacted here.
"""

from __future__ import annotations

from typing import Any

PERSONAL_ROLES = frozenset({"direct_identifier", "subject_key"})
QUASI_ROLES = frozenset({"quasi_identifier"})
# Kinds found by workers/engine/datasets/pii.py that identify a person on their own.
DIRECT_PII_KINDS = frozenset(
    {"subject_key", "email", "phone", "iban", "payment_card", "national_id", "name", "address", "ip_address"}
)
QUASI_PII_KINDS = frozenset({"date_of_birth", "postcode"})
# Counts and shapes only: what a personal-data column's profile keeps.
COUNT_KEYS = ("name", "arrow_type", "kind", "rows", "missing", "missing_share", "distinct", "unique_share", "pii")
PERSONAL = "personal"
QUASI = "quasi"
DEFAULT_MIN_CELL_SIZE = 10


def protection_of(*, role: str = "", suggested_role: str = "", pii: Any = None) -> str:
    """'personal', 'quasi' or '' for a column, from its confirmed and suggested roles and its findings (the most
    protective wins: a steward's later "feature" does not unflag a detected name)."""
    roles = {role, suggested_role}
    kinds = {finding.get("kind") for finding in (pii or []) if isinstance(finding, dict)}
    if roles & PERSONAL_ROLES or kinds & DIRECT_PII_KINDS:
        return PERSONAL
    if roles & QUASI_ROLES or kinds & QUASI_PII_KINDS:
        return QUASI
    return ""


def redact_column_profile(
    profile: dict[str, Any] | None,
    *,
    role: str = "",
    suggested_role: str = "",
    pii: Any = None,
    min_cell_size: int = DEFAULT_MIN_CELL_SIZE,
) -> dict[str, Any]:
    """A copy of one column's profile that is safe to show to anyone who may see the version."""
    profile = dict(profile or {})
    findings = pii if pii is not None else profile.get("pii")
    protection = protection_of(role=role, suggested_role=suggested_role, pii=findings)
    if protection == PERSONAL:
        shown = {key: profile[key] for key in COUNT_KEYS if key in profile}
        shown.update({"top_values": [], "protection": PERSONAL, "values_hidden": True})
        return shown
    if protection != QUASI:
        return {**profile, "protection": "", "values_hidden": False}
    k = max(int(min_cell_size or DEFAULT_MIN_CELL_SIZE), 1)
    shown = {key: value for key, value in profile.items() if key not in ("min", "max", "quantiles", "histogram")}
    top = profile.get("top_values") or []
    shown["top_values"] = [item for item in top if int(item.get("count") or 0) >= k]
    shown["suppressed_values"] = len(top) - len(shown["top_values"])
    valid = int(profile.get("rows") or 0) - int(profile.get("missing") or 0)
    quantiles = {
        q: value for q, value in (profile.get("quantiles") or {}).items() if min(float(q), 1 - float(q)) * valid >= k
    }
    if quantiles:
        shown["quantiles"] = quantiles
    if valid < k:
        shown.pop("mean", None)
        shown.pop("std", None)
    shown.update({"protection": QUASI, "values_hidden": False, "min_cell_size": k})
    return shown


def column_profiles(version: Any, columns: Any = None) -> dict[str, dict[str, Any]]:
    """Every column's displayable profile, by name, for ``version`` (``columns``: its DatasetColumn rows, if already
    loaded). The organisation's minimum cell size applies."""
    columns = list(version.columns.all()) if columns is None else list(columns)
    stored = {c["name"]: c for c in (version.profile or {}).get("columns", [])}
    k = version.dataset.organisation.min_cell_size
    shown = {
        column.name: redact_column_profile(
            stored.get(column.name),
            role=column.role,
            suggested_role=column.suggested_role,
            pii=column.pii,
            min_cell_size=k,
        )
        for column in columns
    }
    for name, profile in stored.items():  # a profiled column without a row (never expected): counts only
        shown.setdefault(name, redact_column_profile(profile, role="direct_identifier", min_cell_size=k))
    return shown


def profile_summary(profile: dict[str, Any]) -> str:
    """One line describing a redacted profile's values, for reports (the page lays the same data out itself)."""
    if profile.get("values_hidden"):
        return "values not shown: personal data"
    parts = []
    if profile.get("mean") is not None:
        median = (profile.get("quantiles") or {}).get("0.5")
        parts.append(f"mean {profile['mean']:.2f}" + (f", median {median:.2f}" if median is not None else ""))
    elif profile.get("top_values"):
        parts.append(", ".join(f"{item['value']} ({item['count']:,})" for item in profile["top_values"][:4]))
    if profile.get("suppressed_values"):
        parts.append(
            f"{profile['suppressed_values']} value(s) shared by fewer than {profile['min_cell_size']} rows not shown"
        )
    return "; ".join(parts) or "-"
