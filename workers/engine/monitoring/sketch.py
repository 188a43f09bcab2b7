"""The mergeable sketch of one monitoring window: counts and sums on the training reference's grid, never rows.

Batches are folded in as they arrive (``add``, in chunks of any size), late ground truth with ``add_labels``, and two
sketches of the same reference merge by adding their counts, so the window's statistics do not depend on how its
rows were split. ``to_dict`` is the JSON the app stores; ``from_dict`` reads it back against the same reference.

Kept per numeric feature: counts in the reference's grid cells (see ``columns``), count, missing, values that were
not numbers, rows where the column was absent, rows below / above the expected range, and the sums of the values
beyond the grid (for the Wasserstein distance). Per categorical feature: counts per reference category,
unseen values by name, missing. Prediction scores on the prediction grid; predicted positives; confusion counts
[tn, fp, fn, tp] overall (key ``(all)``) and per group of each sensitive attribute and each intersection, keyed
``attr=value`` and ``a=x|b=y`` (attributes in name order; ``\\``, ``|`` and ``=`` inside names are backslash-escaped;
a missing value is ``(missing)``).

Privacy of stored sketches: an unseen category's name is stored only if it was seen at least ``min_cell`` times in
the part being stored; rarer names are counted under ``(rare unseen values)``. Because each stored part is cut on its
own, a value that reaches ``min_cell`` only across parts (say, batches) stays counted but unnamed. In memory at most
1,000 unseen names are tracked per feature (the least frequent fold into the rare count), so an identifier column
sent by mistake cannot grow a sketch without bound.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from workers.engine.monitoring.columns import (
    MISSING_GROUP,
    category_codes,
    cell_counts,
    numeric_values,
)

VERSION = 1
ALL = "(all)"
RARE_UNSEEN = "(rare unseen values)"
MAX_UNSEEN_NAMES = 1000
MAX_UNEXPECTED_COLUMNS = 100
CONFUSION = ("tn", "fp", "fn", "tp")


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("=", "\\=")


def group_key(pairs: list[tuple[str, str]]) -> str:
    """``a=x|b=y`` for the (attribute, value) pairs, attributes in name order."""
    return "|".join(f"{escape(name)}={escape(value)}" for name, value in sorted(pairs))


def parse_group_key(key: str) -> list[tuple[str, str]]:
    """The (attribute, value) pairs of a group key, unescaped."""
    pairs: list[tuple[str, str]] = []
    parts: list[str] = []
    current: list[str] = []
    characters = iter(key)
    for character in characters:
        if character == "\\":
            current.append(next(characters, ""))
        elif character == "=" and not parts:
            parts.append("".join(current))
            current = []
        elif character == "|":
            pairs.append((parts[0], "".join(current)) if parts else ("".join(current), ""))
            parts, current = [], []
        else:
            current.append(character)
    pairs.append((parts[0], "".join(current)) if parts else ("".join(current), ""))
    return pairs


@dataclass
class NumericState:
    cells: np.ndarray
    count: int = 0
    missing: int = 0
    unparseable: int = 0
    absent: int = 0
    below_range: int = 0
    above_range: int = 0
    below_grid_sum: float = 0.0
    above_grid_sum: float = 0.0

    SCALARS = (
        "count",
        "missing",
        "unparseable",
        "absent",
        "below_range",
        "above_range",
        "below_grid_sum",
        "above_grid_sum",
    )

    @classmethod
    def empty(cls, profile: dict[str, Any]) -> NumericState:
        return cls(cells=np.zeros(2 * len(profile.get("points", [])) + 1, dtype=np.int64))

    def add(self, values: np.ndarray, unparseable: int, profile: dict[str, Any]) -> None:
        present = values[~np.isnan(values)]
        points = np.asarray(profile.get("points", []), dtype=float)
        self.cells += cell_counts(present, points)
        self.count += len(present)
        self.missing += len(values) - len(present)
        self.unparseable += unparseable
        if profile.get("expected_range"):
            low, high = profile["expected_range"]
            self.below_range += int((present < low).sum())
            self.above_range += int((present > high).sum())
        if len(points):
            self.below_grid_sum += float(present[present < points[0]].sum())
            self.above_grid_sum += float(present[present > points[-1]].sum())

    def merged(self, other: NumericState) -> NumericState:
        return NumericState(
            cells=self.cells + other.cells,
            **{name: getattr(self, name) + getattr(other, name) for name in self.SCALARS},
        )

    def to_dict(self) -> dict[str, Any]:
        return {"cells": self.cells.tolist(), **{name: getattr(self, name) for name in self.SCALARS}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], profile: dict[str, Any], name: str) -> NumericState:
        state = cls(cells=np.asarray(data["cells"], dtype=np.int64), **{k: data[k] for k in cls.SCALARS})
        if len(state.cells) != 2 * len(profile.get("points", [])) + 1:
            raise ValueError(f"{name}: the sketch's grid does not match the reference")
        return state


@dataclass
class CategoricalState:
    counts: np.ndarray
    unseen: Counter[str] = field(default_factory=Counter)
    rare_unseen: int = 0
    missing: int = 0
    absent: int = 0

    @classmethod
    def empty(cls, profile: dict[str, Any]) -> CategoricalState:
        return cls(counts=np.zeros(len(profile.get("categories", [])), dtype=np.int64))

    @property
    def count(self) -> int:
        """Rows with a value (named category, rarer training value or unseen value)."""
        return int(self.counts.sum()) + sum(self.unseen.values()) + self.rare_unseen

    @property
    def outside_categories(self) -> int:
        """Rows whose value is not one of the reference's named categories."""
        return sum(self.unseen.values()) + self.rare_unseen

    def add(self, series: pd.Series, profile: dict[str, Any]) -> None:
        codes, names = category_codes(series)
        per_name = np.bincount(codes[codes >= 0], minlength=len(names))
        index = {name: position for position, name in enumerate(profile.get("categories", []))}
        for name, count in zip(names, per_name.tolist(), strict=True):
            if not count:
                continue
            position = index.get(name)
            if position is None:
                self.unseen[name] += count
            else:
                self.counts[position] += count
        self.missing += int((codes < 0).sum())
        self._bound_unseen()

    def _bound_unseen(self) -> None:
        if len(self.unseen) > MAX_UNSEEN_NAMES:
            for name, count in self.unseen.most_common()[MAX_UNSEEN_NAMES:]:
                self.rare_unseen += count
                del self.unseen[name]

    def merged(self, other: CategoricalState) -> CategoricalState:
        state = CategoricalState(
            counts=self.counts + other.counts,
            unseen=self.unseen + other.unseen,
            rare_unseen=self.rare_unseen + other.rare_unseen,
            missing=self.missing + other.missing,
            absent=self.absent + other.absent,
        )
        state._bound_unseen()
        return state

    def to_dict(self, min_cell: int) -> dict[str, Any]:
        named = {name: count for name, count in self.unseen.most_common() if count >= min_cell}
        folded = sum(self.unseen.values()) - sum(named.values())
        return {
            "counts": self.counts.tolist(),
            "unseen": named,
            "rare_unseen": self.rare_unseen + folded,
            "missing": self.missing,
            "absent": self.absent,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], profile: dict[str, Any], name: str) -> CategoricalState:
        state = cls(
            counts=np.asarray(data["counts"], dtype=np.int64),
            unseen=Counter(data["unseen"]),
            rare_unseen=data["rare_unseen"],
            missing=data["missing"],
            absent=data["absent"],
        )
        if len(state.counts) != len(profile.get("categories", [])):
            raise ValueError(f"{name}: the sketch's categories do not match the reference")
        return state


