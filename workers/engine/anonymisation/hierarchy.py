"""Generalisation hierarchies: how each quasi-identifier's values become coarser, level by level, up to "*".

A hierarchy is a table: one row per original value, one column per level (level 0 is the value itself, the last level
is "*" for every value). Every level must be a function of the previous one (a value's parent at level i+1 depends only
on its label at level i), so generalising never splits a group: that is what makes the lattice search's pruning sound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

SUPPRESSED = "*"
MISSING = "(missing)"


class AnonymisationError(Exception):
    """Bad input for anonymisation, naming the column and value at fault."""

    def __init__(self, message: str, *, column: str = "", value: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.value = value


@dataclass
class Hierarchy:
    column: str
    kind: str  # intervals | dates | prefix | table | suppression
    values: list[str]  # level-0 domain, as strings
    labels: list[list[str]]  # labels[level][i]: value i's label at that level
    spec: dict[str, Any] = field(default_factory=dict)  # how it was built, recorded in the version's transform

    def __post_init__(self) -> None:
        self.index = {value: i for i, value in enumerate(self.values)}
        self._check_functional()
        # codes[level][i]: the integer id of value i's label at that level; sizes[level]: number of labels.
        self.codes: list[np.ndarray] = []
        self.level_labels: list[list[str]] = []
        for labels in self.labels:
            uniques, inverse = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
            self.codes.append(inverse.astype(np.int64))
            self.level_labels.append([str(u) for u in uniques])
        # Leaves under each label: the generalisation loss of a cell is (leaves - 1) / (domain - 1).
        self.leaves = [np.bincount(codes)[codes] for codes in self.codes]

    @property
    def height(self) -> int:
        return len(self.labels) - 1

    def _check_functional(self) -> None:
        if not self.values:
            raise AnonymisationError(f"Column '{self.column}' has no values to generalise.", column=self.column)
        if any(len(level) != len(self.values) for level in self.labels):
            raise AnonymisationError(
                f"Column '{self.column}': every level needs a label for every value.", column=self.column
            )
        if any(label != SUPPRESSED for label in self.labels[-1]):
            self.labels.append([SUPPRESSED] * len(self.values))
        for level in range(1, len(self.labels)):
            parent: dict[str, str] = {}
            for below, above in zip(self.labels[level - 1], self.labels[level], strict=True):
                if parent.setdefault(below, above) != above:
                    raise AnonymisationError(
                        f"Column '{self.column}': '{below}' at level {level - 1} has two parents at level {level} "
                        f"('{parent[below]}' and '{above}'); each level must group whole groups of the level below.",
                        column=self.column,
                        value=below,
                    )

    def require_covers(self, values: list[str]) -> None:
        for value in values:
            if value not in self.index:
                hint = f" (empty cells are written {MISSING} in a hierarchy file)" if value == MISSING else ""
                raise AnonymisationError(
                    f"Column '{self.column}': value '{value}' is not in its hierarchy{hint}.",
                    column=self.column,
                    value=value,
                )

    def loss_per_value(self, level: int) -> np.ndarray:
        domain = len(self.values)
        if domain <= 1:
            return np.zeros(domain)
        return (self.leaves[level] - 1) / (domain - 1)


def _fmt(number: float) -> str:
    return f"{number:g}"


def intervals(column: str, values: list[str], widths: list[float], start: float | None = None) -> Hierarchy:
    """Numbers into intervals of growing width; each width a multiple of the one before, all aligned on ``start``."""
    numbers = []
    for value in values:
        try:
            numbers.append(float(value))
        except ValueError:
            raise AnonymisationError(
                f"Column '{column}': value '{value}' is not a number.", column=column, value=value
            ) from None
    if not widths or any(w <= 0 for w in widths):
        raise AnonymisationError(f"Column '{column}': interval widths must be positive.", column=column)
    for smaller, larger in zip(widths, widths[1:], strict=False):
        ratio = larger / smaller
        if larger <= smaller or abs(ratio - round(ratio)) > 1e-9:
            raise AnonymisationError(
                f"Column '{column}': each interval width must be a multiple of the previous one ({_fmt(smaller)}, "
                f"{_fmt(larger)}).",
                column=column,
            )
    # Aligned on a multiple of the widest interval, so labels read as round numbers ([15, 20), not [17, 22)).
    base = math.floor(min(numbers) / widths[-1]) * widths[-1] if start is None else start
    labels = [list(values)]
    for width in widths:
        level = []
        for number in numbers:
            low = base + math.floor((number - base) / width) * width
            level.append(f"[{_fmt(low)}, {_fmt(low + width)})")
        labels.append(level)
    return Hierarchy(column, "intervals", list(values), labels, {"kind": "intervals", "widths": widths, "start": base})


def dates(column: str, values: list[str]) -> Hierarchy:
    """Dates into month, then year."""
    parsed = []
    for value in values:
        try:
            parsed.append(date.fromisoformat(value[:10]))
        except ValueError:
            raise AnonymisationError(
                f"Column '{column}': value '{value}' is not a date (YYYY-MM-DD).", column=column, value=value
            ) from None
    return Hierarchy(
        column,
        "dates",
        list(values),
        [list(values), [f"{d:%Y-%m}" for d in parsed], [f"{d:%Y}" for d in parsed]],
        {"kind": "dates"},
    )


def prefix(column: str, values: list[str]) -> Hierarchy:
    """Postcodes and similar codes: drop trailing characters one at a time."""
    longest = max(len(v) for v in values)
    labels = [list(values)]
    for dropped in range(1, longest):
        labels.append([v[: max(0, len(v) - dropped)] + SUPPRESSED if len(v) > dropped else SUPPRESSED for v in values])
    return Hierarchy(column, "prefix", list(values), labels, {"kind": "prefix"})


def suppression(column: str, values: list[str]) -> Hierarchy:
    return Hierarchy(column, "suppression", list(values), [list(values)], {"kind": "suppression"})


def from_table(column: str, rows: list[list[str]]) -> Hierarchy:
    """A steward's hierarchy: one row per value, one column per level (the value first)."""
    rows = [[cell.strip() for cell in row] for row in rows if row and any(cell.strip() for cell in row)]
    if not rows:
        raise AnonymisationError(f"Column '{column}': the hierarchy file is empty.", column=column)
    width = max(len(row) for row in rows)
    seen: set[str] = set()
    for row in rows:
        if len(row) != width:
            raise AnonymisationError(
                f"Column '{column}': the row for '{row[0]}' has {len(row)} levels, others {width}.",
                column=column,
                value=row[0],
            )
        if row[0] in seen:
            raise AnonymisationError(
                f"Column '{column}': value '{row[0]}' appears twice in the hierarchy.", column=column, value=row[0]
            )
        seen.add(row[0])
    labels = [[row[level] for row in rows] for level in range(width)]
    return Hierarchy(column, "table", [row[0] for row in rows], labels, {"kind": "table", "rows": rows})


