"""Integer group codes for sensitive attributes and their intersections.

A group is keyed by its values, never by a label string:
- missing values (None, NaN, pd.NA, NaT, an empty or blank string) form one group, labelled ``(missing)``;
- values are compared as pandas compares them (1, 1.0 and True are one value; 1 and "1" are two), unless the column
  is listed as normalised, where each value is compared by its text (stripped; 1.0 written 1), so 1 and "1" merge;
- an intersection is keyed by the tuple of its columns' values, so ("a & b", "c") and ("a", "b & c") stay apart.
Labels are for people: unique within a grouping (a type is added where two values print alike, a component holding
" & " is bracketed), and each group also carries its values (JSON: None for missing).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

MISSING_LABEL = "(missing)"
SEPARATOR = " & "


@dataclass
class Grouping:
    name: str
    attributes: list[str]
    codes: np.ndarray  # per row, the index of its group
    labels: list[str]  # per group, unique within the grouping
    values: list[list[Any]] = field(default_factory=list)  # per group, one JSON-able value per attribute


def _missing_mask(series: pd.Series) -> np.ndarray:
    missing = series.isna().to_numpy(dtype=bool)
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        blank = series.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
        missing = missing | blank
    return missing


def _as_text(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (bool, np.bool_)):
        return "true/false"
    if isinstance(value, (int, float, np.number)):
        return "number"
    return type(value).__name__


def _column(series: pd.Series, normalised: bool) -> tuple[np.ndarray, list[str], list[Any]]:
    """One column: codes per row (missing last), labels and JSON values per code, in label order."""
    missing = _missing_mask(series)
    present = series[~missing]
    if normalised:
        present = present.map(_as_text)
    codes, uniques = pd.factorize(present.astype(object), sort=False)
    uniques = list(uniques)
    texts = [str(v) for v in uniques]
    clash = Counter(texts)
    labels = [
        f"{t} ({_kind(v)})" if clash[t] > 1 or t == MISSING_LABEL else t for t, v in zip(texts, uniques, strict=True)
    ]
    order = sorted(range(len(uniques)), key=lambda i: (labels[i], _kind(uniques[i])))
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[order] = np.arange(len(uniques))
    row_codes = np.full(len(series), len(uniques), dtype=np.int64)  # missing: the code after the present values
    row_codes[~missing] = rank[codes]
    labels = [labels[i] for i in order]
    values = [_json_value(uniques[i]) for i in order]
    if missing.any():
        labels.append(MISSING_LABEL)
        values.append(None)
    return row_codes, labels, values


def groupings(
    frame: pd.DataFrame,
    attributes: list[str],
    intersections: bool = True,
    normalised: Iterable[str] = (),
) -> list[Grouping]:
    """Each attribute, then each combination of two or more when ``intersections``."""
    normalised = set(normalised)
    columns = {a: _column(frame[a], a in normalised) for a in attributes}
    sets: list[list[str]] = [[a] for a in attributes]
    if intersections:
        for size in range(2, len(attributes) + 1):
            sets += [list(combo) for combo in combinations(attributes, size)]
    out = []
    for names in sets:
        if len(names) == 1:
            codes, labels, values = columns[names[0]]
            out.append(Grouping(names[0], names, codes, list(labels), [[v] for v in values]))
            continue
        # The tuple of per-column codes (mixed radix), factorised in sorted order: keyed by values, not by text.
        key = np.zeros(len(frame), dtype=np.int64)
        span = 1
        for name in reversed(names):
            codes, labels, _values = columns[name]
            key += codes * span
            span *= len(labels) + 1
        uniques, inverse = np.unique(key, return_inverse=True)
        inverse = inverse.ravel()
        first = np.zeros(len(uniques), dtype=np.int64)
        first[inverse] = np.arange(len(frame))  # a row of each group
        parts = []
        for name in names:
            codes, labels, values = columns[name]
            parts.append([(labels[c], values[c]) for c in codes[first]])
        component_labels = [[p[i][0] for p in parts] for i in range(len(uniques))]
        bracket = any(SEPARATOR in label for row in component_labels for label in row)
        joined = [
            SEPARATOR.join(f"({label})" if bracket and SEPARATOR in label else label for label in row)
            for row in component_labels
        ]
        seen: Counter[str] = Counter()
        unique_labels = []
        for label in joined:
            seen[label] += 1
            unique_labels.append(label if seen[label] == 1 else f"{label} [{seen[label]}]")
        out.append(
            Grouping(
                " x ".join(names),
                names,
                inverse.astype(np.int64),
                unique_labels,
                [[p[i][1] for p in parts] for i in range(len(uniques))],
            )
        )
    return out


def group_codes(
    frame: pd.DataFrame,
    attributes: list[str],
    intersections: bool = True,
    normalised: Iterable[str] = (),
) -> list[tuple[str, np.ndarray, list[str]]]:
    """For each grouping (each attribute, then each combination of two or more): (name, codes per row, labels)."""
    return [(g.name, g.codes, g.labels) for g in groupings(frame, attributes, intersections, normalised)]


def describe(values: Any) -> str:
    return ", ".join(map(str, values))