def _binary(values: Any, what: str) -> np.ndarray:
    """0/1 as floats, NaN where missing; anything else is refused."""
    array = np.asarray(values)
    if array.dtype.kind in "biuf":
        array = array.astype(float)
    else:
        series = pd.Series(values, dtype=object)
        array = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    present = array[~np.isnan(array)]
    if not np.isin(present, (0.0, 1.0)).all():
        raise ValueError(f"{what} must be 0 or 1 (positive class = 1)")
    return array


def _group_codes(groups: pd.DataFrame) -> list[tuple[np.ndarray, list[str]]]:
    """For each attribute and each intersection of two or more: a group index per row and the group keys."""
    attributes = sorted(str(column) for column in groups.columns)
    columns: dict[str, tuple[np.ndarray, list[str]]] = {}
    for attribute in attributes:
        codes, names = category_codes(groups[attribute])
        codes = np.where(codes < 0, len(names), codes)  # missing values form one group
        columns[attribute] = (codes, [*names, MISSING_GROUP])
    out = []
    for size in range(1, len(attributes) + 1):
        for names in combinations(attributes, size):
            if size == 1:
                codes, values = columns[names[0]]
                out.append((codes, [group_key([(names[0], value)]) for value in values]))
                continue
            combined = np.zeros(len(groups), dtype=np.int64)
            radices = [len(columns[name][1]) for name in names]
            for name, radix in zip(names, radices, strict=True):
                combined = combined * radix + columns[name][0]
            uniques, inverse = np.unique(combined, return_inverse=True)
            keys = []
            for unique in uniques.tolist():
                pairs = []
                for name, radix in zip(reversed(names), reversed(radices), strict=True):
                    unique, digit = divmod(unique, radix)
                    pairs.append((name, columns[name][1][digit]))
                keys.append(group_key(pairs))
            out.append((inverse.ravel().astype(np.int64), keys))
    return out