def propose(column: str, values: list[str], numeric: bool) -> Hierarchy:
    """Attest's proposal from the profile: intervals for numbers, months and years for dates, prefixes for postcodes,
    suppression for other categories (the steward can upload a hierarchy instead)."""
    if numeric:
        numbers = [float(v) for v in values]
        span = max(numbers) - min(numbers) if numbers else 0.0
        # The first "nice" width (1, 2, 5, 10, 20, 50, ...) giving at most 16 intervals, then doubling to the span.
        width = 1.0
        steps = (2.0, 2.5, 2.0)
        step = 0
        while span / width > 16:
            width *= steps[step % 3]
            step += 1
        if width != int(width) or width < 1:
            width = max(1.0, float(int(width)))
        widths = [width]
        while widths[-1] < span:
            widths.append(widths[-1] * 2)
        return intervals(column, values, widths)
    if values and all(len(v) >= 8 and v[4:5] == "-" and v[:4].isdigit() for v in values[:50]):
        try:
            return dates(column, values)
        except AnonymisationError:
            pass
    lowered = column.lower()
    if any(word in lowered for word in ("postcode", "postal", "zip", "plz")):
        return prefix(column, values)
    return suppression(column, values)


def build(column: str, values: list[str], spec: dict[str, Any], numeric: bool) -> Hierarchy:
    """A hierarchy from its recorded spec (what the steward chose), checked against the column's values."""
    kind = spec.get("kind", "propose")
    if kind == "intervals":
        hierarchy = intervals(column, values, [float(w) for w in spec.get("widths", [])], spec.get("start"))
    elif kind == "dates":
        hierarchy = dates(column, values)
    elif kind == "prefix":
        hierarchy = prefix(column, values)
    elif kind == "suppression":
        hierarchy = suppression(column, values)
    elif kind == "table":
        hierarchy = from_table(column, spec.get("rows", []))
    elif kind == "propose":
        hierarchy = propose(column, values, numeric)
    else:
        raise AnonymisationError(f"Column '{column}': unknown hierarchy kind '{kind}'.", column=column)
    hierarchy.require_covers(values)
    return hierarchy


def for_frame(
    frame: Any,
    columns: list[str],
    specs: dict[str, dict[str, Any]] | None = None,
    numeric: dict[str, bool] | None = None,
) -> list[Hierarchy]:
    """Hierarchies for ``columns`` of a pandas frame: each from its spec when given, else Attest's proposal.
    ``numeric``: whether each column holds numbers, when the frame holds them as text (a ``Combinations`` frame)."""
    import pandas as pd

    from workers.engine.anonymisation.search import _as_strings

    result = []
    for column in columns:
        if column not in frame.columns:
            raise AnonymisationError(f"Column '{column}' is not in this version.", column=column)
        values = [str(v) for v in pd.unique(_as_strings(frame[column]))]
        is_numeric = (numeric or {}).get(column, bool(pd.api.types.is_numeric_dtype(frame[column])))
        result.append(build(column, values, (specs or {}).get(column, {"kind": "propose"}), is_numeric))
    return result
