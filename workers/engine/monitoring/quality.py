"""Data-quality expectations derived from the training reference, checked on a batch's schema and a window's sketch.

- Schema: every feature column present, no column the deployment does not expect, numeric features numeric.
  ``check_schema`` is what the app runs before accepting a batch; ``sketch_schema_problems`` reports what still
  reached a window (absent columns, values of a numeric feature that were not numbers).
- Missing share: above the training share plus a tolerance.
- Out of range (numeric): the share outside the training's expected range (its 0.5% / 99.5% quantiles, narrower
  for a small training set: see ``reference``), above the training's own share outside it plus a tolerance.
- New categories (categorical): the share of values that are not a named training category, above the training's
  own share of rare values (its ``(other)`` bucket, whose names are not kept) plus a tolerance.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from workers.engine.monitoring.sketch import WindowSketch


def _dtype_is_numeric(dtype: str) -> bool | None:
    """True / False, or None when the text is not a dtype pandas knows."""
    try:
        resolved = pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return None
    return bool(pd.api.types.is_numeric_dtype(resolved) or pd.api.types.is_bool_dtype(resolved))


def check_schema(reference: dict[str, Any], columns: dict[str, str], *, allowed_extra: Iterable[str] = ()) -> list[str]:
    """Problems with a batch's columns (name -> dtype text such as "float64", "object", "category"), one sentence
    each naming the columns at fault; empty when the batch can be accepted. ``allowed_extra`` are non-feature
    columns the caller expects (prediction id, score, label, sensitive attributes)."""
    schema = reference["schema"]
    problems = []
    absent = [name for name in schema if name not in columns]
    if absent:
        problems.append(f"Missing feature column(s): {', '.join(absent)}.")
    allowed = set(schema) | {str(name) for name in allowed_extra}
    unexpected = [name for name in columns if name not in allowed]
    if unexpected:
        problems.append(f"Unexpected column(s), not in the training data: {', '.join(unexpected)}.")
    for name, expected in schema.items():
        if name not in columns or expected["kind"] != "numeric":
            continue
        numeric = _dtype_is_numeric(columns[name])
        if not numeric:
            problems.append(
                f"Column {name} must hold numbers (trained as {expected['dtype']}), but arrived as {columns[name]}."
            )
    return problems


def sketch_schema_problems(reference: dict[str, Any], sketch: WindowSketch) -> list[str]:
    """Schema problems that reached a window: absent feature columns, unexpected columns, values that were not
    numbers in numeric features."""
    problems = []
    absent = [name for name, state in {**sketch.numeric, **sketch.categorical}.items() if state.absent]
    if absent:
        problems.append(f"Feature column(s) absent from some batches: {', '.join(absent)}.")
    if sketch.unexpected_columns:
        problems.append(f"Unexpected column(s): {', '.join(sorted(sketch.unexpected_columns))}.")
    wrong = [f"{name} ({state.unparseable})" for name, state in sketch.numeric.items() if state.unparseable]
    if wrong:
        problems.append(f"Values that are not numbers in numeric column(s): {', '.join(wrong)}.")
    return problems


def quality_checks(
    reference: dict[str, Any], sketch: WindowSketch, tolerances: dict[str, float]
) -> list[dict[str, Any]]:
    """Per feature and check: ``{"check": "missing" | "out_of_range" | "new_categories", "feature", "value",
    "expected", "threshold", "rows", "failed", "new_categories"?}``; ``value`` is None when no row can be judged.
    ``tolerances``: missing_increase, out_of_range, new_categories (shares)."""
    checks: list[dict[str, Any]] = []
    rows = sketch.rows
    for name, profile in reference["features"].items():
        state = sketch.numeric.get(name) or sketch.categorical[name]
        missing = state.missing / rows if rows else None
        expected_missing = profile["missing_share"]
        limit = expected_missing + tolerances["missing_increase"]
        checks.append(_check("missing", name, missing, expected_missing, limit, rows))
        present = state.count
        if profile["kind"] == "numeric":
            if profile.get("insufficient"):
                continue
            outside = (state.below_range + state.above_range) / present if present else None
            expected = profile["outside_range_share"]
            check = _check("out_of_range", name, outside, expected, expected + tolerances["out_of_range"], present)
            check["expected_range"] = profile["expected_range"]
            checks.append(check)
        else:
            if profile.get("insufficient"):
                continue
            new_share = state.outside_categories / present if present else None
            expected = profile["other_share"]
            check = _check(
                "new_categories", name, new_share, expected, expected + tolerances["new_categories"], present
            )
            check["new_categories"] = [category for category, _ in state.unseen.most_common(5)]
            checks.append(check)
    return checks


def _check(check: str, feature: str, value: float | None, expected: float, limit: float, rows: int) -> dict[str, Any]:
    return {
        "check": check,
        "feature": feature,
        "value": value,
        "expected": expected,
        "threshold": limit,
        "rows": rows,
        "failed": value is not None and value > limit,
    }