class WindowSketch:
    """Counts of one monitoring window against one reference. Build with ``empty`` or ``from_dict``."""

    def __init__(self, reference: dict[str, Any]) -> None:
        self.reference = reference
        self.rows = 0
        self.numeric: dict[str, NumericState] = {}
        self.categorical: dict[str, CategoricalState] = {}
        for name, profile in reference["features"].items():
            if profile["kind"] == "numeric":
                self.numeric[name] = NumericState.empty(profile)
            else:
                self.categorical[name] = CategoricalState.empty(profile)
        prediction = reference.get("prediction")
        self.prediction: NumericState | None = NumericState.empty(prediction) if prediction else None
        self.predicted_rows = 0
        self.predicted_positive = 0
        self.labelled = 0
        self.confusion: dict[str, np.ndarray] = {}
        self.unexpected_columns: set[str] = set()

    @classmethod
    def empty(cls, reference: dict[str, Any]) -> WindowSketch:
        return cls(reference)

    def add(
        self,
        frame: pd.DataFrame,
        *,
        scores: np.ndarray | None = None,
        predictions: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        groups: pd.DataFrame | None = None,
    ) -> WindowSketch:
        """Fold one chunk of production rows in: ``frame`` holds the features (an absent feature column counts as
        missing and as a schema problem), ``scores`` the positive-class scores, ``predictions`` the 0/1 decisions
        (taken from the scores at the reference's threshold when not given), ``labels`` the ground truth when known,
        ``groups`` the sensitive attributes. Returns self."""
        rows = len(frame)
        for name, what in (("scores", scores), ("predictions", predictions), ("labels", labels), ("groups", groups)):
            if what is not None and len(what) != rows:
                raise ValueError(f"{name} must have one entry per row of the batch")
        self.rows += rows
        features = self.reference["features"]
        for name, state in self.numeric.items():
            if name in frame.columns:
                values, unparseable = numeric_values(frame[name])
                state.add(values, unparseable, features[name])
            else:
                state.missing += rows
                state.absent += rows
        for name, categorical in self.categorical.items():
            if name in frame.columns:
                categorical.add(frame[name], features[name])
            else:
                categorical.missing += rows
                categorical.absent += rows
        for column in frame.columns:
            if str(column) not in features and len(self.unexpected_columns) < MAX_UNEXPECTED_COLUMNS:
                self.unexpected_columns.add(str(column))
        if scores is not None:
            scores = np.asarray(scores, dtype=float)
            if self.prediction is not None:
                self.prediction.add(scores, 0, self.reference["prediction"])
            if predictions is None:
                threshold = self.reference.get("threshold", 0.5)
                predictions = np.where(np.isnan(scores), np.nan, (scores >= threshold).astype(float))
        if predictions is not None:
            decided = _binary(predictions, "predictions")
            decided = decided[~np.isnan(decided)]
            self.predicted_rows += len(decided)
            self.predicted_positive += int(decided.sum())
            if labels is not None:
                self.add_labels(predictions, labels, groups)
        elif labels is not None:
            raise ValueError("labels need the predictions (or scores) of the same rows")
        return self

    def add_labels(
        self, predictions: np.ndarray, labels: np.ndarray, groups: pd.DataFrame | None = None
    ) -> WindowSketch:
        """Confusion counts of labelled rows, overall and per group (ground truth that arrived after the features)."""
        if len(predictions) != len(labels) or (groups is not None and len(groups) != len(labels)):
            raise ValueError("predictions, labels and groups must have one entry per labelled row")
        decided, truth = _binary(predictions, "predictions"), _binary(labels, "labels")
        known = ~np.isnan(decided) & ~np.isnan(truth)
        cell = (truth[known] * 2 + decided[known]).astype(np.int64)
        self.labelled += int(known.sum())
        self._count(ALL, np.bincount(cell, minlength=4))
        if groups is not None:
            for codes, keys in _group_codes(groups.reset_index(drop=True).loc[known]):
                counts = np.bincount(codes * 4 + cell, minlength=len(keys) * 4).reshape(len(keys), 4)
                for key, row in zip(keys, counts, strict=True):
                    if row.any():
                        self._count(key, row)
        return self

    def _count(self, key: str, counts: np.ndarray) -> None:
        if key in self.confusion:
            self.confusion[key] = self.confusion[key] + counts
        else:
            self.confusion[key] = counts.astype(np.int64)

    def merge(self, other: WindowSketch) -> WindowSketch:
        """A new sketch holding both windows' counts (same reference)."""
        if set(self.numeric) != set(other.numeric) or set(self.categorical) != set(other.categorical):
            raise ValueError("Sketches of different references cannot be merged")
        merged = WindowSketch(self.reference)
        merged.rows = self.rows + other.rows
        merged.numeric = {name: state.merged(other.numeric[name]) for name, state in self.numeric.items()}
        merged.categorical = {name: state.merged(other.categorical[name]) for name, state in self.categorical.items()}
        if self.prediction is not None and other.prediction is not None:
            merged.prediction = self.prediction.merged(other.prediction)
        merged.predicted_rows = self.predicted_rows + other.predicted_rows
        merged.predicted_positive = self.predicted_positive + other.predicted_positive
        merged.labelled = self.labelled + other.labelled
        for source in (self.confusion, other.confusion):
            for key, counts in source.items():
                merged._count(key, counts)
        merged.unexpected_columns = set(
            sorted(self.unexpected_columns | other.unexpected_columns)[:MAX_UNEXPECTED_COLUMNS]
        )
        return merged

    def to_dict(self) -> dict[str, Any]:
        min_cell = int(self.reference.get("min_cell", 10))
        return {
            "version": VERSION,
            "rows": self.rows,
            "numeric": {name: state.to_dict() for name, state in self.numeric.items()},
            "categorical": {name: state.to_dict(min_cell) for name, state in self.categorical.items()},
            "prediction": self.prediction.to_dict() if self.prediction is not None else None,
            "predictions": {"rows": self.predicted_rows, "positive": self.predicted_positive},
            "labelled": self.labelled,
            "confusion": {
                key: dict(zip(CONFUSION, (int(v) for v in counts), strict=True))
                for key, counts in sorted(self.confusion.items())
            },
            "unexpected_columns": sorted(self.unexpected_columns),
        }

    @classmethod
    def from_dict(cls, reference: dict[str, Any], data: dict[str, Any]) -> WindowSketch:
        if data.get("version") != VERSION:
            raise ValueError(f"Unknown sketch version {data.get('version')!r}")
        sketch = cls(reference)
        features = reference["features"]
        if set(data["numeric"]) != set(sketch.numeric) or set(data["categorical"]) != set(sketch.categorical):
            raise ValueError("The sketch's features do not match the reference")
        sketch.rows = data["rows"]
        sketch.numeric = {
            name: NumericState.from_dict(item, features[name], name) for name, item in data["numeric"].items()
        }
        sketch.categorical = {
            name: CategoricalState.from_dict(item, features[name], name) for name, item in data["categorical"].items()
        }
        if data.get("prediction") is not None and reference.get("prediction"):
            sketch.prediction = NumericState.from_dict(data["prediction"], reference["prediction"], "prediction")
        sketch.predicted_rows = data["predictions"]["rows"]
        sketch.predicted_positive = data["predictions"]["positive"]
        sketch.labelled = data["labelled"]
        sketch.confusion = {
            key: np.array([counts[name] for name in CONFUSION], dtype=np.int64)
            for key, counts in data["confusion"].items()
        }
        sketch.unexpected_columns = set(data.get("unexpected_columns", []))
        return sketch
